"""Decoding a SunSpec model block into path values, with plans compiled once per model.

A block is the model's registers from its ID register on, read in ONE request so a value and
its scale factor always belong together. Every SunSpec "not implemented" value (int16 0x8000,
uint16 0xFFFF, acc32 0, 32-bit 0x80000000/0xFFFFFFFF, float32 NaN) and a scale factor of
0x8000 make the value None (invalid): never 0, never a huge number.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from registers.codec import Raw, apply_scale_factor
from registers.model import SunSpecModelMap
from registers.values import Scalar

SF: Final = struct.Struct(">h")


@dataclass(frozen=True, slots=True)
class _Step:
    path: str
    start: int  # byte offsets in the block
    end: int
    unpack: Callable[[bytes], Raw]
    na: int | None
    sf_at: int | None  # byte offset of the scale factor
    sf_fixed: int
    factor: float  # scale, divided by the phase count for split values
    text: bool


class BlockDecoder:
    """Decodes one model's block for a device with ``phases`` phases."""

    def __init__(self, model: SunSpecModelMap, phases: int = 1) -> None:
        self.model = model
        self.size = model.length + 2
        self.steps = tuple(
            _Step(
                f.path,
                2 * f.offset,
                2 * (f.offset + f.codec.width),
                f.codec.unpack,
                f.not_implemented,
                2 * f.sf_offset if f.sf_offset is not None else None,
                f.sf_fixed,
                f.scale / (phases if f.split else 1),
                f.codec.form == "string",
            )
            for f in model.fields
        )
        self.needed = max((max(s.end, (s.sf_at or 0) + 2) for s in self.steps), default=0)

    def decode(self, block: bytes) -> dict[str, Scalar]:
        if len(block) < self.needed:
            raise ValueError(f"model {self.model.model}: {len(block) // 2} registers, {self.needed // 2} needed")
        out: dict[str, Scalar] = {}
        for s in self.steps:
            raw = s.unpack(block[s.start : s.end])
            if s.text:
                out[s.path] = str(raw).strip() or None
                continue
            if raw == s.na or (isinstance(raw, float) and not math.isfinite(raw)):
                out[s.path] = None
                continue
            if s.sf_at is not None:
                value = apply_scale_factor(int(raw), SF.unpack_from(block, s.sf_at)[0])
            else:
                value = float(raw) * 10.0**s.sf_fixed if s.sf_fixed else float(raw)
            out[s.path] = None if value is None else value * s.factor
        return out


def is_null_frame(block: bytes, status_offset: int) -> bool:
    """Fronius "null frame": every value register zero while St (operating state) reads 7."""
    st = block[2 * status_offset : 2 * status_offset + 2]
    rest = block[4 : 2 * status_offset]
    return st == b"\x00\x07" and not any(rest)
