"""The control room on the demo, over real sockets: an EMS's Modbus writes (pymodbus) to our
server, and the simulated grid meter (the EM24, unit 34) read back over Modbus.

One demo serves the tests in file order (each leaves the settings it changed as the next one
expects); the watchdog test runs the demo's own config with a short setpoint timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient

from gateway.config import DEMO_FILE
from tests.demo_process import DemoProcess
from tests.gateway_process import gateway_process

SYSTEM, METER, VEBUS, TANK = 100, 34, 227, 20


def s16(raw: int) -> int:
    return raw - 0x10000 if raw & 0x8000 else raw


def s32(hi: int, lo: int) -> int:
    v = hi << 16 | lo
    return v - (1 << 32) if v & 0x80000000 else v


def u32(value: int) -> list[int]:
    v = value & 0xFFFFFFFF
    return [v >> 16, v & 0xFFFF]


class Ems:
    """What an EMS does: pymodbus against our Modbus-TCP server."""

    def __init__(self, port: int) -> None:
        self.client = ModbusTcpClient("127.0.0.1", port=port, timeout=3)
        assert self.client.connect()  # type: ignore[no-untyped-call]

    def read(self, unit: int, register: int, count: int = 1) -> list[int]:
        r = self.client.read_holding_registers(register, count=count, device_id=unit)
        assert not r.isError(), (unit, register, r)
        return list(r.registers)

    def write(self, unit: int, register: int, *values: int) -> None:
        if len(values) == 1:
            r = self.client.write_register(register, values[0] & 0xFFFF, device_id=unit)
        else:
            r = self.client.write_registers(register, list(values), device_id=unit)
        assert not r.isError(), (unit, register, values, r)

    def grid_w(self) -> int:
        """The grid meter's total: the EM24's three phases (2600-2602, int16 W)."""
        return sum(s16(v) for v in self.read(METER, 2600, 3))

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]


def settles(read: Callable[[], float], ok: Callable[[float], bool], within_s: float, hold: int = 3) -> list[float]:
    """Read every 0.5 s; True once ``hold`` reads in a row are ok within ``within_s``: the reads
    (to show in a failure), the time it took as the last element."""
    seen: list[float] = []
    run = 0
    start = time.monotonic()
    while time.monotonic() - start < within_s:
        v = read()
        seen.append(v)
        run = run + 1 if ok(v) else 0
        if run >= hold:
            return [*seen, round(time.monotonic() - start, 1)]
        time.sleep(0.5)
    raise AssertionError(f"did not settle within {within_s} s: {seen}")


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[DemoProcess, Ems]]:
    d = DemoProcess()
    ems = Ems(d.port)
    try:
        # The simulators, the drivers' first polls, and the loops finding the MultiPlus's charge
        # ceiling: the site settles at the default setpoint (50 W, zero feed-in) before the tests.
        time.sleep(2)
        settles(ems.grid_w, lambda w: abs(w - 50) <= 150, within_s=40)
        yield d, ems
    finally:
        ems.close()
        d.stop()


def test_a_grid_setpoint_of_500_w_holds_the_grid_meter_at_500_w(demo: tuple[DemoProcess, Ems]) -> None:
    d, ems = demo
    assert ems.read(SYSTEM, 2708) == [1]  # the demo is a zero-feed-in site
    ems.write(SYSTEM, 2700, 500)
    # The demo's appliances switch at random (a 2 kW kettle ending is a 2 kW step): a step in
    # the loads while the loop settles is a new disturbance, and the 15 s start again, once.
    loads = lambda: sum(ems.read(SYSTEM, 817, 3))  # noqa: E731 - /Ac/Consumption/L1-L3/Power
    before = loads()
    try:
        reads = settles(ems.grid_w, lambda w: abs(w - 500) <= 100, within_s=15)
    except AssertionError:
        stepped = abs(loads() - before)
        if stepped < 300:
            raise
        reads = settles(ems.grid_w, lambda w: abs(w - 500) <= 100, within_s=15)
    assert ems.read(SYSTEM, 2700) == [500]
    # The MultiPlus charges at its limit and the PV inverters are throttled for the rest.
    assert ems.read(SYSTEM, 2709) == [1], reads  # hub4 /PvPowerLimiterActive
    limits = [d.json(f"/api/v1/devices/pvinverter/{i}")["values"]["/Ac/PowerLimit"]["value"] for i in (32, 33)]
    assert all(limit < 8000 for limit in limits), limits
    control = d.json("/api/v1/status")["control"]  # each rule's one-line status
    assert control["feed-in"]["status"].startswith("limiting: grid") and control["feed-in"]["writes"] > 0
    assert control["ess"]["status"] == "mode 1: grid aimed at 500 W"


def test_a_feed_in_limit_of_1000_w_holds_export_and_releases_when_lifted(demo: tuple[DemoProcess, Ems]) -> None:
    _, ems = demo
    ems.write(SYSTEM, 2708, 0)  # AC-coupled PV may be fed in (the MultiPlus charges at its limit) ...
    settles(ems.grid_w, lambda w: w < -1500, within_s=20, hold=2)  # ... and is: the limiter let go
    assert ems.read(SYSTEM, 2709) == [0]
    ems.write(SYSTEM, 2722, *u32(1000))  # ... but only 1000 W of it (MaxFeedInPower, int32 W)
    reads = settles(ems.grid_w, lambda w: w > -1100, within_s=20, hold=4)
    assert ems.read(SYSTEM, 2709) == [1], reads
    held = []
    for _ in range(4):
        time.sleep(0.5)
        held.append(ems.grid_w())
    assert all(w > -1100 for w in held), held  # it stays within: no oscillation beyond the limit
    ems.write(SYSTEM, 2722, *u32(-1))  # lifted
    settles(ems.grid_w, lambda w: w < -1500, within_s=20, hold=2)
    assert ems.read(SYSTEM, 2709) == [0]
    ems.write(SYSTEM, 2708, 1)


def test_a_manual_generator_start_closes_relay_0(demo: tuple[DemoProcess, Ems]) -> None:
    d, ems = demo
    assert ems.read(SYSTEM, 806) == [0]
    ems.write(SYSTEM, 3500, 1)  # generator /ManualStart
    settles(lambda: ems.read(SYSTEM, 806)[0], lambda v: v == 1, within_s=5, hold=1)
    assert ems.read(SYSTEM, 3506) == [1]  # /State running
    assert ems.read(SYSTEM, 3501) == [1]  # /RunningByConditionCode manual
    generator = d.json("/api/v1/devices/generator/0")["values"]
    assert generator["/State"]["value"] == 1
    ems.write(SYSTEM, 3500, 0)
    settles(lambda: ems.read(SYSTEM, 806)[0], lambda v: v == 0, within_s=5, hold=1)
    assert ems.read(SYSTEM, 3506) == [0]


def test_a_client_cannot_switch_a_relay_that_has_a_function(demo: tuple[DemoProcess, Ems]) -> None:
    d, ems = demo
    for register in (806, 807):  # relay 0 is the genset's, relay 1 the tank pump's
        before = ems.read(SYSTEM, register)
        r = ems.client.write_register(register, 1 - before[0], device_id=SYSTEM)
        assert r.isError() and r.exception_code == 4, r  # refused by the device, as a GX does
        assert ems.read(SYSTEM, register) == before
    time.sleep(0.3)  # the audit line reaches stderr
    assert "only a manual relay takes writes" in "".join(d.stderr)


def test_the_tank_pump_relay_follows_the_fresh_water_tank(demo: tuple[DemoProcess, Ems]) -> None:
    """The demo's pump (relay 1) starts at 85 % and stops at 95 %; the simulated tank starts at
    80 % and fills while the relay is closed (2 l/min of simulated time, about 1 %/s), so the
    pump has started at once and, by now or within seconds, stopped at the stop level."""
    d, ems = demo

    def level() -> float:
        return ems.read(TANK, 3004)[0] / 10  # /Level, %

    if ems.read(SYSTEM, 807) == [1]:  # still filling: it stops once the tank is at 95 %
        assert level() < 95
        settles(lambda: ems.read(SYSTEM, 807)[0], lambda v: v == 0, within_s=20, hold=1)
        assert level() >= 95  # it filled the tank to the stop level ...
    else:  # it stopped before this test began, and the tank has drained a little since
        assert 85 < level() <= 100
    time.sleep(2)
    assert ems.read(SYSTEM, 807) == [0] and level() > 85  # ... and stays off above the start level
    audit = "".join(d.stderr)
    assert "control:tank-pump" in audit and "/Relay/1/State: 0 -> 1" in audit and "/Relay/1/State: 1 -> 0" in audit


def watchdog_config(tmp_path: Path, timeout_s: float) -> Path:
    """The demo's own config on ephemeral ports, with a short setpoint watchdog."""
    from importlib import resources

    text = resources.files("gateway").joinpath(DEMO_FILE).read_text(encoding="utf-8")
    text = text.replace('listen = "127.0.0.1:5020"', 'listen = "127.0.0.1:0"')
    text = text.replace('listen = "127.0.0.1:8088"', 'listen = "127.0.0.1:0"')
    text = f'state_dir = "{tmp_path}"\n[setpoints]\ntimeout_s = {timeout_s}\n' + text
    path = tmp_path / "demo.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_external_control_follows_vebus_37_and_the_watchdog_reverts_it(tmp_path: Path) -> None:
    with gateway_process(watchdog_config(tmp_path, timeout_s=4)) as gw:
        ems = Ems(gw.modbus)
        try:
            ems.write(SYSTEM, 2902, 3)  # Hub4Mode 3: external control, the ESS loop stands back
            time.sleep(1.5)
            ems.write(VEBUS, 37, (-800) & 0xFFFF)  # feed 800 W back on L1
            assert s16(ems.read(VEBUS, 37)[0]) == -800
            # The MultiPlus follows (its ramp): its AC input (reg 12, /Ac/ActiveIn/L1/P, x0.1 W).
            settles(lambda: s16(ems.read(VEBUS, 12)[0]) * 10, lambda w: abs(w + 800) <= 60, within_s=5, hold=2)
            time.sleep(2)
            assert s16(ems.read(VEBUS, 37)[0]) == -800  # the loop did not touch it in mode 3
            # Silence: after the timeout the watchdog writes the safe value, 0.
            settles(lambda: s16(ems.read(VEBUS, 37)[0]), lambda w: w == 0, within_s=6, hold=1)

            # hub4 /Overrides/Setpoint (2716, int32): reads and writes, and in mode 1 it is the target.
            ems.write(SYSTEM, 2902, 1)
            ems.write(SYSTEM, 2716, *u32(-300))
            assert s32(*ems.read(SYSTEM, 2716, 2)) == -300
            ems.write(SYSTEM, 2716, *u32(700))
            assert s32(*ems.read(SYSTEM, 2716, 2)) == 700

            # From the watchdog's 0 W: the loop ramps the MultiPlus up, finds its charge ceiling
            # (it publishes none) and then throttles the PV (zero feed-in) for the rest.
            # The scheduler refreshes its override within the timeout (4 s here), as dynamic ESS does.
            def refreshed_grid_w() -> int:
                ems.write(SYSTEM, 2716, *u32(700))
                return ems.grid_w()

            settles(refreshed_grid_w, lambda w: abs(w - 700) <= 100, within_s=30)
            # Not refreshed: after the timeout it is no override (invalid) again.
            time.sleep(4.5)
            r = ems.client.read_holding_registers(2716, count=2, device_id=SYSTEM)
            assert r.isError() or s32(*r.registers) != 700, r
        finally:
            ems.close()
