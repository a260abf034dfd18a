"""Finding a SunSpec device's models: the "SunS" marker, the model chain, logical devices.

The probe reads 2 registers at base 40000, then 50000, then 0, looking for "SunS"; then walks
the model headers (id, length) until id 0xFFFF. The walk is bounded (``MAX_MODELS`` and the
end of the address space), so a chain that never ends is an error, not a hang. A model 1 in
the middle of a chain starts the next logical device (SolarEdge puts its meters after the
inverter, each with its own model 1 and no end marker between).

``read_block`` reads any number of registers in as few requests as the device allows,
tolerating answers shorter than asked (SMA answers long reads short).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from gateway.sources.poller import ProbeFailed
from gateway.transports.tcp import ExceptionResponse, ModbusLink

BASES: Final = (40000, 50000, 0)
SUNS: Final = b"SunS"
END: Final = 0xFFFF
MAX_MODELS: Final = 64
MAX_READ: Final = 125


@dataclass(frozen=True, slots=True)
class ModelAt:
    id: int
    address: int  # of its ID register
    length: int  # L: registers after ID and L

    @property
    def size(self) -> int:
        return self.length + 2


@dataclass
class LogicalDevice:
    """The models from one model 1 up to the next (or the end)."""

    models: list[ModelAt] = field(default_factory=list)

    def first(self, *ids: int) -> ModelAt | None:
        return next((m for m in self.models if m.id in ids), None)


async def read_block(link: ModbusLink, unit: int, address: int, count: int) -> bytes:
    """``count`` registers from ``address`` (call with ``link.lock`` held)."""
    out = bytearray()
    while len(out) < 2 * count:
        at = address + len(out) // 2
        want = min(MAX_READ, count - len(out) // 2)
        data = await link.read_locked(unit, at, want)
        if not data:
            raise ProbeFailed(f"read {at}+{want}: empty answer")
        out += data
    return bytes(out[: 2 * count])


async def find_base(link: ModbusLink, unit: int) -> int:
    """The address of "SunS" (the first model's ID follows it); ProbeFailed if there is none."""
    for base in BASES:
        try:
            data = await link.read_locked(unit, base, 2)
        except ExceptionResponse:
            continue
        if data == SUNS:
            return base
    raise ProbeFailed(f'no "SunS" at {", ".join(map(str, BASES))} (unit {unit})')


async def walk(link: ModbusLink, unit: int, base: int) -> list[ModelAt]:
    """Every model header from ``base + 2`` to the end marker (bounded)."""
    models: list[ModelAt] = []
    address = base + 2
    for _ in range(MAX_MODELS):
        if address + 2 > 0x10000:
            break
        try:
            header = await link.read_locked(unit, address, 2)
        except ExceptionResponse:  # no end marker, nothing more mapped: the chain ends here
            return _checked(models)
        if len(header) < 4:
            raise ProbeFailed(f"model header at {address}: short answer")
        model_id, length = int.from_bytes(header[:2], "big"), int.from_bytes(header[2:], "big")
        if model_id == END or (model_id == 0 and length == 0):
            return _checked(models)
        models.append(ModelAt(model_id, address, length))
        address += 2 + length
    raise ProbeFailed(f"the model chain from {base} does not end within {MAX_MODELS} models")


def _checked(models: list[ModelAt]) -> list[ModelAt]:
    if not models or models[0].id != 1:
        raise ProbeFailed("the model chain does not start with model 1 (common)")
    return models


def logical_devices(models: list[ModelAt]) -> list[LogicalDevice]:
    devices: list[LogicalDevice] = []
    for m in models:
        if m.id == 1 or not devices:
            devices.append(LogicalDevice())
        devices[-1].models.append(m)
    return devices
