"""The fronius driver reads the simulated datamanager (serving real answers) over HTTP."""

from __future__ import annotations

import pytest

from gateway.core.store import Store
from gateway.sim.protocols.fronius_sim import FroniusSimulator
from registers import load_default
from tests.helpers import reference_data
from tests.sources.drivers import build, until

CMAP = load_default()
FAST = 0.05


def fronius(port: int, **extra: object) -> dict[str, object]:
    table = {"driver": "fronius", "host": "127.0.0.1", "port": port, "unit": 1, "instance": 50}
    return {**table, "position": "ac-out", "poll_interval_s": FAST, "timeout_s": 0.5, **extra}


def get(store: Store, path: str) -> object:
    return store.get("pvinverter", 50, path)


async def test_real_answers_day_then_night() -> None:
    sim = FroniusSimulator()
    sim.canned["CommonInverterData"] = reference_data("fronius/symo__GetInverterRealtimeData_Device_1.json").read_text()
    sim.canned["3PInverterData"] = '{"Head": {"Status": {"Code": 0}}, "Body": {"Data": {}}}'
    await sim.start()
    store = Store()
    source = build(store, CMAP, fronius(sim.port))
    await source.start()
    try:
        await until(lambda: get(store, "/Ac/Power") == 1190, what="day PAC")
        assert get(store, "/Position") == 1 and get(store, "/Connected") == 1
        assert get(store, "/Ac/L1/Voltage") == pytest.approx(227.9)
        assert get(store, "/Ac/Energy/Forward") == pytest.approx(44188.0)
        night = reference_data("fronius/symo__GetInverterRealtimeData_Device_1_night.json").read_text()
        sim.canned["CommonInverterData"] = night
        await until(lambda: get(store, "/Ac/Power") == 0.0, what="night: idle -> 0 W")
        assert get(store, "/Ac/L1/Voltage") is None and get(store, "/Ac/Frequency") is None
        assert get(store, "/Connected") == 1
    finally:
        await source.stop()
        await sim.stop()


async def test_live_three_phase_values_equal_the_simulator() -> None:
    sim = FroniusSimulator()
    await sim.start()
    store = Store()
    source = build(store, CMAP, fronius(sim.port))
    await source.start()
    try:
        sim.state.pac_w = 2400.0
        await until(lambda: get(store, "/Ac/Power") == 2400.0, what="PAC")
        assert [get(store, f"/Ac/L{n}/Power") for n in (1, 2, 3)] == [800.0] * 3
        assert get(store, "/Ac/L3/Voltage") == sim.state.volts[2]
    finally:
        await source.stop()
        await sim.stop()


async def test_status_8_is_retried_quietly_and_12_500_json_refused_count_as_missed() -> None:
    sim = FroniusSimulator()
    await sim.start()
    store = Store()
    source = build(store, CMAP, fronius(sim.port))
    await source.start()
    try:
        await until(lambda: get(store, "/Connected") == 1, what="online")
        driver = source.pollers[0].driver  # type: ignore[attr-defined]
        state = source.pollers[0].state  # type: ignore[attr-defined]
        failures = state.failures
        sim.faults.status_code, sim.faults.times = 8, 2  # two timeouts in a row: retried within the poll
        await until(lambda: sim.faults.times is None, what="fault spent")
        await until(lambda: driver.retries >= 2, what="quiet retries")
        assert state.failures == failures and get(store, "/Connected") == 1
        for fault in ({"status_code": 12}, {"http_error": 500}, {"broken_json": True}):
            for k, v in fault.items():
                setattr(sim.faults, k, v)
            await until(lambda: get(store, "/Connected") == 0, what=f"offline on {fault}")
            assert get(store, "/Ac/Power") is None  # invalidated after 3 missed polls
            assert state.last_error is not None
            sim.faults.status_code, sim.faults.http_error, sim.faults.broken_json = 0, None, False
            await until(lambda: get(store, "/Connected") == 1, timeout=8, what="back")
        await sim.offline()  # connection refused
        await until(lambda: get(store, "/Connected") == 0, what="refused -> offline")
        await sim.online()
        await until(lambda: get(store, "/Ac/Power") == sim.state.pac_w, timeout=8, what="back after refused")
    finally:
        await source.stop()
        await sim.stop()


async def test_the_smart_meter_publishes_by_its_role_and_goes_offline_and_back() -> None:
    """role = grid: the datamanager's Smart Meter (GetMeterRealtimeData) as a grid meter,
    import positive; the real Symo answer decodes; offline after 3 missed polls; back by itself."""
    sim = FroniusSimulator()
    await sim.start()
    store = Store()
    source = build(store, CMAP, fronius(sim.port, unit=0, role="grid", instance=41, position="ac-in-1"))
    await source.start()

    def meter(path: str) -> object:
        return store.get("grid", 41, path)

    try:
        await until(lambda: meter("/Ac/L1/Power") == -1200.0, what="Smart Meter polled")
        assert [meter(f"/Ac/L{n}/Power") for n in (1, 2, 3)] == sim.meter_w
        assert meter("/Ac/Power") == pytest.approx(sum(sim.meter_w))
        assert meter("/Ac/L2/Voltage") == sim.meter_v[1] and meter("/Ac/Energy/Forward") == pytest.approx(3162.0)
        assert meter("/ProductName") == "Fronius Smart Meter (Solar API)" and meter("/Connected") == 1
        assert store.device("pvinverter", 41) is None
        sim.meter_w = [500.0, 0.0, 0.0]
        await until(lambda: meter("/Ac/L1/Power") == 500.0, what="a new reading")
        await sim.offline()
        await until(lambda: meter("/Connected") == 0, what="offline after missed polls")
        assert meter("/Ac/L1/Power") is None  # invalid, never the last figure
        await sim.online()
        await until(lambda: meter("/Ac/L1/Power") == 500.0, what="back without a restart")
        sim.canned["GetMeterRealtimeData"] = reference_data(
            "fronius/symo__GetMeterRealtimeData_Device_0.json"
        ).read_text()
        await until(lambda: meter("/Serial") is not None and meter("/Ac/L1/Power") != 500.0, what="the real answer")
    finally:
        await source.stop()
        await sim.stop()
