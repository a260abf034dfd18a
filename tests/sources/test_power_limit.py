"""/Ac/PowerLimit from a Modbus client (register 1056) to the simulated inverter and back."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import parse_config
from gateway.core.writes import Refusal, WriteRefused
from gateway.sim.protocols.sunspec_sim import SunSpecSim
from gateway.sources.sunspec import SunSpecSource
from tests.modbus_rig import RawClient, read_pdu, words
from tests.sources.rig import CMAP, until

UNIT = 20  # the pvinverter's instance = the unit id clients use


@asynccontextmanager
async def gateway(
    tmp: Path, kind: str, revert_s: float = 120.0
) -> AsyncIterator[tuple[Gateway, SunSpecSim, RawClient]]:
    config = parse_config(
        {
            "state_dir": str(tmp),
            "modbus": {"listen": "127.0.0.1:0", "writes": True},  # writes are off unless configured
            "simulator": [{"name": "pv", "kind": kind}],
            "device": [
                {
                    "driver": "sunspec",
                    "simulator": "pv",
                    "unit": 126 if kind == "sma" else 1,
                    "instance": UNIT,
                    "poll_interval_s": 0.2,
                    "limit_revert_s": revert_s,
                }
            ],
        }
    )
    gw = Gateway(CMAP, config)
    await gw.start()
    try:
        assert gw.modbus is not None
        client = await RawClient.connect(gw.modbus.port)
        sims = [c for c in gw.components if type(c).__name__ == "Simulators"]
        sim = sims[0].by_name["pv"]  # type: ignore[attr-defined]
        await until(lambda: gw.store.get("pvinverter", UNIT, "/Connected") == 1, what="online")
        try:
            yield gw, sim, client
        finally:
            await client.close()
    finally:
        await gw.stop()


def limit_pdu(raw: int) -> bytes:
    return struct.pack(">BHHBI", 16, 1056, 2, 4, raw)


async def read_u32(client: RawClient, address: int) -> int:
    hi, lo = words(await client.request(UNIT, read_pdu(address, 2)))
    return hi << 16 | lo


def sunspec_source(gw: Gateway) -> SunSpecSource:
    return next(c for c in gw.components if isinstance(c, SunSpecSource))


@pytest.mark.parametrize("kind", ["fronius", "abb", "solaredge", "generic704"])
async def test_a_limit_written_to_1056_limits_the_inverter(tmp_path: Path, kind: str) -> None:
    async with gateway(tmp_path, kind) as (gw, sim, client):
        assert await read_u32(client, 1056) == sim.max_w  # no limit: max power
        assert await client.request(UNIT, limit_pdu(2000)) == limit_pdu(2000)[:5]  # FC 16 echo
        await until(lambda: sim.power_w <= 2000 * 1.01, what="the inverter follows")
        await until(lambda: abs((gw.store.get("pvinverter", UNIT, "/Ac/Power") or 0) - sim.power_w) < 2)
        limit = await read_u32(client, 1056)
        assert 1940 <= limit <= 2060  # the inverter's percent resolution (704 sim: 1 %)
        assert await read_u32(client, 1052) <= 2000 * 1.01


async def test_out_of_range_limits_are_exception_03_and_nothing_is_sent(tmp_path: Path) -> None:
    async with gateway(tmp_path, "fronius") as (gw, sim, client):
        writes = len(sim.writes)
        for raw in (9000, 8201, 0xFFFFFFF0, 0xFFFFFFFE):  # above max power; "negative" as uint32
            assert await client.request(UNIT, limit_pdu(raw)) == bytes((0x90, 0x03)), raw
        with pytest.raises(WriteRefused) as refused:  # any frontend: negative watts
            gw.gate.check("pvinverter", UNIT, {"/Ac/PowerLimit": -5.0})
        assert refused.value.refusal is Refusal.BAD_VALUE
        assert len(sim.writes) == writes  # nothing reached the inverter
        assert await client.request(UNIT, limit_pdu(0)) == limit_pdu(0)[:5]  # 0 W: clamped to 1 %
        await until(lambda: len(sim.writes) > writes)
        assert sim.limit_pct() == pytest.approx(1.0)


async def test_the_limit_is_kept_alive_only_while_asked_then_reverts(tmp_path: Path) -> None:
    async with gateway(tmp_path, "fronius", revert_s=1.0) as (gw, sim, client):
        limiter = sunspec_source(gw).pollers[0].driver.limiter  # type: ignore[attr-defined]
        assert await client.request(UNIT, limit_pdu(3000)) == limit_pdu(3000)[:5]
        ctl = sim.image.slot(123)
        assert sim.image.raw(ctl, "WMaxLimPct_RvrtTms") == 1 and sim.image.raw(ctl, "WMaxLim_Ena") == 1
        await until(lambda: limiter.sent >= 2, timeout=2, what="a keep-alive before the revert time")
        # No more writes: the driver stops re-sending and the inverter's own timer reverts it.
        await until(lambda: sim.limit_pct() == 100.0, timeout=4, what="revert to 100 %")
        sent = limiter.sent
        await until(lambda: gw.store.get("pvinverter", UNIT, "/Ac/PowerLimit") == sim.max_w, timeout=2)
        for _ in range(3):
            polls = sunspec_source(gw).pollers[0].state.polls
            await until(lambda: sunspec_source(gw).pollers[0].state.polls > polls)  # noqa: B023
        assert limiter.sent == sent and sim.limit_pct() == 100.0  # nobody asked: nothing re-sent


async def test_sma_writes_only_wmaxlimpct_and_only_when_the_installer_enabled_it(tmp_path: Path) -> None:
    async with gateway(tmp_path, "sma") as (gw, sim, client):
        ctl = sim.image.slot(123)
        pct_at = ctl.address + ctl.layout.points["WMaxLimPct"].offset
        assert await client.request(UNIT, limit_pdu(5000)) == limit_pdu(5000)[:5]
        assert sim.writes == [(pct_at, 1)]
        assert sim.limit_pct() == pytest.approx(50.0)
        sim.image.set_raw(ctl, "WMaxLim_Ena", 0)  # limiting not enabled by the installer
        await until(lambda: gw.store.get("pvinverter", UNIT, "/Ac/PowerLimit") == sim.max_w)
        assert await client.request(UNIT, limit_pdu(4000)) == bytes((0x90, 0x04))  # refused by the device
        assert sim.writes == [(pct_at, 1)]


async def test_a_disconnected_inverter_answers_0x0a_for_reads_and_writes(tmp_path: Path) -> None:
    async with gateway(tmp_path, "fronius") as (gw, sim, client):
        await sim.server.go_offline()
        await until(lambda: gw.store.get("pvinverter", UNIT, "/Connected") == 0, timeout=5)
        assert await client.request(UNIT, read_pdu(1026, 10)) == bytes((0x83, 0x0A))
        assert await client.request(UNIT, limit_pdu(2000)) == bytes((0x90, 0x0A))
        await sim.server.come_back()
        await until(lambda: gw.store.get("pvinverter", UNIT, "/Connected") == 1, timeout=10)
        assert words(await client.request(UNIT, read_pdu(1026, 1))) == [0]  # /Position: AC input 1
