"""pysunspec2's own client (an independent SunSpec implementation) reads every simulator and
finds the models and values: proof that the simulators speak real SunSpec."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP

from gateway.sim.protocols.sunspec_sim import PROFILES, SMA_MAX_READ
from tests.sources.rig import simulator


def scan(port: int, unit: int, max_count: int, full: bool) -> SunSpecModbusClientDeviceTCP:
    dev = SunSpecModbusClientDeviceTCP(slave_id=unit, ipaddr="127.0.0.1", ipport=port, timeout=2)
    dev.client.max_count = max_count  # pysunspec2's TCP device does not pass its max_count on
    dev.scan(full_model_read=full)
    return dev


def models_of(dev: Any) -> list[int]:
    return [m.model_id for m in dev.model_list]


@pytest.mark.parametrize("kind", sorted(PROFILES))
async def test_pysunspec2_reads_the_simulator(kind: str) -> None:
    async with simulator(kind, serial="PEER42") as sim:
        sma = kind == "sma"
        # SMA answers long reads short and refuses to read model 123's Conn registers: a client
        # must read in small pieces and skip what cannot be read (as pysunspec2 users do).
        dev = await asyncio.to_thread(scan, sim.address[1], sim.profile.unit, SMA_MAX_READ if sma else 125, not sma)
        try:
            assert models_of(dev) == list(PROFILES[kind].models)
            common, inverter = dev.models[1][0], dev.models[103][0]
            if sma:
                for model in (common, inverter, dev.models[120][0]):
                    await asyncio.to_thread(model.read)
            assert common.Mn.cvalue == PROFILES[kind].manufacturer
            assert common.SN.cvalue == "PEER42"
            sim.update(force=True)
            assert inverter.W.cvalue == pytest.approx(sim.power_w, abs=1.0)
            assert inverter.W.cvalue > 100  # the simulated day starts at 10:00
            assert 225 < inverter.PhVphA.cvalue < 235 and inverter.Hz.cvalue == pytest.approx(50, abs=0.1)
            assert inverter.WH.cvalue == pytest.approx(sim.energy_wh, abs=2)
            assert dev.models[120][0].WRtg.cvalue == sim.max_w
            if kind == "solaredge":  # the meter after the inverter, with its own model 1
                assert dev.models[1][1].Md.cvalue == "SE-MTR-3Y"
                meter = dev.models[203][0]
                assert meter.WphA.cvalue + meter.WphB.cvalue + meter.WphC.cvalue == pytest.approx(meter.W.cvalue, abs=3)
            if kind in ("fronius", "abb"):
                assert dev.models[123][0].WMaxLimPct.cvalue == 100
        finally:
            dev.close()
