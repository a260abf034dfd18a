"""PV inverters over SunSpec in a running gateway, read and limited with mbpoll as a user would.

The demo polls its simulated Fronius (unit 32, AC input 1) and SolarEdge (unit 33, AC output)
with its grid meter (unit 34) through the real sunspec driver over loopback sockets. Then the
"any SunSpec inverter" case: `gx-gateway simulate` in a process of its own, a `run --config`
with one [[device]] pointed at it, the simulator stopped (0x0A within 3 polls) and restarted.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import mbpoll_argv, need_tool, parse_mbpoll
from tests.interop.test_demo import GX, Demo

pytestmark = pytest.mark.interop

FRONIUS, SOLAREDGE, METER = 32, 33, 34


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    need_tool("mbpoll")
    d = Demo()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not published(d, "grid", METER, "/Ac/L1/Power"):
        time.sleep(0.2)
    yield d
    if d.proc.poll() is None:
        d.stop()


def published(d: Demo, service: str, instance: int, path: str) -> bool:
    try:
        return d.api(service, instance, path) is not None
    except urllib.error.HTTPError:  # 404 until the driver has published the path
        return False


def holding(port: int, unit: int, register: int, count: int = 1, *extra: str) -> dict[int, int]:
    out = subprocess.run(
        mbpoll_argv(port, "-a", str(unit), "-r", str(register), "-c", str(count), "-t", "4", *extra, "127.0.0.1"),
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return parse_mbpoll(out.stdout)


def u32(port: int, unit: int, register: int, count: int = 1) -> dict[int, int]:
    """32-bit registers (high word first, as the GX list) through mbpoll's -t 4:int -B."""
    return holding(port, unit, register, count, "-t", "4:int", "-B")


def test_banner_lists_the_inverters_and_the_meter(demo: Demo) -> None:
    assert "unit  32  pvinverter 32 (Fronius roof)" in demo.banner
    assert "unit  33  pvinverter 33 (SolarEdge carport)" in demo.banner
    assert "unit  34  grid 34 (Grid meter (EM24))" in demo.banner  # the meter driver's EM24


@pytest.mark.parametrize("unit", [FRONIUS, SOLAREDGE])
def test_mbpoll_reads_power_voltage_current_energy_as_published(demo: Demo, unit: int) -> None:
    assert demo.read(unit, 1026) == [0]  # /Position: AC input 1, both (three-phase, grid side)
    for ph, base in (("L1", 1027), ("L2", 1031), ("L3", 1035)):
        volts = demo.valid(unit, base, 10, "pvinverter", unit, f"/Ac/{ph}/Voltage")
        assert 225 <= volts <= 235
        demo.valid(unit, base + 1, 10, "pvinverter", unit, f"/Ac/{ph}/Current")
        watts = demo.valid(unit, base + 2, 1, "pvinverter", unit, f"/Ac/{ph}/Power")
        assert watts > 50  # the simulated days start at 10:00 and 11:00
    energy = u32(demo.port, unit, 1046)[1046]  # kWh x100, uint32
    assert energy == pytest.approx(100 * (demo.api("pvinverter", unit, "/Ac/L1/Energy/Forward") or 0), abs=2)
    assert energy > 4000  # the simulators start at 150 kWh: 50 kWh per phase
    assert abs(demo.read(unit, 1030)[0] - energy) <= 1  # the uint16 register (kWh x100) says the same
    regs = u32(demo.port, unit, 1052, 3)
    total, max_power = regs[1052], regs[1054]
    assert max_power == (8200 if unit == FRONIUS else 8000)
    per_phase = [demo.read(unit, r)[0] for r in (1029, 1033, 1037)]
    assert abs(total - sum(per_phase)) <= 3 + 0.05 * total  # read a moment apart


def test_system_overview_adds_up_pv_on_input_output_and_consumption(demo: Demo) -> None:
    """Read a moment apart over HTTP and Modbus, so a poll may fall between two reads: the sums
    must hold at some moment within a few tries (each try reads everything afresh)."""
    failures: list[str] = []
    for _ in range(6):
        try:
            overview_adds_up(demo)
            return
        except AssertionError as e:
            failures.append(str(e).splitlines()[0])
            time.sleep(0.7)
    pytest.fail("the overview never added up:\n" + "\n".join(failures))


def overview_adds_up(demo: Demo) -> None:
    api = demo.api
    for ph in ("L1", "L2", "L3"):
        on_grid = api("system", 0, f"/Ac/PvOnGrid/{ph}/Power")
        on_output = api("system", 0, f"/Ac/PvOnOutput/{ph}/Power")
        fronius = api("pvinverter", FRONIUS, f"/Ac/{ph}/Power")
        solaredge = api("pvinverter", SOLAREDGE, f"/Ac/{ph}/Power")
        solar_api = api("pvinverter", 35, f"/Ac/{ph}/Power")  # the Fronius read over the Solar API
        on_ac_in = (fronius or 0) + (solaredge or 0)
        assert on_grid == pytest.approx(on_ac_in, abs=0.05 * on_ac_in + 5)
        on_ac_out = solar_api or 0
        assert on_output == pytest.approx(on_ac_out, abs=0.05 * on_ac_out + 5)
        into = api("system", 0, f"/Ac/ConsumptionOnInput/{ph}/Power")
        out = api("system", 0, f"/Ac/ConsumptionOnOutput/{ph}/Power")
        total = api("system", 0, f"/Ac/Consumption/{ph}/Power")
        assert into is not None and out is not None and total == pytest.approx(into + out, abs=1)
    # The grid meter measures the site: AC-input loads (250/120/80 W) + the Multi's AC-in - PV on
    # AC input; so consumption on input = grid + PV on grid - Multi AC-in gives the loads back.
    assert api("system", 0, "/Ac/ConsumptionOnInput/L2/Power") == pytest.approx(120, abs=60)
    assert api("system", 0, "/Ac/ConsumptionOnInput/L3/Power") == pytest.approx(80, abs=60)
    grid_l2 = demo.read(100, 821)[0]  # /Ac/Grid/L2/Power (int16), over Modbus
    assert grid_l2 == pytest.approx(api("grid", METER, "/Ac/L2/Power"), abs=0.1 * abs(grid_l2) + 30)
    assert grid_l2 < 0  # L2 exports: 120 W of loads against a third of the (throttled) PV


def test_a_1056_write_limits_the_fronius(demo: Demo) -> None:
    out = subprocess.run(
        mbpoll_argv(demo.port, "-a", str(FRONIUS), "-r", "1056", "-t", "4:int", "-B", "127.0.0.1", "2000"),
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert out.returncode == 0 and "Written 1 references" in out.stdout, out.stdout + out.stderr
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and u32(demo.port, FRONIUS, 1052)[1052] > 2020:
        time.sleep(0.3)
    regs = u32(demo.port, FRONIUS, 1052, 3)
    assert regs[1052] <= 2020 and 1980 <= regs[1056] <= 2020
    refused = subprocess.run(
        mbpoll_argv(demo.port, "-a", str(FRONIUS), "-r", "1056", "-t", "4:int", "-B", "127.0.0.1", "9000"),
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert "Illegal data value" in refused.stdout + refused.stderr  # above max power: exception 03


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_simulator(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*GX, "simulate", "fronius", "--listen", f"127.0.0.1:{port}"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert "SunSpec simulator on" in proc.stdout.readline()
    return proc


def test_run_config_with_one_sunspec_device_and_a_simulator_that_stops(tmp_path: Path) -> None:
    need_tool("mbpoll")
    sim_port, poll_s = free_port(), 0.5
    config = tmp_path / "pv.toml"
    config.write_text(
        f'state_dir = "{tmp_path}"\n[modbus]\nlisten = "127.0.0.1:0"\n'
        f'[[device]]\ndriver = "sunspec"\nhost = "127.0.0.1"\nport = {sim_port}\nunit = 1\ninstance = 20\n'
        f"poll_interval_s = {poll_s}\n",
        encoding="utf-8",
    )
    sim = start_simulator(sim_port)
    gw = subprocess.Popen([*GX, "run", "--config", str(config)], stderr=subprocess.PIPE, text=True)
    try:
        assert gw.stderr is not None
        port = 0
        deadline = time.monotonic() + 15
        while not port and time.monotonic() < deadline:
            line = gw.stderr.readline()
            if "Modbus-TCP listening on" in line:
                port = int(re.findall(r"\d+", line.rsplit(":", 1)[1])[0])  # text or JSON log lines
        assert port, "no listening line"

        def power() -> str:
            argv = mbpoll_argv(port, "-a", "20", "-r", "1052", "-t", "4:int", "-B", "127.0.0.1")
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return out.stdout + out.stderr

        deadline = time.monotonic() + 5
        while "[1052]" not in power() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert parse_mbpoll(power())[1052] > 100
        sim.terminate()
        sim.wait(5)
        stopped = time.monotonic()
        while "Gateway path unavailable" not in power() and time.monotonic() - stopped < 10:
            time.sleep(0.1)
        assert time.monotonic() - stopped <= 3 * poll_s + 1.0, "not 0x0A within 3 poll intervals"
        sim = start_simulator(sim_port)
        back = time.monotonic()
        while "[1052]" not in power() and time.monotonic() - back < 40:
            time.sleep(0.3)
        assert parse_mbpoll(power())[1052] > 100  # found again by itself
    finally:
        sim.terminate()
        gw.terminate()
        sim.wait(5)
        gw.wait(5)
