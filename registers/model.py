"""The compiled map: frozen, indexed, split by concern.

- ``cmap.paths``: what each path of each service type *means* (unit, enum, allowed range,
  writable, derived-by); every frontend and the write gate use it.
- ``cmap.modbus``: how the GX register list *encodes* paths (addresses, codecs, scales,
  unit ids), ready for the request path.
- ``cmap.n2k``, ``cmap.devices``: NMEA 2000 PGN field specs and device-driver register specs,
  filled by the compilers that the next mapping kinds add.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from registers.codec import Codec
from registers.derive import Derivation
from registers.origin import Source
from registers.values import Scalar

if TYPE_CHECKING:
    from registers.pgn_specs import N2kDeviceSpec

SERVICE_PREFIX = "com.victronenergy."
RESERVED_PATH = "RESERVED"


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
class PathSpec:
    """What one path of a service type means, whatever protocol carries it."""

    service: str  # short type, e.g. "battery"
    path: str
    text: bool  # a string path (else a number)
    unit: str
    lookup: Lookup | None
    minimum: float | None  # declared range for writes, in value units
    maximum: float | None
    writable: bool
    derive: Derivation | None
    source: Source
    # What the encodings can carry at all (the widest register of the path); writes outside
    # it could only be clamped, so they are refused.
    carry_min: float | None = None
    carry_max: float | None = None
    # A maximum that depends on the device: at most its current value at this path of the same
    # device (/Ac/PowerLimit <= /Ac/MaxPower); the write gate checks it against the Store.
    maximum_path: str | None = None

    def refuse(self, value: Scalar) -> str | None:
        """Why ``value`` may not be written to this path, or None when it may."""
        if not self.writable:
            return f"{self.path} is read-only"
        if self.text:
            return None if isinstance(value, str) else f"{self.path} takes text, not {value!r}"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            return f"{self.path} takes a number, not {value!r}"
        if self.lookup is not None:
            if not (float(value).is_integer() and int(value) in self.lookup):
                return f"{self.path}: {value:g} is not one of {self.lookup.as_text()}"
            return None
        if self.minimum is not None and value < self.minimum:
            return f"{self.path}: {value:g} is below the minimum {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"{self.path}: {value:g} is above the maximum {self.maximum:g}"
        if self.carry_min is not None and value < self.carry_min:
            return f"{self.path}: {value:g} is below {self.carry_min:g}, the least its registers carry"
        if self.carry_max is not None and value > self.carry_max:
            return f"{self.path}: {value:g} is above {self.carry_max:g}, the most its registers carry"
        return None


@dataclass(frozen=True, slots=True)
class ModbusRegister:
    """One register (or block) of the served GX map: a path's encoding at an address."""

    service: str
    address: int
    path: str  # RESERVED for reserved blocks
    codec: Codec
    scale: float
    writable: bool
    source: Source
    spec: PathSpec | None  # None for reserved blocks
    na_raw: int | None  # the served "not available" raw value (the GX sentinel)
    na: bytes  # what an invalid value reads as with invalid = "sentinel"
    zero: bytes  # ... and with invalid = "zero" (the reference server's answer)

    @property
    def end(self) -> int:
        return self.address + self.codec.width

    @property
    def reserved(self) -> bool:
        return self.codec.form == "reserved"

    @property
    def derive(self) -> Derivation | None:
        return self.spec.derive if self.spec is not None else None

    def encode(self, value: Scalar) -> bytes:
        """Register bytes of a valid value (clamped, never onto the sentinel); invalid -> na."""
        codec = self.codec
        if codec.form == "string":
            return codec.pack(value) if isinstance(value, str) else self.na
        if codec.form == "reserved":
            return self.na
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
            return self.na
        return codec.pack(codec.to_raw(value, self.scale, self.na_raw))

    def decode(self, data: bytes) -> Scalar:
        """The value in register bytes; the sentinel decodes to None."""
        raw = self.codec.unpack(data)
        if self.reserved or raw == self.na_raw:
            return None
        return self.codec.value_of(raw, self.scale)


@dataclass(frozen=True, slots=True)
class ModbusTable:
    """All registers of one service type, sorted by address, with a path index."""

    name: str  # short type, e.g. "battery"
    registers: tuple[ModbusRegister, ...]
    by_path: Mapping[str, tuple[ModbusRegister, ...]]
    low: int  # first address
    high: int  # one past the last address

    @property
    def service(self) -> str:
        return SERVICE_PREFIX + self.name


@dataclass(frozen=True, slots=True)
class AddressRun:
    """Precomputed for every mapped address: which table it is in and how far reads may go."""

    table: ModbusTable
    run_end: int  # one past the last address of the contiguous mapped run containing it
    register: ModbusRegister  # the register covering this address


@dataclass(frozen=True, slots=True)
class ModbusMap:
    tables: Mapping[str, ModbusTable]
    by_address: Mapping[int, AddressRun]  # every mapped address -> its run
    unit_ids: Mapping[int, int]  # exceptions: unit id -> device instance

    @property
    def register_count(self) -> int:
        return sum(len(t.registers) for t in self.tables.values())

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


@dataclass(frozen=True, slots=True)
class SunSpecField:
    """One row of mappings/sunspec.csv, laid out: where the point sits in its model's block
    (offsets from the model's ID register), its scale-factor point, and how it becomes a path:
    ``value = raw * 10**sf * scale`` (divided by the phase count when ``split``)."""

    path: str
    point: str
    offset: int
    codec: Codec
    sf_offset: int | None  # a scale-factor point in the same block, or None
    sf_fixed: int  # the exponent when there is no scale-factor point (0 = none)
    scale: float
    split: bool
    not_implemented: int | None  # SunSpec's "not implemented" raw value of the point's type
    source: Source


@dataclass(frozen=True, slots=True)
class SunSpecModelMap:
    """What the driver publishes from one SunSpec model: ``service`` is ``common`` (model 1),
    ``pvinverter`` (1xx) or ``meter`` (2xx, published as the device's configured role)."""

    model: int
    service: str
    length: int  # L of the model's fixed block
    fields: tuple[SunSpecField, ...]


@dataclass(frozen=True, slots=True)
class CompiledMap:
    paths: Mapping[str, Mapping[str, PathSpec]]  # service type -> path -> meaning
    modbus: ModbusMap
    lookups: Mapping[str, Lookup]
    # service type -> its virtual NMEA 2000 devices (registers.pgn_specs.N2kDeviceSpec), from mappings/n2k
    n2k: Mapping[str, tuple[N2kDeviceSpec, ...]] = field(default_factory=lambda: frozen_map({}))
    devices: Mapping[str, Any] = field(default_factory=lambda: frozen_map({}))  # filled by device compilers
    sunspec: Mapping[int, SunSpecModelMap] = field(default_factory=lambda: frozen_map({}))  # mappings/sunspec.csv

    def path(self, service: str, path: str) -> PathSpec | None:
        specs = self.paths.get(service)
        return specs.get(path) if specs is not None else None


K = TypeVar("K")
V = TypeVar("V")


def frozen_map(d: dict[K, V]) -> Mapping[K, V]:
    return MappingProxyType(d)


class DeferredMap(Mapping[K, V]):
    """A read-only mapping built on first access, then kept: ``cmap.n2k`` for a gateway that
    may never use it (compiling it imports the NMEA 2000 stack). ``build`` raising (e.g.
    MappingError) raises at that access, and again at the next one."""

    def __init__(self, build: Callable[[], Mapping[K, V]]) -> None:
        self._build = build
        self._built: Mapping[K, V] | None = None

    @property
    def built(self) -> bool:
        return self._built is not None

    def _value(self) -> Mapping[K, V]:
        if self._built is None:
            self._built = self._build()
        return self._built

    def __getitem__(self, key: K) -> V:
        return self._value()[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._value())

    def __len__(self) -> int:
        return len(self._value())
