"""An installation with an EM24 grid meter and a Fronius on AC output read over the Solar API,
both simulated over real sockets and polled by the real drivers; mbpoll reads the gateway.

The issue's "Done when" in-process: grid (unit 100: 820-822), PV on output (808-810) and
consumption (817-819) equal the simulators' values and add up; a meter model added as a CSV
file alone is polled and served.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import parse_config
from gateway.sim.protocols.fronius_sim import FroniusSimulator
from gateway.sim.protocols.meter_sim import MeterSimulator, site_grid_values
from registers import compile_mappings, load_default
from registers.meters import meter_models
from tests.helpers import MAPPINGS, parse_mbpoll, run_mbpoll
from tests.sources.drivers import until
from tests.sources.test_meter_models import ACME

LOADS = (150.0, 80.0, 60.0)
CONFIG = """
[modbus]
listen = "127.0.0.1:0"
[[device]]
driver = "simulated"
service = "vebus"
instance = 276
[[device]]
driver = "simulated"
service = "battery"
instance = 512
[[device]]
driver = "meter"
host = "127.0.0.1"
port = {em24}
instance = 40
role = "grid"
poll_interval_s = 0.2
[[device]]
driver = "fronius"
host = "127.0.0.1"
port = {fronius}
unit = 1
instance = 50
position = "ac-out"
poll_interval_s = 0.2
"""


@contextlib.asynccontextmanager
async def installation() -> AsyncIterator[tuple[Gateway, MeterSimulator, FroniusSimulator]]:
    em24 = MeterSimulator(meter_models(load_default())["em24"])
    fronius = FroniusSimulator()
    await em24.start()
    await fronius.start()
    config = parse_config(tomllib.loads(CONFIG.format(em24=em24.port, fronius=fronius.port)))
    gateway = Gateway(load_default(), config)
    await gateway.start()

    async def follow() -> None:  # the EM24 measures the simulated site
        while True:
            em24.set(site_grid_values(gateway.store, LOADS))
            await asyncio.sleep(0.1)

    task = asyncio.create_task(follow())
    try:
        yield gateway, em24, fronius
    finally:
        task.cancel()
        await gateway.stop()
        await em24.stop()
        await fronius.stop()


async def registers(port: int, unit: int, register: int, count: int, kind: str = "3") -> list[int]:
    code, out = await run_mbpoll(port, "-a", str(unit), "-r", str(register), "-c", str(count), "-t", kind, "127.0.0.1")
    assert code == 0, out
    found = parse_mbpoll(out)
    return [found[r] for r in range(register, register + count)]


@pytest.mark.interop
async def test_grid_pv_on_output_and_consumption_add_up() -> None:
    async with installation() as (gateway, em24, fronius):
        store = gateway.store
        assert gateway.modbus is not None
        port = gateway.modbus.sockets[0][1]
        fronius.state.pac_w = 1500.0
        await until(lambda: store.get("pvinverter", 50, "/Ac/Power") == 1500.0, what="Fronius polled")
        await until(lambda: store.get("grid", 40, "/Connected") == 1, what="EM24 polled")
        last: AssertionError | None = None
        for _ in range(40):  # values move with the plant: check at a moment where every read agrees
            try:
                await _check_sums(gateway, port, em24)
                break
            except AssertionError as e:
                last = e
                await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"no consistent moment in 40 tries; last: {last}")
        assert (await registers(port, 50, 1052, 2))[1] == 1500  # pvinverter /Ac/Power (int32)


@pytest.mark.interop
async def test_a_meter_model_added_as_csv_alone_is_polled_and_served(tmp_path: Path) -> None:
    root = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, root)
    (root / "devices" / "acme-x1.csv").write_text(ACME, encoding="utf-8")
    with (root / "devices" / "meters.csv").open("a", encoding="utf-8") as f:
        f.write("acme-x1,ACME X1,0x0010,3,uint16,,4242\n")
    cmap = compile_mappings(root)
    sim = MeterSimulator(meter_models(cmap)["acme-x1"])
    await sim.start()
    table = f'[modbus]\nlisten = "127.0.0.1:0"\n[[device]]\ndriver = "meter"\nhost = "127.0.0.1"\nport = {sim.port}\ninstance = 41\npoll_interval_s = 0.1\n'
    gateway = Gateway(cmap, parse_config(tomllib.loads(table)))
    await gateway.start()
    try:
        await until(lambda: gateway.store.get("grid", 41, "/Ac/Power") == 1000.24, what="ACME polled")
        assert gateway.store.get("grid", 41, "/ProductName") == "ACME X1"  # probed by its id 4242
        assert gateway.modbus is not None
        port = gateway.modbus.sockets[0][1]
        assert await registers(port, 41, 2616, 1) == [2300]  # /Ac/L1/Voltage x10 at the grid unit
    finally:
        await gateway.stop()
        await sim.stop()


async def _check_sums(gateway: Gateway, port: int, em24: MeterSimulator) -> None:
    """One consistent reading of the system's PV-on-output, consumption and grid registers."""
    sysregs = await registers(port, 100, 808, 15)
    grid_meter = await registers(port, 40, 2600, 3)
    vebus = gateway.store.device("vebus", 276)
    assert vebus is not None
    ac_in = [vebus.get("/Ac/ActiveIn/L1/P") or 0, 0, 0]
    ac_out = [vebus.get("/Ac/Out/L1/P"), None, None]
    assert sysregs == await registers(port, 100, 808, 15)  # nothing moved while we looked
    pv_out, consumption, grid = sysregs[0:3], sysregs[9:12], sysregs[12:15]
    assert pv_out == [500, 500, 500]  # Fronius PAC shared by its 3 phases
    assert grid == grid_meter  # the system's grid is the EM24
    assert [round(v) for v in (em24.values[f"/Ac/L{n}/Power"] for n in (1, 2, 3))] == pytest.approx(grid, abs=2)
    for n in range(3):
        on_input = max(0.0, grid[n] - float(ac_in[n]))  # no PV on the input
        on_output = max(0.0, float(ac_out[n] or 0.0) + pv_out[n])  # PV on output counts on every phase
        assert consumption[n] == pytest.approx(on_input + on_output, abs=3), n
    assert consumption[1] == pytest.approx(LOADS[1] + 500, abs=3)  # L2: AC-input loads + PV-fed loads
