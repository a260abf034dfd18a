"""Register codecs: how a value sits in 16-bit Modbus registers, and nothing else.

A codec knows width, signedness, word order and the number format (integer, float32,
accumulator, text). What counts as "not available" is NOT the codec's business: the served
GX map uses the type's sentinel (:func:`gx_not_available`), SunSpec devices their "not
implemented" values (:func:`sunspec_not_implemented`), other devices whatever their row
declares. Scaling: ``register = round(value * scale)``, rounded half away from zero, as the
reference server does; a negative scale flips the sign.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from typing import Final

Raw = int | float | str

_TYPE_RE: Final = re.compile(r"^([a-z0-9]+)(?:\[(\d+)\])?$")
MAX_WIDTH: Final = 125  # a register run longer than one FC 3 read makes no sense


@dataclass(frozen=True, slots=True)
class Codec:
    """One register type: ``uint16``, ``int32``, ``float32``, ``acc32``, ``string[8]`` ..."""

    name: str  # as written in mappings, e.g. "uint16", "string[8]", "reserved[3]"
    form: str  # "int", "float", "string" or "reserved"
    width: int  # registers
    signed: bool = False
    low_word_first: bool = False
    packer: struct.Struct | None = None  # big-endian, high word first

    @property
    def raw_min(self) -> int:
        return -(1 << (16 * self.width - 1)) if self.signed else 0

    @property
    def raw_max(self) -> int:
        bits = 16 * self.width
        return (1 << (bits - 1)) - 1 if self.signed else (1 << bits) - 1

    def pack(self, raw: Raw) -> bytes:
        """Register bytes of a raw value (an in-range integer, a float, or text)."""
        if self.form == "string":
            assert isinstance(raw, str)
            return raw.encode("latin-1", errors="replace")[: 2 * self.width].ljust(2 * self.width, b"\x00")
        if self.form == "reserved":
            return b"\xff\xff" * self.width
        assert self.packer is not None
        data = self.packer.pack(raw)
        return _swap_words(data) if self.low_word_first else data

    def unpack(self, data: bytes) -> Raw:
        """The raw value in register bytes (text up to its first NUL)."""
        if len(data) != 2 * self.width:
            raise ValueError(f"{self.name} needs {2 * self.width} bytes, got {len(data)}")
        if self.form == "string":
            return data.split(b"\x00", 1)[0].decode("latin-1")
        if self.form == "reserved":
            return 0
        assert self.packer is not None
        raw: Raw = self.packer.unpack(_swap_words(data) if self.low_word_first else data)[0]
        return raw

    def to_raw(self, value: float, scale: float, avoid: int | None = None) -> Raw:
        """``value * scale`` as this type holds it: integers rounded half away from zero and
        clamped into range, never onto ``avoid`` (the not-available value) but next to it."""
        scaled = value * scale
        if self.form == "float":
            return float(scaled)
        lo, hi = self.raw_min, self.raw_max
        raw = hi if scaled >= hi else lo if scaled <= lo else round_half_away(scaled)
        if raw == avoid:
            raw = raw - 1 if raw == hi or raw > 0 else raw + 1
        return raw

    def value_of(self, raw: Raw, scale: float) -> Raw:
        """The value a raw register content stands for."""
        if isinstance(raw, str) or scale == 1:
            return raw
        return raw / scale


def _swap_words(data: bytes) -> bytes:
    return b"".join(data[i : i + 2] for i in range(len(data) - 2, -1, -2))


def round_half_away(x: float) -> int:
    """Round half away from zero (2.5 -> 3, -2.5 -> -3), unlike Python's banker's rounding."""
    if isinstance(x, int):
        return x  # exact, even beyond 2**53 (uint64)
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


# name -> (width, signed, struct format, form)
_FIXED: Final[dict[str, tuple[int, bool, str, str]]] = {
    "uint16": (1, False, ">H", "int"),
    "int16": (1, True, ">h", "int"),
    "uint32": (2, False, ">I", "int"),
    "int32": (2, True, ">i", "int"),
    "uint64": (4, False, ">Q", "int"),
    "int64": (4, True, ">q", "int"),
    "acc32": (2, False, ">I", "int"),  # SunSpec accumulators: 0 = not accumulated
    "acc64": (4, False, ">Q", "int"),
    "sunssf": (1, True, ">h", "int"),  # SunSpec scale-factor exponent
    "float32": (2, False, ">f", "float"),
}
_SIZED: Final = ("string", "reserved")
TYPE_NAMES: Final = (*_FIXED, *(f"{b}[N]" for b in _SIZED))


class CodecSyntaxError(ValueError):
    """A type that cannot be parsed; subclasses say which rule of the mappings it breaks."""


class UnknownType(CodecSyntaxError):
    """Not a type name we know."""


class BadWidth(CodecSyntaxError):
    """A known type with a width that does not fit it."""


def parse_codec(text: str, *, low_word_first: bool = False) -> Codec:
    """Parse ``uint16``, ``int32``, ``float32``, ``string[8]``, ``reserved[3]`` ... into a Codec."""
    m = _TYPE_RE.match(text.strip())
    base = m.group(1) if m else ""
    if base not in _FIXED and base not in _SIZED:
        raise UnknownType(f"unknown type {text!r} ({', '.join(TYPE_NAMES)})")
    assert m is not None
    count = m.group(2)
    if base in _FIXED:
        if count is not None:
            raise BadWidth(f"type {base} has a fixed width of {_FIXED[base][0]}; drop the [{count}]")
        width, signed, fmt, form = _FIXED[base]
        swap = low_word_first and width > 1
        return Codec(base, form, width, signed, swap, struct.Struct(fmt))
    if count is None:
        raise BadWidth(f"type {base} needs a width in registers, e.g. {base}[4]")
    n = int(count)
    if not 1 <= n <= MAX_WIDTH:
        raise BadWidth(f"width of {base}[{n}] must be 1..{MAX_WIDTH} registers")
    return Codec(f"{base}[{n}]", base, n)


def gx_not_available(codec: Codec) -> int | None:
    """The GX register list's "not available" raw value: all ones unsigned, the largest
    positive signed; None for text (all zero) and floats (NaN)."""
    return codec.raw_max if codec.form == "int" else None


def sunspec_not_implemented(codec: Codec) -> int | None:
    """SunSpec's "not implemented" raw value: int16 0x8000, uint16 0xFFFF, acc32/acc64 0,
    int32 0x80000000, uint32 0xFFFFFFFF, a scale factor 0x8000; NaN for float32."""
    if codec.form != "int":
        return None
    if codec.name in ("acc32", "acc64"):
        return 0
    return codec.raw_min if codec.signed else codec.raw_max


def apply_scale_factor(raw: int, sf: int) -> float | None:
    """A SunSpec value with its scale-factor exponent; an unimplemented factor (0x8000, read
    as -32768) makes the value invalid, never 0 and never a huge number."""
    if sf == -32768 or not -10 <= sf <= 10:
        return None
    return raw * 10.0**sf
