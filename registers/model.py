"""The compiled register map: frozen, indexed, ready for the request path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from registers.derive import Derivation
from registers.types import RegType
from registers.values import Scalar

SERVICE_PREFIX = "com.victronenergy."
RESERVED_PATH = "RESERVED"


@dataclass(frozen=True, slots=True)
class Source:
    """Where a declaration came from, for messages: ``file:line``."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Lookup:
    """An enum: integer values (or ranges of them) and their labels."""

    name: str
    entries: tuple[tuple[int, int, str], ...]  # (first, last, label), sorted

    def label(self, value: int) -> str | None:
        for first, last, text in self.entries:
            if first <= value <= last:
                return text
        return None

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.label(value) is not None

    def as_text(self) -> str:
        """The reference's notation: ``0=Off;1=On``, ranges as ``51-52=...``."""
        parts = [f"{a}={t}" if a == b else f"{a}-{b}={t}" for a, b, t in self.entries]
        return ";".join(parts)


@dataclass(frozen=True, slots=True)
class Register:
    """One declared register (or block of registers) of a service type."""

    service: str
    address: int
    path: str  # RESERVED for reserved blocks
    type: RegType
    scale: float
    writable: bool
    unit: str
    lookup: Lookup | None
    minimum: float | None
    maximum: float | None
    derive: Derivation | None
    source: Source

    @property
    def end(self) -> int:
        return self.address + self.type.width

    @property
    def reserved(self) -> bool:
        return self.type.kind == "reserved"

    def encode(self, value: Scalar) -> bytes:
        return self.type.encode(value, self.scale)

    def decode(self, data: bytes) -> Scalar:
        return self.type.decode(data, self.scale)

    def check_write(self, value: Scalar) -> str | None:
        """Why a value may not be written here, or None when it may."""
        if self.type.kind == "string":
            return None if isinstance(value, str) else "not a string"
        if not isinstance(value, (int, float)):
            return "not a number"
        if self.lookup is not None:
            if not (float(value).is_integer() and int(value) in self.lookup):
                return f"{value:g} is not one of {self.lookup.as_text()}"
            return None
        if self.minimum is not None and value < self.minimum:
            return f"{value:g} is below the minimum {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"{value:g} is above the maximum {self.maximum:g}"
        return None


@dataclass(frozen=True, slots=True)
class ServiceTable:
    """All registers of one service type, sorted by address, with a path index."""

    name: str  # short type, e.g. "battery"
    registers: tuple[Register, ...]
    by_path: Mapping[str, tuple[Register, ...]]
    low: int  # first address
    high: int  # one past the last address

    @property
    def service(self) -> str:
        return SERVICE_PREFIX + self.name


@dataclass(frozen=True, slots=True)
class AddressRun:
    """Precomputed for every mapped address: which table it is in and how far reads may go."""

    table: ServiceTable
    run_end: int  # one past the last address of the contiguous mapped run containing it
    register: Register  # the register covering this address


@dataclass(frozen=True, slots=True)
class CompiledMap:
    services: Mapping[str, ServiceTable]
    by_address: Mapping[int, AddressRun]  # every mapped address -> its run
    unit_ids: Mapping[int, int]  # exceptions: unit id -> device instance
    lookups: Mapping[str, Lookup]

    def instance_for_unit(self, unit_id: int) -> int:
        return self.unit_ids.get(unit_id, unit_id)

    def unit_for_instance(self, instance: int) -> int | None:
        """The unit id clients use to reach a device instance (None if unreachable)."""
        for unit, inst in self.unit_ids.items():
            if inst == instance and unit != 0:
                return unit
        if 0 <= instance <= 247 and instance not in self.unit_ids:
            return instance
        return None


K = TypeVar("K")
V = TypeVar("V")


def frozen_map(d: dict[K, V]) -> Mapping[K, V]:
    return MappingProxyType(d)
