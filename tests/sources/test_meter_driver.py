"""The meter and sma drivers against the simulators over real sockets: probe, poll, publish by
role, faults (offline, exceptions, hangs, NaN), unsupported models, many devices reconnecting."""

from __future__ import annotations

import asyncio
import logging
import statistics

import pytest

from gateway.core.store import Store
from gateway.sim.protocols.meter_sim import MeterSimulator
from registers import load_default
from registers.meters import meter_models
from tests.sources.drivers import build, until

CMAP = load_default()
MODELS = meter_models(CMAP)
FAST = 0.05


def meter(port: int, **extra: object) -> dict[str, object]:
    return {"driver": "meter", "host": "127.0.0.1", "port": port, "instance": 40, "poll_interval_s": FAST, **extra}


async def test_em24_probed_and_published_as_grid() -> None:
    sim = MeterSimulator(MODELS["em24"])
    await sim.start()
    store = Store()
    source = build(store, CMAP, meter(sim.port))
    await source.start()
    try:
        await until(lambda: store.get("grid", 40, "/Connected") == 1, what="EM24 online")
        assert store.get("grid", 40, "/ProductName") == "Carlo Gavazzi EM24 Ethernet"
        assert store.get("grid", 40, "/Ac/Power") == 1700.0
        assert store.get("grid", 40, "/Ac/L1/Current") == pytest.approx(4.512)
        assert store.get("grid", 40, "/Serial") == "BX12345"
        sim.set({"/Ac/L2/Power": -480.5})
        await until(lambda: store.get("grid", 40, "/Ac/L2/Power") == -480.5, what="new value")
    finally:
        await source.stop()
        await sim.stop()


async def test_sdm630_by_model_as_acload_then_nan_then_offline_and_back() -> None:
    sim = MeterSimulator(MODELS["sdm630"])
    await sim.start()
    store = Store()
    source = build(store, CMAP, meter(sim.port, model="sdm630", role="acload"))
    await source.start()
    try:
        await until(lambda: store.get("acload", 40, "/Ac/Power") == 1420.75, what="SDM630 values")
        sim.invalid(["/Ac/L3/Power"])
        await until(lambda: store.get("acload", 40, "/Ac/L3/Power") is None, what="NaN -> invalid")
        assert store.get("acload", 40, "/Ac/Power") == 1420.75
        await sim.offline()
        await until(lambda: store.get("acload", 40, "/Connected") == 0, what="offline")
        assert store.get("acload", 40, "/Ac/Power") is None  # invalidated, not stale
        await sim.online()
        await until(lambda: store.get("acload", 40, "/Ac/Power") == 1420.75, timeout=8, what="back")
    finally:
        await source.stop()
        await sim.stop()


@pytest.mark.parametrize("fault", ["exception", "hang"])
async def test_exception_replies_and_timeouts_invalidate(fault: str) -> None:
    sim = MeterSimulator(MODELS["abb-b23"])
    await sim.start()
    store = Store()
    source = build(store, CMAP, meter(sim.port, role="genset"))
    await source.start()
    try:
        await until(lambda: store.get("genset", 40, "/Ac/Power") == 1065.12, what="ABB values")
        if fault == "exception":
            sim.fail_with = 0x04
        else:
            sim.hang = True
        await until(lambda: store.get("genset", 40, "/Connected") == 0, timeout=8, what="missed polls")
        assert store.get("genset", 40, "/Ac/L1/Voltage") is None
        sim.fail_with, sim.hang = None, False
        await until(lambda: store.get("genset", 40, "/Connected") == 1, timeout=8, what="recovered")
    finally:
        await source.stop()
        await sim.stop()


async def test_unknown_model_id_is_unsupported_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    sim = MeterSimulator(MODELS["em24"])
    sim.banks[4].put(0x000B, (9999).to_bytes(2, "big"))  # an id no file claims
    await sim.start()
    store = Store()
    source = build(store, CMAP, meter(sim.port))
    await source.start()
    try:
        with caplog.at_level(logging.WARNING):
            await until(lambda: "unsupported meter" in caplog.text, what="log line")
            await asyncio.sleep(10 * FAST)
        lines = [r.getMessage() for r in caplog.records if r.name == "gateway.sources.meter"]
        assert lines[0].endswith(
            "unit 1: model id 9999 at register 0x000b is not in mappings/devices/meters.csv (unsupported meter)"
        )
        assert len(lines) == 1  # said once, not once per retry
        assert store.get("grid", 40, "/Connected") == 0
    finally:
        await source.stop()
        await sim.stop()


async def test_sma_native_inverter() -> None:
    sim = MeterSimulator(MODELS["sma-native"], unit=3)
    await sim.start()
    store = Store()
    source = build(
        store,
        CMAP,
        {
            "driver": "sma",
            "host": "127.0.0.1",
            "port": sim.port,
            "instance": 41,
            "position": "ac-out",
            "poll_interval_s": FAST,
        },
    )
    await source.start()
    try:
        await until(lambda: store.get("pvinverter", 41, "/Ac/Power") == 4310, what="SMA values")
        assert store.get("pvinverter", 41, "/Position") == 1
        assert store.get("pvinverter", 41, "/Ac/L1/Current") == pytest.approx(6.251)
        assert store.get("pvinverter", 41, "/Ac/Energy/Forward") == pytest.approx(21234.567)
        sim.load_sample(1)  # night: SMA's NaN values
        # A poll under way when the sample changed read some blocks before it and some after
        # (as with a real inverter): the next poll has both.
        await until(
            lambda: (
                store.get("pvinverter", 41, "/Ac/Power") is None
                and store.get("pvinverter", 41, "/Ac/Energy/Forward") == pytest.approx(21240.002)
            ),
            what="NaN power and the night's energy",
        )
    finally:
        await source.stop()
        await sim.stop()


@pytest.mark.timeout(60)
async def test_hundred_meters_failing_together_reconnect_with_jitter() -> None:
    """All go offline at once and come back at once; the reconnects must not come in lockstep."""
    sims = [MeterSimulator(MODELS["em24"]) for _ in range(100)]
    for s in sims:
        await s.start()
    store = Store()
    tables = [meter(s.port, instance=100 + i, poll_interval_s=0.1) for i, s in enumerate(sims)]
    source = build(store, CMAP, *tables)
    await source.start()
    try:
        await until(lambda: all(store.get("grid", 100 + i, "/Connected") == 1 for i in range(100)), timeout=15)
        for s in sims:
            await s.offline()
        await until(lambda: all(store.get("grid", 100 + i, "/Connected") == 0 for i in range(100)), timeout=15)
        await asyncio.sleep(1.0)  # a few failed attempts each: the back-off grows, with jitter
        loop = asyncio.get_running_loop()
        back = loop.time()
        for s in sims:
            s.accepted.clear()
            await s.online()
        await until(lambda: all(s.accepted for s in sims), timeout=30, what="every meter reconnected")
        delays = sorted(s.accepted[0] - back for s in sims)
        spread = delays[-1] - delays[0]
        print(
            f"reconnect delays: min {delays[0]:.3f} s, median {statistics.median(delays):.3f} s, max {delays[-1]:.3f} s, stdev {statistics.pstdev(delays):.3f} s"
        )
        assert spread > 0.3, delays  # not in lockstep
        assert statistics.pstdev(delays) > 0.08
        busiest = max(sum(1 for d in delays if t <= d < t + 0.05) for t in delays)
        assert busiest < 50, f"{busiest} of 100 reconnects within 50 ms"
    finally:
        await source.stop()
        for s in sims:
            await s.stop()


async def test_a_meter_that_refuses_its_serial_number_block_stays_online(caplog: pytest.LogCaptureFixture) -> None:
    """Some EM24 firmware answers exception 02 for the serial number block: the identity is
    optional and read once, so the measurements keep the meter online."""
    sim = MeterSimulator(MODELS["em24"])
    for address in range(0x5000, 0x5007):
        del sim.banks[4].words[address]  # the serial number: now "illegal data address"
    assert sim.answer(1, bytes((4, 0x50, 0x00, 0, 7)))[1] == 0x02
    await sim.start()
    store = Store()
    source = build(store, CMAP, meter(sim.port))
    caplog.set_level(logging.INFO, logger="gateway.sources.meter")
    await source.start()
    try:
        await until(lambda: store.get("grid", 40, "/Connected") == 1, what="EM24 online")
        polls = sim.requests
        await until(lambda: sim.requests >= polls + 10, what="ten more requests")
        assert store.get("grid", 40, "/Connected") == 1
        assert store.get("grid", 40, "/Ac/Power") == 1700.0
        assert store.get("grid", 40, "/Serial") is None
        refused = [r.getMessage() for r in caplog.records if "refuses register 0x5000" in r.getMessage()]
        assert len(refused) == 1, refused  # read once, at probe: not at every poll
    finally:
        await source.stop()
        await sim.stop()
