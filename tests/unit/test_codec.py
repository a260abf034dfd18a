"""Codecs: round-trip and edge cases for every served register type and scale (with the GX's
"not available" value), and the device-side codecs (word order, float32, SunSpec)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registers.codec import (
    CodecSyntaxError,
    apply_scale_factor,
    parse_codec,
    round_half_away,
    sunspec_not_implemented,
)
from registers.compile.modbus import served_register
from registers.model import ModbusRegister
from registers.origin import Source

INT_TYPES = ["uint16", "int16", "uint32", "int32", "uint64"]


class Served:
    """One served register of a type, for any scale: what the Modbus frontend encodes."""

    def __init__(self, name: str) -> None:
        self.codec = parse_codec(name)
        self.width = self.codec.width
        self.raw_min, self.raw_max, self.packer = self.codec.raw_min, self.codec.raw_max, self.codec.packer

    def reg(self, scale: float) -> ModbusRegister:
        return served_register("battery", 0, "/X", self.codec, scale, True, Source("t", 1), None)

    def encode(self, value: object, scale: float = 1) -> bytes:
        return self.reg(scale).encode(value)  # type: ignore[arg-type]

    def decode(self, data: bytes, scale: float = 1) -> object:
        return self.reg(scale).decode(data)

    @property
    def sentinel(self) -> bytes:
        return self.reg(1).na

    @property
    def zero(self) -> bytes:
        return self.reg(1).zero


def parse_type(name: str) -> Served:
    return Served(name)


SCALES = [1, 10, 100, 1000, 10000000, 0.1, 0.01, -1, -10]


@pytest.mark.parametrize("name", INT_TYPES)
@pytest.mark.parametrize("scale", SCALES)
@given(data=st.data())
def test_int_round_trip(name: str, scale: float, data: st.DataObject) -> None:
    t = parse_type(name)
    # Any raw value except the sentinel decodes and re-encodes to the same bytes.
    lo, hi = t.raw_min, t.raw_max - 1
    if scale != 1:  # a scaled value is a float: round trips exactly well within 2**53
        lo, hi = max(lo, -(2**48)), min(hi, 2**48)
    raw = data.draw(st.integers(lo, hi))
    assert t.packer is not None
    encoded = t.packer.pack(raw)
    value = t.decode(encoded, scale)
    assert value is not None
    assert t.encode(value, scale) == encoded


@pytest.mark.parametrize("name", INT_TYPES)
@given(value=st.floats(allow_nan=True, allow_infinity=True, width=64))
def test_int_encode_clamps_and_never_emits_sentinel_for_numbers(name: str, value: float) -> None:
    t = parse_type(name)
    enc = t.encode(value, 10)
    if math.isfinite(value):
        assert enc != t.sentinel
        decoded = t.decode(enc, 10)
        assert isinstance(decoded, float)
        scaled = value * 10
        if scaled >= t.raw_max - 1:
            expected = (t.raw_max - 1) / 10
        elif scaled <= t.raw_min:
            expected = t.raw_min / 10
        else:
            expected = round_half_away(scaled) / 10
        assert decoded == expected
    else:
        assert enc == t.sentinel


@pytest.mark.parametrize(
    ("name", "sentinel"),
    [("uint16", "ffff"), ("int16", "7fff"), ("uint32", "ffffffff"), ("int32", "7fffffff"), ("uint64", "f" * 16)],
)
def test_invalid_values_encode_to_sentinel(name: str, sentinel: str) -> None:
    t = parse_type(name)
    for bad in (None, "text", float("nan")):
        assert t.encode(bad, 1).hex() == sentinel
    assert t.decode(bytes.fromhex(sentinel), 1) is None


def test_scaling_rounding_and_sign() -> None:
    u16, i16 = parse_type("uint16"), parse_type("int16")
    assert u16.encode(12.34, 100).hex() == "04d2"  # 1234
    assert u16.encode(0.05, 10).hex() == "0001"  # half away from zero
    assert i16.encode(-0.05, 10).hex() == "ffff"  # -1
    assert u16.encode(-3.5, -10).hex() == "0023"  # negative scale flips the sign: 35
    assert i16.encode(250, 0.1).hex() == "0019"  # 25
    assert u16.encode(-5, 1).hex() == "0000"  # clamped at the bottom
    assert u16.encode(70000, 1).hex() == "fffe"  # clamped below the sentinel
    assert i16.encode(True, 1).hex() == "0001"


@given(text=st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=20))
def test_string_round_trip_latin1(text: str) -> None:
    t = parse_type("string[8]")
    enc = t.encode(text)
    assert len(enc) == 16
    assert t.decode(enc) == text[:16]


def test_string_layout_and_invalid() -> None:
    t = parse_type("string[3]")
    assert t.encode("Abc") == b"Abc\x00\x00\x00"
    assert t.encode(None) == bytes(6)
    assert t.encode("€") == b"?\x00\x00\x00\x00\x00"  # not Latin-1: replaced, never an error


def test_reserved_reads_ffff() -> None:
    t = parse_type("reserved[3]")
    assert t.width == 3
    assert t.encode(5) == b"\xff" * 6
    assert t.zero == b"\xff" * 6


@pytest.mark.parametrize("bad", ["float64", "uint16[2]", "string", "string[0]", "reserved[126]", "INTERNAL[1]"])
def test_bad_types_rejected(bad: str) -> None:
    with pytest.raises(CodecSyntaxError):
        parse_codec(bad)


def test_low_word_first() -> None:
    """Carlo Gavazzi meters put the low word of a 32-bit value first."""
    c = parse_codec("int32", low_word_first=True)
    assert c.unpack(bytes.fromhex("56781234")) == 0x12345678
    assert c.pack(-2) == bytes.fromhex("fffeffff")
    q = parse_codec("uint64", low_word_first=True)
    assert q.unpack(bytes.fromhex("4444333322221111")) == 0x1111222233334444
    assert parse_codec("uint16", low_word_first=True).unpack(b"\x12\x34") == 0x1234  # one word: nothing to swap


def test_float32_big_endian_and_nan() -> None:
    c = parse_codec("float32")
    assert c.unpack(bytes.fromhex("43660000")) == 230.0
    assert c.to_raw(230.0, 1) == 230.0
    v = c.unpack(bytes.fromhex("7fc00000"))
    assert isinstance(v, float) and math.isnan(v)
    assert sunspec_not_implemented(c) is None  # NaN is the float's own "not available"


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("int16", -0x8000),
        ("uint16", 0xFFFF),
        ("acc32", 0),
        ("int32", -0x80000000),
        ("uint32", 0xFFFFFFFF),
        ("sunssf", -0x8000),
        ("acc64", 0),
    ],
)
def test_sunspec_not_implemented_values(name: str, raw: int) -> None:
    assert sunspec_not_implemented(parse_codec(name)) == raw


def test_sunspec_scale_factor() -> None:
    assert apply_scale_factor(2345, -1) == pytest.approx(234.5)
    assert apply_scale_factor(12, 2) == 1200
    assert apply_scale_factor(5, -32768) is None  # 0x8000: not implemented -> invalid, never 0
    assert apply_scale_factor(5, 99) is None  # nonsense exponent -> invalid, never a huge number


def test_clamping_avoids_the_declared_not_available_value() -> None:
    """A device-style NA at the bottom of the range (SunSpec int16 0x8000) is avoided too."""
    c = parse_codec("int16")
    assert c.to_raw(-40000, 1, avoid=-0x8000) == -0x7FFF
    assert c.to_raw(40000, 1, avoid=0x7FFF) == 0x7FFE
