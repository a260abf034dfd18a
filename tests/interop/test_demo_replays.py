"""The demo's replays (N2K tank senders and thermometer, BLE SmartShunt and Mopeka), stopped as a
user does it: the ``touch`` commands the banner prints. Each sensor goes /Connected 0 (0x0A on its
unit id, 0 in the JSON API) within 10 s, and comes back when the file is removed."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.pdu import ExceptionResponse

from tests.demo_process import DemoProcess

# unit id: (service, instance, a register it serves)
SENSORS = {
    40: ("tank", 40, 3004),
    41: ("tank", 41, 3004),
    42: ("temperature", 42, 3304),
    45: ("battery", 45, 259),
    46: ("tank", 46, 3004),
}


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoProcess]:
    d = DemoProcess()
    yield d
    d.stop()


def replay_controls(demo: DemoProcess) -> dict[str, Path]:
    section = demo.banner.partition("Stop a replay")[2]
    found = dict((m.group(2), Path(m.group(1))) for m in re.finditer(r"touch (\S+\.unplug)\s+# (\S+)", section))
    assert set(found) == {"NMEA", "victron-ble"}, demo.banner
    return found


def answer(client: ModbusTcpClient, unit: int) -> int | None:
    """The register, or None for exception 0x0A (no such device now)."""
    rr = client.read_holding_registers(SENSORS[unit][2], count=1, device_id=unit)
    if rr.isError():
        assert isinstance(rr, ExceptionResponse) and rr.exception_code == 0x0A, rr
        return None
    return int(rr.registers[0])


def connected(demo: DemoProcess, unit: int) -> object:
    service, instance, _ = SENSORS[unit]
    return demo.json(f"/api/v1/devices/{service}/{instance}/Connected")["value"]


def test_the_banner_names_what_each_replay_feeds(demo: DemoProcess) -> None:
    section = demo.banner.partition("Stop a replay")[2]
    assert "victron-ble unit 45, mopeka unit 46" in section
    assert "NMEA 2000 in, tank unit 40, tank unit 41, temperature unit 42" in section


def test_stopping_the_replays_gives_0a_within_10_s_and_they_come_back(demo: DemoProcess) -> None:
    controls = replay_controls(demo)
    client = ModbusTcpClient("127.0.0.1", port=demo.port)
    assert client.connect()
    try:
        deadline = time.monotonic() + 10
        while any(answer(client, u) is None for u in SENSORS):  # all heard once (the demo just started)
            assert time.monotonic() < deadline, {u: answer(client, u) for u in SENSORS}
            time.sleep(0.2)
        assert all(connected(demo, u) == 1 for u in SENSORS)
        for control in controls.values():
            control.touch()
        stopped = time.monotonic()
        gone: dict[int, float] = {}
        while len(gone) < len(SENSORS):
            assert time.monotonic() - stopped < 10.5, f"still answering: {set(SENSORS) - set(gone)}"
            for unit in set(SENSORS) - set(gone):
                if answer(client, unit) is None:
                    gone[unit] = time.monotonic() - stopped
            time.sleep(0.1)
        assert max(gone.values()) <= 10.5, gone
        assert all(connected(demo, u) == 0 for u in SENSORS)  # the app and the API say so too
        # The N2K senders miss 3 intervals (2.5 s, 2 s) before going: not at once either.
        assert min(gone[40], gone[41], gone[42]) >= 4.0, gone

        for control in controls.values():
            control.unlink()
        resumed = time.monotonic()
        while any(answer(client, u) is None for u in SENSORS):
            assert time.monotonic() - resumed < 10, {u: answer(client, u) for u in SENSORS}
            time.sleep(0.2)
        assert all(connected(demo, u) == 1 for u in SENSORS)
        assert answer(client, 40) == 620  # 62.0 % again, from the replay's own frames
    finally:
        for control in controls.values():
            control.unlink(missing_ok=True)
        client.close()
