"""The demo's VE.Direct and CAN-bus BMS devices: they arrive through the real drivers (ptys,
a CAN bus), the banner gives their unit ids and unplug commands, and pulling a cable gives
0x0A within 3-5 s and recovery by itself."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient

from tests.demo_process import DemoProcess


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoProcess]:
    d = DemoProcess()
    yield d
    d.stop()


def unplug_file(demo: DemoProcess, link: str) -> Path:
    m = re.search(rf"touch (\S+)\s+# \w+ {link} ", demo.banner)
    assert m, demo.banner
    return Path(m.group(1))


def answers(client: ModbusTcpClient, unit: int, address: int) -> bool:
    return not client.read_holding_registers(address, count=1, device_id=unit).isError()


def test_banner_lists_the_native_devices(demo: DemoProcess) -> None:
    for line in ("unit 223  battery 277 (House bank (SmartShunt))", "unit 224  solarcharger 278 (MPPT roof)"):
        assert line in demo.banner
    assert "unit 225  battery 512 (House bank)" in demo.banner and "unit 226  solarcharger 279" in demo.banner
    mppt = str(demo.json("/api/v1/devices/solarcharger/278"))  # the JSON API shows where it comes from
    assert "VE.Direct /" in mppt and "SmartSolar MPPT 150/35" in mppt
    assert "CAN-bus BMS virtual:house-bms" in str(demo.json("/api/v1/devices/battery/512"))


def test_values_arrive_over_the_drivers_and_agree(demo: DemoProcess) -> None:
    client = ModbusTcpClient("127.0.0.1", port=demo.port)
    assert client.connect()
    try:
        shunt = client.read_holding_registers(259, count=1, device_id=223).registers[0]  # V x100 over VE.Direct
        bms = client.read_holding_registers(259, count=1, device_id=225).registers[0]  # V x100 over CAN
        system = client.read_holding_registers(840, count=1, device_id=100).registers[0]  # V x10
        assert 4400 <= shunt <= 5900 and abs(shunt - bms) <= 5 and abs(shunt / 10 - system) <= 2
        assert client.read_holding_registers(776, count=1, device_id=224).registers[0] >= 5000  # PV V x100
        limits = client.read_holding_registers(305, count=4, device_id=225).registers  # CVL, -, CCL, DCL x10
        assert limits[0] == 532 and limits[2] == 500 and limits[3] == 1000
    finally:
        client.close()


@pytest.mark.parametrize(("link", "unit"), [("mppt-roof", 224), ("house-bms", 225)])
def test_unplug_gives_0a_within_5_s_and_recovers(demo: DemoProcess, link: str, unit: int) -> None:
    control = unplug_file(demo, link)
    client = ModbusTcpClient("127.0.0.1", port=demo.port)
    assert client.connect()
    try:
        assert answers(client, unit, 259 if unit == 225 else 771)
        control.touch()
        pulled = time.monotonic()
        while answers(client, unit, 259 if unit == 225 else 771):
            assert time.monotonic() - pulled < 5.5, "still answering"
            time.sleep(0.1)
        assert time.monotonic() - pulled <= 5.5
        control.unlink()
        plugged = time.monotonic()
        while not answers(client, unit, 259 if unit == 225 else 771):
            assert time.monotonic() - plugged < 12, "did not come back"
            time.sleep(0.2)
    finally:
        control.unlink(missing_ok=True)
        client.close()
