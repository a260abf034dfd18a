"""Round-trip and edge cases for every register type and scale."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registers.types import TypeSyntaxError, parse_type, round_half_away

INT_TYPES = ["uint16", "int16", "uint32", "int32", "uint64"]
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


@pytest.mark.parametrize("bad", ["float32", "uint16[2]", "string", "string[0]", "reserved[126]", "INTERNAL[1]"])
def test_bad_types_rejected(bad: str) -> None:
    with pytest.raises(TypeSyntaxError):
        parse_type(bad)
