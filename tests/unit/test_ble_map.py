"""Bluetooth LE as data: mappings/ble/ takes each library value to a path, and a broken row is
one ``file:line: Rnn`` message (every problem listed, none stops the others)."""

from __future__ import annotations

import enum
import shutil
from pathlib import Path

import pytest

from registers import MappingError, compile_mappings, load_default
from registers.ble import ble_map
from tests.helpers import MAPPINGS

BMAP = ble_map(load_default(defer_n2k=True))
# The rules the tests below break (tests/unit/test_rules.py checks every rule has a fixture).
BLE_RULES = frozenset({"R80", "R81", "R82", "R83", "R84"})


class State(enum.Enum):
    FLOAT = 5


def test_the_packaged_rows_decode_with_their_scales() -> None:
    raw = {"remaining_mins": 21, "voltage": 12.9, "soc": None, "consumed_ah": -18.5}
    values = BMAP.decode("victron", "battery", raw.get)
    assert values["/TimeToGo"] == 1260 and values["/Dc/0/Voltage"] == 12.9  # minutes -> seconds
    assert values["/Soc"] is None and values["/Dc/0/MidVoltage"] is None  # not sent: invalid
    solar = BMAP.decode("victron", "solarcharger", {"yield_today": 1230, "charge_state": State.FLOAT}.get)
    assert solar["/History/Daily/0/Yield"] == 1.23 and solar["/State"] == 5  # Wh -> kWh; an enum's number
    assert BMAP.decode("ruuvi", "temperature", {"battery_voltage_mv": 2995}.get)["/BatteryVoltage"] == 2.995
    assert set(BMAP.decode("mopeka", "tank", {}.get)) == {"/RawValue", "/Temperature", "/BatteryVoltage"}


def test_a_new_field_is_a_row(tmp_path: Path) -> None:
    root = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, root)
    with (root / "ble" / "victron.csv").open("a", encoding="utf-8") as f:
        f.write("battery,alarm,/Alarms/LowVoltage,1,\n")
    bmap = ble_map(compile_mappings(root, shown_root="mappings", defer_n2k=True))
    assert bmap.decode("victron", "battery", {"alarm": 1}.get)["/Alarms/LowVoltage"] == 1


def _problems(root: Path) -> list[str]:
    with pytest.raises(MappingError) as e:
        compile_mappings(root, shown_root="mappings", defer_n2k=True)
    return [str(p) for p in e.value.problems]


def test_broken_rows_are_file_line_rule_messages(tmp_path: Path) -> None:
    root = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, root)
    file = root / "ble" / "ruuvi.csv"
    first = len(file.read_text(encoding="utf-8").splitlines()) + 1
    with file.open("a", encoding="utf-8") as f:
        f.write("fridge,temperature_celsius,/Temperature,1,\n")  # first: unknown service
        f.write("temperature,Humidity-Percent,/Humidity2,1,\n")  # +1: not an identifier
        f.write("temperature,temperature_celsius,/Temperature2,1,\n")  # +2: field twice
        f.write("temperature,dew_point,/Pressure,1,\n")  # +3: path twice
        f.write("temperature,acceleration,Accel,1,\n")  # +4: not a path
        f.write("temperature,mac,/CustomName,1,\n")  # +5: a text path
        f.write("temperature,rssi,/Rssi,0,\n")  # +6: scale 0
    (root / "ble" / "xiaomi.csv").write_text("service,field,path,scale\n", encoding="utf-8")
    found = _problems(root)
    shown = "mappings/ble/ruuvi.csv"
    for expected in (
        f"{shown}:{first}: R81 service 'fridge' is not declared by the Modbus map",
        f"{shown}:{first + 1}: R82 field 'Humidity-Percent' is not a lower-case identifier",
        f"{shown}:{first + 2}: R82 field temperature_celsius of temperature is already read at {shown}:2",
        f"{shown}:{first + 3}: R83 path /Pressure of temperature is already fed at {shown}:4",
        f"{shown}:{first + 4}: R83 path 'Accel' does not look like /Dc/0/Voltage",
        f"{shown}:{first + 5}: R83 path /CustomName is text in the Modbus map",
        f"{shown}:{first + 6}: R84 scale '0' must be a non-zero number",
        "mappings/ble/xiaomi.csv: R80 'xiaomi' is not a BLE decoder (victron, mopeka, ruuvi)",
    ):
        assert any(p.startswith(expected) for p in found), (expected, found)
