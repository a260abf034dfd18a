"""The real sunspec driver reads every simulator over a real socket and publishes what it reads."""

from __future__ import annotations

import asyncio

import pytest

from gateway.core.store import Store
from gateway.sim.protocols.sunspec_sim import PROFILES
from gateway.sources.device_state import Phase
from tests.modbus_rig import RawClient
from tests.sources.rig import device, polled, simulator, until


@pytest.mark.parametrize("kind", sorted(PROFILES))
async def test_driver_publishes_what_the_simulator_produces(kind: str) -> None:
    store = Store()
    async with simulator(kind, serial="SN777") as sim:
        config = device(0, 20, sim.address[1], sim.profile.unit, position="ac-out")
        async with polled(store, config) as source:
            await until(lambda: store.get("pvinverter", 20, "/Connected") == 1, what="online")
            d = store.device("pvinverter", 20)
            assert d is not None
            sim.update(force=True)
            await until(lambda: abs((d.get("/Ac/Power") or 0) - sim.power_w) < 2, what="power as simulated")
            assert source.pollers[0].state.phase is Phase.ONLINE
            assert d.get("/Position") == 1 and d.get("/Serial") == "SN777"
            assert d.get("/ProductName") == f"{PROFILES[kind].manufacturer} {PROFILES[kind].model_name}"
            assert d.get("/Ac/MaxPower") == sim.max_w and d.get("/Ac/PowerLimit") == sim.max_w
            power = d.get("/Ac/Power")
            assert isinstance(power, float) and power > 100
            for ph in ("L1", "L2", "L3"):  # model 103 has one W: shared by the phases
                assert d.get(f"/Ac/{ph}/Power") == pytest.approx(power / 3)
                volts, amps = d.get(f"/Ac/{ph}/Voltage"), d.get(f"/Ac/{ph}/Current")
                assert isinstance(volts, float) and 225 < volts < 235
                assert isinstance(amps, float) and amps == pytest.approx(power / 3 / volts, abs=0.05)
                energy = d.get(f"/Ac/{ph}/Energy/Forward")  # kWh = WH / 1000 / phases
                assert energy == pytest.approx(sim.energy_wh / 3000, abs=0.01)
            assert d.get("/Ac/Frequency") == pytest.approx(50, abs=0.1)


async def test_solaredge_meter_is_its_own_grid_device_on_the_one_connection() -> None:
    store = Store()
    async with simulator("solaredge") as sim:
        port = sim.address[1]
        inverter = device(0, 20, port, 1)
        meter = device(1, 30, port, 1, role="grid")
        async with polled(store, inverter, meter) as source:
            await until(lambda: store.get("grid", 30, "/Connected") == 1 and store.get("pvinverter", 20, "/Connected"))
            grid = store.device("grid", 30)
            assert grid is not None and grid.get("/ProductName") == "SolarEdge SE-MTR-3Y"
            sim.update(force=True)
            phases = [grid.get(f"/Ac/{ph}/Power") for ph in ("L1", "L2", "L3")]
            assert all(isinstance(p, float) for p in phases)
            assert grid.get("/Ac/Energy/Forward") == pytest.approx(sim.import_wh / 1000, abs=0.01)
            assert grid.get("/Ac/PowerFactor") == pytest.approx(0.98)
            assert "/Position" not in grid.values  # a meter has no PV position
            link = source.links.get("127.0.0.1", port)
            assert link.connects == 1  # both devices share SolarEdge's one client connection
            # A second client is refused by the inverter while the driver keeps its connection.
            other = await RawClient.connect(port)
            assert await other.closed(timeout=2.0)
            await other.close()
            assert sim.server.refused == 1
            polls = source.pollers[1].state.polls
            await until(lambda: source.pollers[1].state.polls >= polls + 3, what="more polls")
            assert link.connects == 1 and store.get("grid", 30, "/Connected") == 1


async def test_polls_at_the_interval_with_two_requests_each() -> None:
    store = Store()
    async with simulator("fronius") as sim, polled(store, device(0, 20, sim.address[1], 1)) as source:
        await until(lambda: source.pollers[0].state.polls >= 2)
        before, requests = source.pollers[0].state.polls, sim.server.requests
        await asyncio.sleep(1.0)
        polls = source.pollers[0].state.polls - before
        assert 3 <= polls <= 6  # 0.2 s interval
        assert sim.server.requests - requests == pytest.approx(2 * polls, abs=2)  # model 103 + model 123
