"""``gx-gateway scan --ble`` over a replay: sensors listed with kind, RSSI and key, and their
[[device]] tables (which a gateway then loads); no adapter is one line."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from gateway.config import parse_config
from gateway.sim.ble_sensors import demo_adverts, write_adverts
from gateway.transports.ble_advert import Advert
from tests.helpers import ROOT


def test_scan_ble_lists_the_sensors_and_prints_device_tables(tmp_path: Path) -> None:
    log = tmp_path / "air.jsonl"
    phone = Advert(1764806400.2, "4C:57:CA:00:00:09", -40, "Phone", {0x004C: b"\x10\x05"})
    write_adverts(log, iter([*demo_adverts(3), phone]))
    res = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "scan", "--ble", "--seconds", "5", "--ble-source", f"replay:{log}"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "C0:3B:98:A1:00:01   -64  Victron battery monitor       yes" in res.stderr
    assert "C0:3B:98:A1:00:02   -71  Mopeka Pro Check              no" in res.stderr
    assert "3 advertisers heard, 2 sensors gx-gateway reads" in res.stderr
    tables = tomllib.loads(res.stdout)["device"]
    assert [(d["driver"], d["address"], d["instance"]) for d in tables] == [
        ("victron-ble", "C0:3B:98:A1:00:01", 45),
        ("mopeka", "C0:3B:98:A1:00:02", 46),
    ]
    tables[0]["key"] = "0df4d0395b7d1a876c0c33ecb9e70dcd"  # as the user pastes it from VictronConnect
    assert len(parse_config({"device": tables}).devices) == 2


def test_scan_ble_without_bluetooth_is_one_line() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "scan", "--ble", "--seconds", "3", "--ble-source", "bluez:hci7"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 1 and res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.strip().startswith(
        "gx-gateway scan: no Bluetooth"
    ), res.stderr
