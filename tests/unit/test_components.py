"""The gateway as a stack of components: started in order, stopped in reverse, unwound on failure."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from gateway.app import Gateway, StartupError
from gateway.config import HttpConfig, ModbusConfig, load_demo_config
from gateway.core.components import start_all
from registers import load_default


class Part:
    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail

    async def start(self) -> None:
        if self.fail:
            self.log.append(f"failed {self.name}")
            raise StartupError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


async def test_stops_in_reverse_order() -> None:
    log: list[str] = []
    stack = await start_all([Part(n, log) for n in "abc"])
    await stack.aclose()
    assert log == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]


async def test_a_failing_start_stops_what_already_started() -> None:
    log: list[str] = []
    parts = [Part("a", log), Part("b", log), Part("c", log, fail=True), Part("d", log)]
    with pytest.raises(StartupError, match="c cannot start"):
        await start_all(parts)
    assert log == ["start a", "start b", "failed c", "stop b", "stop a"]  # d never started, c never stopped


def _demo(tmp_path: Path, modbus_port: int = 0) -> Gateway:
    """demo.toml on ephemeral ports, as `gx-gateway demo` builds it."""
    config = dataclasses.replace(
        load_demo_config(),
        state_dir=tmp_path,
        modbus=ModbusConfig(listen=("127.0.0.1", modbus_port)),
        http=HttpConfig(listen=("127.0.0.1", 0)),
    )
    return Gateway(load_default(), config)


async def test_gateway_components_in_order_and_a_full_stop(tmp_path: Path) -> None:
    gw = _demo(tmp_path)
    names = [type(c).__name__ for c in gw.components]
    assert names == [
        "SettingsComponent",
        "SystemComponent",
        "Simulators",  # before the sources: devices pointed at a simulator find it
        "SimulatedSource",  # before the vedirect/canbms drivers: it makes the ptys and the bus they read
        "VeDirectPorts",  # the MPPTs and the SmartShunt over VE.Direct
        "CanBmsGroup",  # the bank's BMS over CAN
        "SunSpecSource",
        "ModbusDevices",  # the EM24 grid meter (driver meter)
        "FroniusSource",  # the Fronius read over the Solar API
        "BleDevices",  # the SmartShunt (victron-ble), from replayed Bluetooth advertisements
        "BleDevices",  # the Mopeka tank sensor, sharing that one scanner
        "ControlRoom",  # ESS, feed-in limiter, generator, relay functions
        "Guards",
        "SetpointWatchdog",
        "Frontend",
        "N2kInput",  # NMEA 2000 in: the demo's replayed tank senders and thermometer
        "Frontend",
        "Discovery",
    ]
    assert gw.modbus is None and gw.http is None  # servers exist once started
    await gw.start()
    try:
        assert gw.modbus is not None and gw.modbus.port > 0 and gw.http is not None
        own = [d for d in gw.store.devices() if d.get("/Mgmt/ProcessName") != "n2k-in"]
        # the demo's devices (with the 2 Bluetooth ones and the VE.Direct SmartShunt), system,
        # settings, hub4, generator (N2K in's come from its replay)
        assert len(own) == 16 + 2 + 2
        await gw.store.write("settings", 0, {"/Settings/CGwacs/BatteryLife/MinimumSocLimit": 35})
        assert not (tmp_path / "settings.json").exists()  # saved within a second, not at once
    finally:
        await gw.stop()
    assert gw.modbus is None and gw.http is None
    assert [d.key for d in gw.store.devices()] == [("settings", 0)]  # sources and system removed themselves
    assert '"/Settings/CGwacs/BatteryLife/MinimumSocLimit": 35' in (tmp_path / "settings.json").read_text()
    await gw.stop()  # a second stop does nothing


async def test_modbus_port_in_use_unwinds_the_sources(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        gw = _demo(tmp_path, modbus_port=port)
        with pytest.raises(StartupError) as info:
            await gw.start()
    assert str(info.value) == f"cannot listen on 127.0.0.1:{port} for Modbus-TCP: address already in use"
    assert [d.key for d in gw.store.devices()] == [("settings", 0)]
    assert gw.modbus is None


async def test_unwritable_state_dir_starts_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    gw = _demo(blocker / "state")
    with pytest.raises(StartupError, match="not a directory"):
        await gw.start()
    assert gw.store.devices() == []
