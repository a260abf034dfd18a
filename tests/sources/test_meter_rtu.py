"""The meter driver over Modbus RTU: meters on a simulated RS485 bus (a real pty, real RTU
frames with CRC), polled in turn; a CRC error and a silent unit counted, values invalidated;
the config rules that keep TCP ports and serial paths apart."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from pathlib import Path

import pytest

from gateway.core.keys import ConfigError
from gateway.core.store import Store
from gateway.sim.protocols.meter_sim import MeterSimulator
from gateway.sim.rtu_sim import RtuBusSim, crc16
from gateway.sources.drivers import DRIVERS
from gateway.sources.registry import parse_devices
from gateway.transports.rtu import RtuLink, frame_gap_s
from gateway.transports.serial import SerialSettings
from registers import load_default
from registers.meters import meter_models
from tests.sources.drivers import build, until

CMAP = load_default()
MODELS = meter_models(CMAP)
FAST = 0.1


def rtu(path: str, unit: int, instance: int, **extra: object) -> dict[str, object]:
    return {
        "driver": "meter",
        "transport": "rtu",
        "port": path,
        "baud": 38400,
        "unit": unit,
        "instance": instance,
        "poll_interval_s": FAST,
        **extra,
    }


async def two_meters() -> RtuBusSim:
    bus = RtuBusSim({1: MeterSimulator(MODELS["em24"], unit=1), 2: MeterSimulator(MODELS["sdm630"], unit=2)})
    await bus.start()
    return bus


def test_crc_of_a_published_frame() -> None:
    # Modbus over serial line spec, example: read 1 register at 0x0000 of unit 1 -> CRC 84 0A
    assert crc16(bytes.fromhex("010300000001")) == bytes.fromhex("840a")
    assert frame_gap_s(9600) == pytest.approx(0.00401, abs=1e-5)
    assert frame_gap_s(115200) == 0.00175


async def test_two_meters_on_one_bus_probed_polled_in_turn_and_published() -> None:
    bus = await two_meters()
    store = Store()
    source = build(store, CMAP, rtu(bus.path, 1, 40), rtu(bus.path, 2, 41, role="acload", model="sdm630"))
    await source.start()
    try:
        await until(lambda: store.get("grid", 40, "/Connected") == 1, what="EM24 online")
        await until(lambda: store.get("acload", 41, "/Connected") == 1, what="SDM630 online")
        assert store.get("grid", 40, "/Ac/Power") == 1700.0
        assert store.get("grid", 40, "/Serial") == "BX12345"
        assert store.get("acload", 41, "/Ac/Power") == 1420.75
        assert store.get("grid", 40, "/Mgmt/Connection") == f"Modbus RTU {bus.path} unit 1"
        bus.meters[2].set({"/Ac/L2/Power": -480.5})
        await until(lambda: store.get("acload", 41, "/Ac/L2/Power") == -480.5, what="new value over RTU")
        links = list(source.buses.links.values())  # type: ignore[attr-defined]
        assert len(links) == 1  # one bus, one link: the meters take turns on it
        await until(lambda: bus.requests[1] > 5 and bus.requests[2] > 5, what="both polled again and again")
        assert bus.bad_frames == 0  # every request the driver sent passed its CRC
    finally:
        await source.stop()
        await bus.stop()


async def test_requests_never_overlap_and_keep_the_frame_gap() -> None:
    bus = await two_meters()
    link = RtuLink(bus.path, SerialSettings(baud=9600))
    stamps: list[tuple[float, float]] = []

    async def reads(unit: int) -> None:
        block = bus.meters[unit].model.blocks[0]
        for _ in range(5):
            async with link.lock:
                start = time.monotonic()
                data = await link.read_locked(unit, block.address, 2, None, block.function)
                stamps.append((start, time.monotonic()))
                assert len(data) == 4

    try:
        await asyncio.gather(reads(1), reads(2))
        stamps.sort()
        for (_, end), (start, _) in itertools.pairwise(stamps):
            assert start >= end  # one request at a time on the bus
        events = list(bus.timeline)
        assert [e for e, _ in events] == ["request", "answer"] * 10  # never a request before the answer
        gaps = [events[i + 1][1] - events[i][1] for i in range(1, len(events) - 1, 2)]
        assert min(gaps) >= frame_gap_s(9600)  # the bus is quiet 3.5 characters between frames
        assert link.requests == 10 and link.crc_errors == 0 and link.timeouts == 0
    finally:
        await link.close()
        await bus.stop()


async def test_a_crc_error_is_counted_and_a_silent_unit_invalidated_then_back(caplog: pytest.LogCaptureFixture) -> None:
    bus = await two_meters()
    store = Store()
    source = build(store, CMAP, rtu(bus.path, 1, 40), rtu(bus.path, 2, 41, role="acload", model="sdm630"))
    await source.start()
    link: RtuLink = next(iter(source.buses.links.values()))  # type: ignore[attr-defined]
    try:
        await until(lambda: store.get("acload", 41, "/Connected") == 1, what="SDM630 online")
        with caplog.at_level(logging.WARNING, logger="gateway.transports.rtu"):
            bus.corrupt = 1
            await until(lambda: link.crc_errors == 1, what="a CRC error counted")
            assert store.get("grid", 40, "/Connected") == 1  # one bad answer is not offline
            bus.silent.add(2)
            await until(lambda: store.get("acload", 41, "/Connected") == 0, timeout=8, what="silent unit offline")
            assert store.get("acload", 41, "/Ac/Power") is None  # invalidated, never stale
            polls = bus.requests[1]
            await asyncio.sleep(1.5)
            assert bus.requests[1] - polls >= 5  # the other meter keeps its pace on the shared bus
            assert store.get("grid", 40, "/Connected") == 1
        ours = [r.getMessage() for r in caplog.records if r.name == "gateway.transports.rtu"]
        crc_lines = [m for m in ours if "CRC" in m]
        silent_lines = [m for m in ours if "no answer" in m]
        assert len(crc_lines) == 1 and len(silent_lines) == 1  # rate-limited, not one per poll
        assert link.timeouts >= 3
        families = {f.name: f for f in source.collect_metrics()}  # type: ignore[attr-defined]
        assert families["gxgw_rtu_crc_errors"].samples[0].value == 1
        assert families["gxgw_rtu_crc_errors"].samples[0].labels == {"port": bus.path}
        assert families["gxgw_rtu_timeouts"].samples[0].value == link.timeouts
        assert not [r for r in caplog.records if r.name.startswith("pymodbus")]
        bus.silent.clear()
        await until(lambda: store.get("acload", 41, "/Ac/Power") == 1420.75, timeout=15, what="back by itself")
    finally:
        await source.stop()
        await bus.stop()


async def test_a_missing_port_is_one_line_and_the_meter_stays_disconnected(caplog: pytest.LogCaptureFixture) -> None:
    store = Store()
    source = build(store, CMAP, rtu("/dev/ttyNOSUCH-rtu", 1, 40))
    with caplog.at_level(logging.WARNING, logger="gateway.transports.rtu"):
        await source.start()
        try:
            await asyncio.sleep(0.8)
            assert store.get("grid", 40, "/Connected") == 0
        finally:
            await source.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.transports.rtu"]
    assert len(lines) == 1 and "does not exist" in lines[0], lines
    assert not [r for r in caplog.records if r.name.startswith("pymodbus")]


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ([{"driver": "meter", "instance": 40, "host": "h", "port": "/dev/ttyUSB0"}], 'add transport = "rtu"'),
        (
            [{"driver": "meter", "instance": 40, "transport": "rtu"}],
            'takes the serial device path, e.g. "/dev/ttyUSB0"',
        ),
        ([{"driver": "meter", "instance": 40, "transport": "rtu", "port": 502}], "(got 502)"),
        ([{"driver": "meter", "instance": 40, "transport": "rtu", "port": "/dev/x", "host": "h"}], "host: not used"),
        ([{"driver": "meter", "instance": 40}], "host: missing"),
        ([{"driver": "meter", "instance": 40, "host": "h", "port": 3.5}], "expected a TCP port 1..65535"),
        (
            [
                {"driver": "meter", "instance": 40, "transport": "rtu", "port": "/dev/x"},
                {"driver": "meter", "instance": 41, "transport": "rtu", "port": "/dev/x", "role": "acload"},
            ],
            "unit: 1 is already device[0]'s on /dev/x",
        ),
        (
            [
                {"driver": "vedirect", "port": "/dev/x"},
                {"driver": "meter", "instance": 40, "transport": "rtu", "port": "/dev/x"},
            ],
            "device[1].port: /dev/x is already device[0]'s (driver vedirect): one port, one driver",
        ),
        (
            [
                {"driver": "meter", "instance": 40, "transport": "rtu", "port": "/dev/x"},
                {"driver": "meter", "instance": 41, "transport": "rtu", "port": "/dev/x", "unit": 2, "baud": 19200},
            ],
            "/dev/x is one bus: baud, parity and stopbits must match device[0]'s",
        ),
    ],
)
def test_config_rules(tables: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_devices(tables, DRIVERS)
    assert message in str(e.value)


def test_tcp_meters_keep_their_keys() -> None:
    (d,) = parse_devices([{"driver": "meter", "instance": 40, "host": "10.0.0.5"}], DRIVERS)
    assert d.option("port") == 502 and d.option("transport") == "tcp"


async def test_an_unplugged_adapter_invalidates_and_its_by_id_link_comes_back(tmp_path: Path) -> None:
    link = tmp_path / "usb-FTDI_FT232R_USB_UART-if00-port0"
    bus = RtuBusSim({1: MeterSimulator(MODELS["em24"], unit=1)}, link=link)
    await bus.start()
    store = Store()
    source = build(store, CMAP, rtu(str(link), 1, 40))
    await source.start()
    try:
        await until(lambda: store.get("grid", 40, "/Ac/Power") == 1700.0, what="EM24 online")
        await bus.stop()  # the USB adapter pulled: the pty and the link are gone
        await until(lambda: store.get("grid", 40, "/Connected") == 0, timeout=8, what="offline")
        assert store.get("grid", 40, "/Ac/Power") is None
        await bus.start()  # plugged back: a new pty behind the same by-id name
        await until(lambda: store.get("grid", 40, "/Ac/Power") == 1700.0, timeout=15, what="back by itself")
    finally:
        await source.stop()
        await bus.stop()
