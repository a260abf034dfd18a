"""Modbus register types: value <-> big-endian register words.

``register = round(value * scale)``, rounded half away from zero (as the reference server
does); negative scales flip the sign. Numbers outside the type's range are clamped to the
largest/smallest value that is *not* the type's "not available" sentinel, so a real reading
can never be mistaken for "unknown". Invalid values (None, NaN, wrong kind) encode to the
sentinel. Strings are Latin-1, two characters per register, high byte first, zero padded.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from typing import Final

from registers.values import Scalar

_TYPE_RE: Final = re.compile(r"^(uint16|int16|uint32|int32|uint64|string|reserved)(?:\[(\d+)\])?$")


@dataclass(frozen=True, slots=True)
class RegType:
    """One Modbus type: its name as written in mappings, width and codec parameters."""

    name: str  # as in the reference, e.g. "uint16", "string[8]", "reserved[3]"
    kind: str  # "int", "string" or "reserved"
    width: int  # registers
    signed: bool = False
    packer: struct.Struct | None = None

    @property
    def raw_min(self) -> int:
        return -(1 << (16 * self.width - 1)) if self.signed else 0

    @property
    def raw_max(self) -> int:
        bits = 16 * self.width
        return (1 << (bits - 1)) - 1 if self.signed else (1 << bits) - 1

    @property
    def sentinel(self) -> bytes:
        """The "not available" bytes: all-ones unsigned, max positive signed, zeros for strings."""
        if self.kind == "string":
            return bytes(2 * self.width)
        if self.kind == "reserved":
            return b"\xff\xff" * self.width
        assert self.packer is not None
        return self.packer.pack(self.raw_max)

    @property
    def zero(self) -> bytes:
        """What the reference server sends for an invalid value (option ``invalid = "zero"``)."""
        if self.kind == "reserved":
            return self.sentinel
        return bytes(2 * self.width)

    def encode(self, value: Scalar, scale: float = 1.0) -> bytes:
        """Encode a value; anything invalid becomes the sentinel."""
        if self.kind == "int":
            assert self.packer is not None
            if isinstance(value, bool):
                value = int(value)
            if not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
                return self.sentinel
            return self.packer.pack(self.clamp(value * scale))
        if self.kind == "string":
            if not isinstance(value, str):
                return self.sentinel
            data = value.encode("latin-1", errors="replace")[: 2 * self.width]
            return data.ljust(2 * self.width, b"\x00")
        return self.sentinel

    def decode(self, data: bytes, scale: float = 1.0) -> Scalar:
        """Decode register bytes to a value; the sentinel decodes to None."""
        if len(data) != 2 * self.width:
            raise ValueError(f"{self.name} needs {2 * self.width} bytes, got {len(data)}")
        if self.kind == "int":
            assert self.packer is not None
            raw: int = self.packer.unpack(data)[0]
            if raw == self.raw_max:
                return None
            if scale == 1:
                return raw
            return raw / scale
        if self.kind == "string":
            return data.split(b"\x00", 1)[0].decode("latin-1")
        return None

    def clamp(self, scaled: float) -> int:
        """Round a scaled value into the type range, leaving out the sentinel (raw_max)."""
        if scaled >= self.raw_max - 1:
            return self.raw_max - 1
        if scaled <= self.raw_min:
            return self.raw_min
        return round_half_away(scaled)

    def raw_of(self, value: float, scale: float) -> int:
        """The register integer a value would be written as (before clamping)."""
        return round_half_away(value * scale)


def round_half_away(x: float) -> int:
    """Round half away from zero (2.5 -> 3, -2.5 -> -3), unlike Python's banker's rounding."""
    if isinstance(x, int):
        return x  # exact, even beyond 2**53 (uint64)
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


_FIXED: Final = {
    "uint16": (1, False, ">H"),
    "int16": (1, True, ">h"),
    "uint32": (2, False, ">I"),
    "int32": (2, True, ">i"),
    "uint64": (4, False, ">Q"),
}

MAX_WIDTH: Final = 125  # a register run longer than one FC3 read makes no sense


class TypeSyntaxError(ValueError):
    """A type name that is not one of ours, or a width that does not fit the type."""


def parse_type(text: str) -> RegType:
    """Parse ``uint16``, ``int32``, ``string[8]``, ``reserved[3]`` ... into a RegType."""
    m = _TYPE_RE.match(text.strip())
    if not m:
        raise TypeSyntaxError(f"unknown type {text!r} (uint16, int16, uint32, int32, uint64, string[N], reserved[N])")
    base, count = m.group(1), m.group(2)
    if base in _FIXED:
        if count is not None:
            raise TypeSyntaxError(f"type {base} has a fixed width of {_FIXED[base][0]}; drop the [{count}]")
        width, signed, fmt = _FIXED[base]
        return RegType(base, "int", width, signed, struct.Struct(fmt))
    if count is None:
        raise TypeSyntaxError(f"type {base} needs a width in registers, e.g. {base}[4]")
    n = int(count)
    if not 1 <= n <= MAX_WIDTH:
        raise TypeSyntaxError(f"width of {base}[{n}] must be 1..{MAX_WIDTH} registers")
    return RegType(f"{base}[{n}]", base, n)
