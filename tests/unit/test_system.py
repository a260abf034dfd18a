"""The system service's derivation rules against numbers computed by hand (see the comments)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.core.store import Store
from gateway.core.system import SystemService
from gateway.core.writes import WriteGate, Writer, WriteRefused
from registers import load_default

VEBUS = {
    "/Ac/ActiveIn/ActiveInput": 0,  # AC input 1
    "/Ac/ActiveIn/L1/V": 230.0,
    "/Ac/ActiveIn/L1/P": 1200,
    "/Ac/Out/L1/P": 900,
    "/Dc/0/Voltage": 52.0,
    "/Dc/0/Current": 5.0,  # charging: 52.0 V * 5.0 A = 260 W into the DC bus
    "/Soc": 74.0,
}
BATTERY = {
    "/Dc/0/Voltage": 52.0,
    "/Dc/0/Current": -10.0,
    "/Dc/0/Power": -520,  # 52.0 * -10.0
    "/Soc": 75.0,
    "/ConsumedAmphours": -70.0,
    "/TimeToGo": 3600,
}


def installation(*, battery: bool = True, vebus: bool = True, **settings: int) -> Store:
    """MultiPlus on the grid (1200 W in, 900 W out), 400 W PV inverter on AC out, 2 MPPTs, a bank."""
    store = Store()
    store.add_device("settings", 0, None, {f"/Settings/SystemSetup/{k}": v for k, v in settings.items()})
    if vebus:
        store.add_device("vebus", 276, None, VEBUS)
    if battery:
        store.add_device("battery", 512, None, BATTERY)
    store.add_device("pvinverter", 20, None, {"/Position": 1, "/Ac/L1/Power": 400})
    store.add_device("solarcharger", 278, None, {"/Yield/Power": 300, "/Dc/0/Voltage": 52.0, "/Dc/0/Current": 5.8})
    store.add_device("solarcharger", 279, None, {"/Yield/Power": 200, "/Dc/0/Voltage": 52.0, "/Dc/0/Current": 3.8})
    store.add_device("tank", 20, None, {"/Level": 50.0})  # not an input of the system service
    return store


def derive(store: Store) -> dict[str, object]:
    svc = SystemService(store, serial="c0ffee000001")
    svc.start()
    device = store.device("system", 0)
    assert device is not None and device.owner is svc
    return {path: v.value for path, v in device.values.items()}


def test_grid_connected_with_a_battery_monitor() -> None:
    s = derive(installation())
    assert s["/Serial"] == "c0ffee000001"
    assert s["/Ac/ActiveIn/Source"] == 1  # active input 0 = AC input 1 = grid (default setting)
    assert s["/Ac/Grid/L1/Power"] == 1200  # no grid meter: the MultiPlus's AC-in
    assert s["/Ac/Genset/L1/Power"] is None
    assert s["/Ac/PvOnOutput/L1/Power"] == 400
    assert s["/Ac/PvOnGrid/L1/Power"] == 0 and s["/Ac/PvOnGenset/L1/Power"] == 0  # L1 has PV, none there
    assert s["/Ac/ConsumptionOnOutput/L1/Power"] == 1300  # 900 AC out + 400 PV on the output
    assert s["/Ac/ConsumptionOnInput/L1/Power"] == 0  # no grid meter: nothing measured beside the Multi
    assert s["/Ac/Consumption/L1/Power"] == 1300  # 0 + 1300
    for ph in ("L2", "L3"):  # a single-phase installation
        for what in ("PvOnOutput", "PvOnGrid", "Grid", "Consumption", "ConsumptionOnInput"):
            assert s[f"/Ac/{what}/{ph}/Power"] is None, (what, ph)
    assert s["/Dc/Battery/Voltage"] == 52.0 and s["/Dc/Battery/Current"] == -10.0
    assert s["/Dc/Battery/Power"] == -520 and s["/Dc/Battery/Soc"] == 75.0
    assert s["/Dc/Battery/State"] == 2  # -520 W < -30 W: discharging
    assert s["/Dc/Battery/ConsumedAmphours"] == -70.0 and s["/Dc/Battery/TimeToGo"] == 3600
    assert s["/Dc/Pv/Power"] == 500  # 300 + 200
    assert s["/Dc/Pv/Current"] == pytest.approx(9.6)  # 5.8 + 3.8
    assert s["/Dc/Charger/Power"] is None  # no AC chargers
    assert s["/Dc/Vebus/Current"] == 5.0 and s["/Dc/Vebus/Power"] == 260  # 52.0 * 5.0
    assert s["/Dc/InverterCharger/Current"] == 5.0 and s["/Dc/InverterCharger/Power"] == 260
    # DC loads: 500 PV + 0 chargers + 260 from the Multi go in; the battery gives 520 more.
    assert s["/Dc/System/Power"] == 1280  # 500 + 0 + 260 - (-520)
    assert s["/DynamicEss/Available"] == 0 and s["/DynamicEss/Active"] == 0
    assert s["/DynamicEss/TargetSoc"] is None and s["/DynamicEss/Strategy"] is None
    assert "/DateAndTime" not in s and "/FirmwareVersion" not in s  # the register map derives them


def test_battery_power_is_v_times_i_when_the_monitor_has_none() -> None:
    store = installation()
    store.invalidate("battery", 512, ["/Dc/0/Power"])
    store.publish("battery", 512, {"/Dc/0/Current": 12.5})
    s = derive(store)
    assert s["/Dc/Battery/Power"] == 650  # 52.0 * 12.5
    assert s["/Dc/Battery/State"] == 1  # +650 W: charging


def test_idle_band_of_30_w() -> None:
    store = installation()
    store.publish("battery", 512, {"/Dc/0/Power": 30})
    assert derive(store)["/Dc/Battery/State"] == 0  # not above +30 W: idle


def test_no_battery_and_no_multi_means_invalid_not_zero() -> None:
    s = derive(installation(battery=False, vebus=False))
    for path in (
        "/Dc/Battery/Voltage",
        "/Dc/Battery/Current",
        "/Dc/Battery/Power",
        "/Dc/Battery/Soc",
        "/Dc/Battery/State",
        "/Dc/Battery/ConsumedAmphours",
        "/Dc/Battery/TimeToGo",
        "/Dc/System/Power",
        "/Dc/Vebus/Power",
        "/Dc/InverterCharger/Power",
        "/Ac/ActiveIn/Source",
        "/Ac/Grid/L1/Power",
        "/Ac/ConsumptionOnOutput/L1/Power",
        "/Ac/Consumption/L1/Power",
    ):
        assert s[path] is None, path
    assert s["/Dc/Pv/Power"] == 500  # what is there is still summed


def test_without_a_battery_monitor_the_multi_is_the_battery() -> None:
    s = derive(installation(battery=False))
    assert s["/Dc/Battery/Voltage"] == 52.0 and s["/Dc/Battery/Current"] == 5.0
    assert s["/Dc/Battery/Power"] == 260  # 52.0 * 5.0
    assert s["/Dc/Battery/State"] == 1  # charging
    assert s["/Dc/Battery/Soc"] == 74.0  # the Multi's own SOC
    assert s["/Dc/Battery/ConsumedAmphours"] is None and s["/Dc/Battery/TimeToGo"] is None
    assert s["/Dc/System/Power"] is None  # DC loads cannot be told apart without a monitor


def test_genset_on_the_active_input_is_not_grid() -> None:
    s = derive(installation(AcInput1=2))  # AC input 1 is a generator
    assert s["/Ac/ActiveIn/Source"] == 2
    assert s["/Ac/Genset/L1/Power"] == 1200  # the Multi's AC-in
    assert s["/Ac/Grid/L1/Power"] is None
    assert s["/Ac/ConsumptionOnInput/L1/Power"] == 0


def test_second_input_types() -> None:
    store = installation(AcInput1=1, AcInput2=3)  # input 2 is shore power
    store.publish("vebus", 276, {"/Ac/ActiveIn/ActiveInput": 1})
    s = derive(store)
    assert s["/Ac/ActiveIn/Source"] == 3  # shore counts as grid
    assert s["/Ac/Grid/L1/Power"] == 1200


def test_grid_meter_measures_loads_beside_the_multi() -> None:
    store = installation()
    store.add_device("grid", 30, None, {"/Ac/L1/Power": 1500})
    s = derive(store)
    assert s["/Ac/Grid/L1/Power"] == 1500  # the meter, not the Multi
    assert s["/Ac/ConsumptionOnInput/L1/Power"] == 300  # 1500 grid + 0 PV on grid - 1200 into the Multi
    assert s["/Ac/Consumption/L1/Power"] == 1600  # 300 on the input + 1300 on the output


def test_consumption_is_never_negative() -> None:
    store = installation()
    store.add_device("grid", 30, None, {"/Ac/L1/Power": 1000})  # meters disagree: 1000 - 1200 < 0
    assert derive(store)["/Ac/ConsumptionOnInput/L1/Power"] == 0


def test_genset_meter_while_on_the_genset() -> None:
    store = installation(AcInput1=2)
    store.add_device("genset", 40, None, {"/Ac/L1/Power": 1350})
    s = derive(store)
    assert s["/Ac/Genset/L1/Power"] == 1350  # the genset's own meter
    assert s["/Ac/ConsumptionOnInput/L1/Power"] == 150  # 1350 - 1200 into the Multi
    assert s["/Ac/Grid/L1/Power"] is None


def test_pv_inverters_by_position_and_phase() -> None:
    store = installation(AcInput2=2)  # input 2 is a genset
    store.add_device("grid", 30, None, {"/Ac/L1/Power": 1000})
    store.publish("pvinverter", 20, {"/Position": 0, "/Ac/L1/Power": 700})  # on AC input 1 (grid)
    store.add_device("pvinverter", 21, None, {"/Position": 2, "/Ac/L1/Power": 10, "/Ac/L2/Power": 20})  # genset
    store.add_device("pvinverter", 22, None, {"/Position": 1, "/Ac/L1/Power": 100, "/Ac/L2/Power": 200})
    store.add_device("pvinverter", 23, None, {"/Position": 1, "/Ac/L1/Power": 50})
    s = derive(store)
    assert s["/Ac/PvOnGrid/L1/Power"] == 700
    assert s["/Ac/PvOnGenset/L1/Power"] == 10 and s["/Ac/PvOnGenset/L2/Power"] == 20
    assert s["/Ac/PvOnOutput/L1/Power"] == 150 and s["/Ac/PvOnOutput/L2/Power"] == 200  # 100 + 50; 200
    assert s["/Ac/PvOnGrid/L2/Power"] == 0  # L2 has PV, none on the grid input
    assert s["/Ac/PvOnGrid/L3/Power"] is None  # no PV inverter reports L3
    assert s["/Ac/ConsumptionOnInput/L1/Power"] == 500  # 1000 grid + 700 PV on grid - 1200 Multi
    assert s["/Ac/ConsumptionOnOutput/L1/Power"] == 1050  # 900 AC out + 150 PV on the output


def test_pv_inverter_on_an_unused_input_follows_the_historic_rule() -> None:
    store = installation()  # AcInput2 absent: 0 = not used
    store.publish("pvinverter", 20, {"/Position": 2})
    s = derive(store)
    assert s["/Ac/PvOnGenset/L1/Power"] == 400 and s["/Ac/PvOnOutput/L1/Power"] == 0


def test_inverter_only_disconnects_the_input() -> None:
    store = installation()
    store.publish("vebus", 276, {"/Ac/ActiveIn/ActiveInput": 240, "/Ac/ActiveIn/L1/P": 0})
    s = derive(store)
    assert s["/Ac/ActiveIn/Source"] == 240
    assert s["/Ac/Grid/L1/Power"] is None and s["/Ac/Genset/L1/Power"] is None
    assert s["/Ac/Consumption/L1/Power"] == 1300  # 0 on the input + 900 out + 400 PV on the output


def test_multi_rs_when_there_is_no_vebus() -> None:
    store = installation(vebus=False)
    store.add_device(
        "multi",
        288,
        None,
        {
            "/Ac/ActiveIn/ActiveInput": 0,
            "/Ac/In/1/L1/P": 800,
            "/Ac/Out/L1/P": 600,
            "/Dc/0/Voltage": 50.0,
            "/Dc/0/Current": -4.0,
        },
    )
    s = derive(store)
    assert s["/Ac/Grid/L1/Power"] == 800  # AC input 1's power
    assert s["/Ac/ConsumptionOnOutput/L1/Power"] == 1000  # 600 + 400 PV on the output
    assert s["/Dc/Vebus/Power"] is None  # not a VE.Bus device ...
    assert s["/Dc/InverterCharger/Power"] == -200  # ... but an inverter/charger: 50.0 * -4.0


def test_removed_devices_take_their_paths_with_them() -> None:
    store = installation()
    SystemService(store).start()
    store.remove_device("battery", 512)
    assert store.get("system", 0, "/Dc/Battery/Power") == 260  # back to the Multi's DC side
    store.remove_device("solarcharger", 278)
    assert store.get("system", 0, "/Dc/Pv/Power") == 200  # the other MPPT
    store.remove_device("solarcharger", 279)
    assert store.get("system", 0, "/Dc/Pv/Power") is None
    store.remove_device("vebus", 276)
    assert store.get("system", 0, "/Dc/Battery/Power") is None
    assert store.get("system", 0, "/Ac/Grid/L1/Power") is None
    assert store.get("system", 0, "/Ac/ActiveIn/Source") is None
    store.remove_device("pvinverter", 20)
    assert store.get("system", 0, "/Ac/PvOnOutput/L1/Power") is None


async def test_relays_take_0_or_1_and_nothing_else_is_writable() -> None:
    store = installation()
    SystemService(store).start()
    gate, tester = WriteGate(store, load_default()), Writer("test")
    await gate.write("system", 0, {"/Relay/1/State": 1}, tester)
    assert store.get("system", 0, "/Relay/1/State") == 1
    for bad in ({"/Relay/0/State": 2}, {"/Relay/0/State": "1"}, {"/Relay/0/State": 1, "/Dc/Battery/Soc": 50}):
        with pytest.raises(WriteRefused):
            await gate.write("system", 0, bad, tester)
    assert store.get("system", 0, "/Relay/0/State") == 0  # all or nothing
    assert store.get("system", 0, "/Dc/Battery/Soc") == 75.0


async def test_many_changes_one_recompute_per_loop_iteration() -> None:
    store = installation()
    svc = SystemService(store)
    svc.start()
    before = svc.recomputes
    for watts in range(100, 150):
        store.publish("solarcharger", 278, {"/Yield/Power": watts})
    store.publish("battery", 512, {"/Soc": 80.0})
    assert svc.recomputes == before  # scheduled, not run inside publish
    assert store.get("system", 0, "/Dc/Pv/Power") == 500  # still the old sum
    await asyncio.sleep(0)
    assert svc.recomputes == before + 1
    assert store.get("system", 0, "/Dc/Pv/Power") == 349  # 149 + 200
    assert store.get("system", 0, "/Dc/Battery/Soc") == 80.0
    store.publish("tank", 20, {"/Level": 40.0})  # not an input
    await store.write("system", 0, {"/Relay/0/State": 1})  # its own change
    await asyncio.sleep(0)
    assert svc.recomputes == before + 1


async def test_stop_unsubscribes_and_removes_the_device() -> None:
    store = installation()
    svc = SystemService(store)
    svc.start()
    store.publish("battery", 512, {"/Soc": 10.0})  # schedules a recompute ...
    svc.stop()  # ... which stop cancels
    await asyncio.sleep(0)
    assert store.device("system", 0) is None
    SystemService(store).start()  # can start again
    assert store.get("system", 0, "/Dc/Battery/Soc") == 10.0


def test_three_phase_pv_on_the_output_of_a_one_phase_multi_counts_on_every_phase() -> None:
    """A 3-phase SunSpec inverter on AC-out (demo: the SolarEdge) of a Multi with only L1."""
    store = installation()
    store.add_device("pvinverter", 21, None, {"/Position": 1, **{f"/Ac/{ph}/Power": 600 for ph in ("L1", "L2", "L3")}})
    s = derive(store)
    assert s["/Ac/PvOnOutput/L1/Power"] == 1000 and s["/Ac/PvOnOutput/L2/Power"] == 600  # 400 + 600 on L1
    assert s["/Ac/ConsumptionOnOutput/L1/Power"] == 900 + 1000  # Multi AC-out + PV on output
    assert s["/Ac/ConsumptionOnOutput/L2/Power"] == 600  # no Multi phase: the PV alone, not None
    assert s["/Ac/Consumption/L2/Power"] == 600 + (s["/Ac/ConsumptionOnInput/L2/Power"] or 0)


async def test_recomputes_are_spaced_but_the_last_change_is_derived() -> None:
    """100 inverters publishing at their own moments must not cost 100 recomputes a second."""
    from gateway.core.system import BURST, RATE

    store = installation()
    svc = SystemService(store)
    svc.start()
    before = svc.recomputes
    store.publish("pvinverter", 20, {"/Ac/L1/Power": 99})
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert svc.recomputes == before + 1  # within budget: derived in the same loop turn
    for i in range(40):  # 40 changes over ~0.4 s
        store.publish("pvinverter", 20, {"/Ac/L1/Power": 100 + i})
        await asyncio.sleep(0.01)
    await asyncio.sleep(2 / RATE)
    assert svc.recomputes - before <= 1 + BURST + 0.6 * RATE + 1
    assert store.get("system", 0, "/Ac/PvOnOutput/L1/Power") == 139  # never left behind
    svc.stop()
