"""The register image of a simulated SunSpec device, laid out from pysunspec2's model definitions.

"SunS" at the base address, then each model's ID, L and block (offsets from
registers/sunspec_models.py, never written by hand), then the end marker 0xFFFF 0. Values are set by
point name in engineering units and stored with the point's scale factor as the image holds it;
``set_raw`` stores raw register values (sentinels, faults). Registers outside the chain (a
vendor's own, e.g. SolarEdge's power control at 0xF300) live in ``extra``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from registers.codec import round_half_away, sunspec_not_implemented
from registers.sunspec_models import HEADER, ModelLayout, Point, layout


@dataclass(frozen=True, slots=True)
class ModelSlot:
    id: int
    address: int  # of the ID register
    layout: ModelLayout


class SunSpecImage:
    def __init__(self, base: int, models: Sequence[int]) -> None:
        self.base = base
        self.slots: list[ModelSlot] = []
        address = base + 2
        for model_id in models:
            model = layout(model_id)
            self.slots.append(ModelSlot(model_id, address, model))
            address += model.size
        self.end = address + 2  # one past the end marker
        self.regs = bytearray(2 * (self.end - base))
        self.regs[0:4] = b"SunS"
        for slot in self.slots:
            self._put(slot.address, struct.pack(">HH", slot.id, slot.layout.length))
            for point in slot.layout.points.values():  # everything "not implemented" until set
                if point.name not in ("ID", "L") and point.codec.form != "string":
                    self.set_raw(slot, point.name, _not_implemented(point))
        self._put(address, b"\xff\xff\x00\x00")
        self.extra: dict[int, int] = {}

    def slot(self, model_id: int, nth: int = 0) -> ModelSlot:
        return [s for s in self.slots if s.id == model_id][nth]

    def _put(self, address: int, data: bytes) -> None:
        off = 2 * (address - self.base)
        self.regs[off : off + len(data)] = data

    def _get(self, address: int, count: int) -> bytes:
        off = 2 * (address - self.base)
        return bytes(self.regs[off : off + 2 * count])

    # --- points ------------------------------------------------------------------------
    def set_raw(self, slot: ModelSlot, name: str, raw: int | float | str) -> None:
        point = slot.layout.points[name]
        self._put(slot.address + point.offset, point.codec.pack(raw))

    def raw(self, slot: ModelSlot, name: str) -> int | float | str:
        point = slot.layout.points[name]
        return point.codec.unpack(self._get(slot.address + point.offset, point.codec.width))

    def exponent(self, slot: ModelSlot, point: Point) -> int:
        if isinstance(point.sf, int):
            return point.sf
        if isinstance(point.sf, str):
            sf = self.raw(slot, point.sf)
            return int(sf) if isinstance(sf, int) and sf != -32768 else 0
        return 0

    def set(self, slot: ModelSlot, name: str, value: float | str | None) -> None:
        """A value in engineering units (None = not implemented), scaled by the point's factor."""
        point = slot.layout.points[name]
        if value is None:
            self.set_raw(slot, name, _not_implemented(point))
        elif isinstance(value, str) or point.codec.form != "int":
            self.set_raw(slot, name, value)
        else:
            raw = round_half_away(value / 10.0 ** self.exponent(slot, point))
            self.set_raw(slot, name, max(point.codec.raw_min, min(point.codec.raw_max, raw)))

    def value(self, slot: ModelSlot, name: str) -> float | None:
        point = slot.layout.points[name]
        raw = self.raw(slot, name)
        if isinstance(raw, str) or raw == _not_implemented(point):
            return None
        return float(raw) * 10.0 ** self.exponent(slot, point)

    # --- registers ---------------------------------------------------------------------
    def covers(self, address: int, count: int) -> bool:
        return self.base <= address and address + count <= self.end

    def read(self, address: int, count: int) -> bytes | None:
        if self.covers(address, count):
            return self._get(address, count)
        if all(a in self.extra for a in range(address, address + count)):
            return b"".join(struct.pack(">H", self.extra[a]) for a in range(address, address + count))
        return None

    def write(self, address: int, data: bytes) -> None:
        count = len(data) // 2
        if self.covers(address, count):
            self._put(address, data)
        else:
            for i in range(count):
                self.extra[address + i] = struct.unpack_from(">H", data, 2 * i)[0]


def _not_implemented(point: Point) -> int | float:
    na = sunspec_not_implemented(point.codec)
    return math.nan if na is None else na


__all__ = ["HEADER", "ModelSlot", "SunSpecImage"]
