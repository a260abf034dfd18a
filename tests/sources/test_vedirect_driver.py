"""The ``vedirect`` driver over a real pty: a simulator or a recorded capture on one side, the
driver (serial transport, framer, mappings) on the other; silence and unplugging give
``/Connected`` 0 within 3-5 s and the device comes back by itself."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient

from gateway.core.keys import ConfigError
from gateway.core.store import Store
from gateway.sim.vedirect_sim import VeDirectSim
from gateway.sources.drivers import DRIVERS
from gateway.sources.registry import DeviceConfig, parse_devices
from gateway.sources.vedirect_port import VeDirectPort
from gateway.transports.serial import pty_pair
from registers import load_default
from registers.compile.vedirect_fields import decode_capture
from registers.vedirect import vedirect_map
from tests.gateway_process import gateway_process, write_config
from tests.helpers import MAPPINGS, register_mismatches

CMAP = load_default(defer_n2k=True)
VMAP = vedirect_map(CMAP)
SAMPLES = MAPPINGS / "vedirect" / "samples"


def device(port: str, instance: int = 279) -> DeviceConfig:
    return DeviceConfig(index=0, driver="vedirect", instance=instance, name="Roof", options={"port": port})


async def until(check: object, timeout_s: float) -> float:
    """Seconds until ``check()`` holds (fails after ``timeout_s``)."""
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - started < timeout_s, "timed out"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_simulated_mppt_publishes_its_stream_and_survives_unplug(tmp_path: Path) -> None:
    store = Store()
    sim = VeDirectSim("mppt", link=tmp_path / "usb-VictronEnergy_BV_VE_Direct_cable-if00-port0", interval_s=0.5)
    await sim.start()
    port = VeDirectPort(store, device(sim.path), VMAP)
    port.start()
    try:
        await until(lambda: store.get("solarcharger", 279, "/Connected") == 1, 5)
        await until(lambda: sim.blocks_sent >= 3, 5)
        await asyncio.sleep(0.2)
        expected, _ = VMAP.decode("solarcharger", sim.sent[-1])
        dev = store.device("solarcharger", 279)
        assert dev is not None
        assert {p: dev.get(p) for p in expected} == expected
        assert dev.get("/ProductName") == "SmartSolar MPPT 75/15" and dev.get("/Serial") == "HQ2132QY2KR"
        assert dev.get("/CustomName") == "Roof"

        sim.unplug()
        unplugged = time.monotonic()
        await until(lambda: store.get("solarcharger", 279, "/Connected") == 0, 5)
        assert 2.5 <= time.monotonic() - unplugged <= 5.0
        assert dev.get("/Dc/0/Voltage") is None  # never stale

        sim.plug()
        await until(lambda: store.get("solarcharger", 279, "/Connected") == 1, 15)  # serial back-off
        assert dev.get("/Dc/0/Voltage") is not None and port.reader.opens == 2
    finally:
        await port.stop()
        await sim.stop()
    assert store.device("solarcharger", 279) is None


async def test_bad_checksums_and_silence_are_counted_and_recovered(tmp_path: Path) -> None:
    store = Store()
    sim = VeDirectSim("smartshunt", interval_s=0.3)
    await sim.start()
    port = VeDirectPort(store, device(sim.path, 512), VMAP)
    port.start()
    try:
        await until(lambda: store.get("battery", 512, "/History/ChargeCycles") == 48, 5)
        sim.corrupt = 2
        await until(lambda: port.framer.bad_checksum >= 2, 5)
        assert store.get("battery", 512, "/Connected") == 1
        sim.silent = True
        await until(lambda: store.get("battery", 512, "/Connected") == 0, 5)
        assert store.get("battery", 512, "/Soc") is None
        sim.silent = False
        await until(lambda: store.get("battery", 512, "/Connected") == 1, 3)
    finally:
        await port.stop()
        await sim.stop()


async def test_a_simulated_phoenix_is_an_inverter() -> None:
    store = Store()
    sim = VeDirectSim("phoenix", interval_s=0.3)
    await sim.start()
    port = VeDirectPort(store, device(sim.path, 277), VMAP)
    port.start()
    try:
        await until(lambda: store.get("inverter", 277, "/Connected") == 1, 5)
        assert store.get("inverter", 277, "/Ac/Out/L1/V") == pytest.approx(230.02)
        assert store.get("inverter", 277, "/State") == 9 and store.get("inverter", 277, "/Mode") == 2
    finally:
        await port.stop()
        await sim.stop()


async def test_an_unknown_product_publishes_nothing() -> None:
    from registers.vedirect import block_bytes

    store = Store()
    with pty_pair() as (master, path):
        port = VeDirectPort(store, device(path), VMAP)
        port.start()
        try:
            await asyncio.sleep(0.3)
            for _ in range(3):
                os.write(master, block_bytes({"PID": "0xFFFE", "V": "12000"}))
                await asyncio.sleep(0.1)
            await until(lambda: port.framer.blocks >= 2, 3)
            assert store.devices() == []
        finally:
            await port.stop()


def test_two_devices_on_one_port_is_a_config_error() -> None:
    raw = [
        {"driver": "vedirect", "instance": 278, "port": "/dev/ttyUSB0"},
        {"driver": "vedirect", "instance": 279, "port": "/dev/ttyUSB0"},
    ]
    with pytest.raises(ConfigError, match=r"device\[1\]\.port: /dev/ttyUSB0 is already device\[0\]'s"):
        parse_devices(raw, DRIVERS)


@pytest.mark.parametrize(
    ("sample", "service", "instance", "unit"),
    [
        ("smartsolar-75-15", "solarcharger", 279, 226),
        ("smartshunt-500a", "battery", 278, 224),
        ("phoenix-24-3000", "inverter", 277, 223),
        ("blue-smart-ip22-24-12", "charger", 276, 227),
    ],
)
def test_gateway_run_publishes_exactly_a_captures_values(
    tmp_path: Path, sample: str, service: str, instance: int, unit: int
) -> None:
    """`gx-gateway run` with a vedirect device on a pty fed by a recorded capture: over
    Modbus-TCP (pymodbus) every register of every path the capture gives reads as its value."""
    capture = (SAMPLES / f"{sample}.vedirect").read_bytes()
    expected, product, _ = decode_capture(VMAP, capture)
    assert product is not None
    with pty_pair() as (master, path):
        extra = f'[[device]]\ndriver = "vedirect"\ninstance = {instance}\nport = "{path}"\n'
        with gateway_process(write_config(tmp_path, extra, http=False)) as gw:
            os.set_blocking(master, False)
            client = ModbusTcpClient("127.0.0.1", port=gw.modbus)
            assert client.connect()
            try:
                table = CMAP.modbus.tables[service]
                deadline = time.monotonic() + 10
                while True:  # the capture again and again, as a device repeats its blocks
                    os.write(master, capture)
                    mismatches = register_mismatches(client, table, unit, expected)
                    if not mismatches:
                        break
                    assert time.monotonic() < deadline, mismatches
                    time.sleep(0.5)
            finally:
                client.close()


async def test_ports_without_instance_get_one_kept_across_restarts(tmp_path: Path) -> None:
    """A GX numbers VE.Direct devices by port: 288 (unit id 239), 289 ... kept by port path."""
    from gateway.sources.registry import SourceContext
    from gateway.sources.vedirect_port import VeDirectPorts

    sims = [VeDirectSim("mppt", link=tmp_path / f"usb-VE_Direct_{i}-if00", interval_s=0.3) for i in range(2)]
    for sim in sims:
        await sim.start()
    raw = [{"driver": "vedirect", "port": sim.path} for sim in sims]
    context = SourceContext(CMAP, state_dir=tmp_path)
    try:
        for run, order in enumerate((raw, raw[::-1])):  # the second start lists the ports the other way round
            devices = parse_devices(order, DRIVERS)
            assert [d.instance for d in devices] == [-1, -1]
            store = Store()
            ports = VeDirectPorts(store, devices, context)
            await ports.start()
            try:
                assert {p.path: p.instance for p in ports.ports} == {sims[0].path: 288, sims[1].path: 289}, run
                assert store.get("solarcharger", 288, "/Connected") == 1
                assert CMAP.modbus.unit_for_instance(288) == 239
            finally:
                await ports.stop()
    finally:
        for sim in sims:
            await sim.stop()
    assert (tmp_path / "vedirect.json").is_file()
