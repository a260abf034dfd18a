"""VE.Direct as data: the packaged products and fields decode their sample captures, and a
broken row is one ``file:line: Rnn`` message (every problem listed, none stops the others)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from registers import MappingError, compile_mappings, load_default
from registers.compile.vedirect_fields import decode_capture
from registers.vedirect import block_bytes, vedirect_map
from tests.helpers import MAPPINGS

VMAP = vedirect_map(load_default(defer_n2k=True))
# The rules the tests below break (tests/unit/test_rules.py checks every rule has a fixture).
VEDIRECT_RULES = frozenset({"R70", "R71", "R72", "R73", "R74", "R75", "R76", "R77", "R78"})


def test_products_and_services_are_packaged() -> None:
    assert VMAP.products[0xA053].service == "solarcharger"
    assert VMAP.products[0xA389].name == "SmartShunt 500A/50mV"
    assert VMAP.products[0x0203].service == "battery"
    assert VMAP.products[0xA2A2].name == "Phoenix Inverter 24V 3000VA 230V"
    assert {"solarcharger", "battery", "inverter"} <= set(VMAP.fields)
    assert set(VMAP.samples) >= {"smartsolar-75-15", "smartshunt-500a", "phoenix-24-3000"}


def test_an_inverter_alarm_outranks_its_warning() -> None:
    values, _ = VMAP.decode("inverter", {"AR": "256", "WARN": "257", "AC_OUT_V": "23002", "MODE": "5"})
    assert values["/Alarms/Overload"] == 2 and values["/Alarms/LowVoltage"] == 1 and values["/Alarms/Ripple"] == 0
    assert values["/Ac/Out/L1/V"] == pytest.approx(230.02) and values["/Mode"] == 5


def test_scales_units_and_flags() -> None:
    block = {"V": "26201", "I": "-3250", "CE": "-52300", "SOC": "812", "TTG": "-1", "AR": "0x41", "Alarm": "ON"}
    values, refused = VMAP.decode("battery", block)
    assert values["/Dc/0/Voltage"] == pytest.approx(26.201)
    assert values["/Dc/0/Current"] == pytest.approx(-3.25)
    assert values["/ConsumedAmphours"] == pytest.approx(-52.3)
    assert values["/Soc"] == pytest.approx(81.2)
    assert values["/TimeToGo"] is None  # -1: infinite, not a number of seconds
    assert values["/Alarms/LowVoltage"] == 2 and values["/Alarms/HighTemperature"] == 2
    assert values["/Alarms/HighVoltage"] == 0 and values["/Alarms/Alarm"] == 2
    assert refused == 0


def test_out_of_range_and_unparseable_values_are_refused_and_counted() -> None:
    values, refused = VMAP.decode("solarcharger", {"V": "999999", "PPV": "abc", "CS": "3"})
    assert values["/Dc/0/Voltage"] is None and values["/Yield/Power"] is None
    assert values["/State"] == 3 and refused == 2


def test_a_capture_decodes_as_its_sample_says() -> None:
    values, product, framer = decode_capture(VMAP, VMAP.samples["smartsolar-75-15"])
    assert product is not None and product.name == "SmartSolar MPPT 75/15"
    assert framer.blocks == 3 and framer.bad_checksum == 0 and len(framer.hex_frames) == 1
    assert values["/Pv/V"] == pytest.approx(37.82) and values["/State"] == 4


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, root)
    return root


def _problems(root: Path) -> list[str]:
    with pytest.raises(MappingError) as e:
        compile_mappings(root, shown_root="mappings", defer_n2k=True)
    return [str(p) for p in e.value.problems]


def test_broken_rows_are_file_line_rule_messages(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    with (root / "vedirect" / "solarcharger.csv").open("a", encoding="utf-8") as f:
        f.write("VPV,/Pv/Nope,number,0.001,,,,,\n")  # line 15: undeclared path
        f.write("H20,/History/Daily/0/Yield,number,0.01,,,,,\n")  # 16: path fed twice
        f.write("XX,/Yield/Power,gauge,1,,,,,\n")  # 17: kind
        f.write("YY,/Yield/Power,number,0,,,,,\n")  # 18: scale 0 (and path twice)
        f.write("PID,/ErrorCode,number,1,,,,,\n")  # 19: identity label
        f.write("ZZ,/ErrorCode,flag,1,40,,,,\n")  # 20: bit
        f.write("WW,/MppOperationMode,number,1,,x,5,1,\n")  # 21: invalid and bounds
    first = len((root / "vedirect" / "products.csv").read_text(encoding="utf-8").splitlines()) + 1
    with (root / "vedirect" / "products.csv").open("a", encoding="utf-8") as f:
        f.write("0xA053,Twin,solarcharger\n")  # first: pid twice
        f.write("A054,No hex,solarcharger\n")  # first + 1
        f.write("0xA999,Fridge,fridge\n")  # first + 2: unknown service
    (root / "vedirect" / "fridge.csv").write_text("label,path,kind,scale\n", encoding="utf-8")
    found = _problems(root)
    file = "mappings/vedirect/solarcharger.csv"
    for expected in (
        f"{file}:15: R73 path '/Pv/Nope' is not declared",
        f"{file}:16: R73 path /History/Daily/0/Yield is already fed at {file}:11",
        f"{file}:17: R74 kind 'gauge' is not one of",
        f"{file}:18: R75 scale '0' must be a non-zero number",
        f"{file}:19: R72 label PID is the device's identity",
        f"{file}:20: R75 bit '40' must be 0..31",
        f"{file}:21: R76 invalid 'x' is not an integer",
        f"mappings/vedirect/products.csv:{first}: R70 pid 0xA053 is listed twice",
        f"mappings/vedirect/products.csv:{first + 1}: R70 pid 'A054' is not 0x hex",
        f"mappings/vedirect/products.csv:{first + 2}: R70 service 'fridge' has no vedirect file",
        "mappings/vedirect/fridge.csv: R71 'fridge' is not a VE.Direct service",
    ):
        assert any(p.startswith(expected) for p in found), (expected, found)


def test_a_sample_that_disagrees_with_its_capture_fails_check(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    samples = root / "vedirect" / "samples"
    twin = samples / "smartsolar-75-15.csv"
    twin.write_text(twin.read_text(encoding="utf-8").replace("/Pv/V,37.82", "/Pv/V,37.8"), encoding="utf-8")
    (samples / "bad.vedirect").write_bytes(block_bytes({"PID": "0xA053", "V": "12000"}, corrupt=True))
    (samples / "bad.csv").write_text("path,value\n", encoding="utf-8")
    (samples / "lonely.vedirect").write_bytes(block_bytes({"PID": "0xA053", "V": "12000"}))
    found = _problems(root)
    assert any("smartsolar-75-15.csv:4: R78 /Pv/V expected '37.8', the capture gives 37.82" in p for p in found), found
    assert any(p.startswith("mappings/vedirect/samples/bad.vedirect: R77 0 good blocks") for p in found), found
    assert any(p.startswith("mappings/vedirect/samples/lonely.vedirect: R77 has no lonely.csv") for p in found), found
