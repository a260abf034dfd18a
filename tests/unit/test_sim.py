"""The demo installation: consistent physics, only mapped paths, writes that act at once.

Deterministic: a seed, ``step()`` called directly, no sleeping (one ``step(1.0)`` at the
default 60x is one 60 s physics sub-step).
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.core.store import Store
from gateway.core.system import SystemService
from gateway.core.writes import WriteGate, Writer, WriteRefused
from gateway.sim.plant import EFFICIENCY, IDLE_W
from gateway.sim.victron import DEFAULT_LAYOUT, VictronSimulation
from registers import CompiledMap, load_default

TESTER = Writer("test")
_GATES: dict[int, WriteGate] = {}


async def write(store: Store, service: str, instance: int, changes: dict[str, object]) -> None:
    """Write as every frontend does: through the one write gate."""
    gate = _GATES.setdefault(id(store), WriteGate(store, load_default()))
    await gate.write(service, instance, changes, TESTER)  # type: ignore[arg-type]


EXTRAS = {"/ProductName", "/Connected"}  # harmless paths that are not in the register map
PATHS = {
    "vebus": {
        "/Ac/ActiveIn/ActiveInput", "/Ac/ActiveIn/CurrentLimit", "/Ac/ActiveIn/L1/F", "/Ac/ActiveIn/L1/I",
        "/Ac/ActiveIn/L1/P", "/Ac/ActiveIn/L1/V", "/Ac/NumberOfPhases", "/Ac/Out/L1/F", "/Ac/Out/L1/I",
        "/Ac/Out/L1/P", "/Ac/Out/L1/V", "/Ac/Out/NominalInverterPower", "/Alarms/HighTemperature",
        "/Alarms/LowBattery", "/Alarms/Overload", "/CustomName", "/Dc/0/Current", "/Dc/0/Temperature",
        "/Dc/0/Voltage", "/Hub4/DisableCharge", "/Hub4/DisableFeedIn", "/Hub4/L1/AcPowerSetpoint", "/Mode",
        "/Soc", "/State", "/VebusError",
    },
    "battery": {
        "/Capacity", "/ConsumedAmphours", "/CustomName", "/Dc/0/Current", "/Dc/0/Power", "/Dc/0/Temperature",
        "/Dc/0/Voltage", "/History/ChargedEnergy", "/History/DeepestDischarge", "/History/DischargedEnergy",
        "/History/MaximumVoltage", "/History/MinimumVoltage", "/Relay/0/State", "/Soc", "/TimeToGo",
    },
    "solarcharger": {
        "/CustomName", "/Dc/0/Current", "/Dc/0/Voltage", "/ErrorCode", "/History/Daily/0/MaxPower",
        "/History/Daily/0/Yield", "/Mode", "/MppOperationMode", "/Pv/V", "/State", "/Yield/Power", "/Yield/User",
    },
    "tank": {"/Capacity", "/CustomName", "/FluidType", "/Level", "/Remaining", "/Status"},
    "temperature": {"/CustomName", "/Status", "/Temperature", "/TemperatureType"},
    "digitalinput": {"/Alarm", "/Count", "/CustomName", "/State", "/Type"},
}  # fmt: skip
IDLE_AC_W = IDLE_W / EFFICIENCY  # 20 / 0.94 = 21.28 W: what the charger draws to cover its own use


def make(*, seed: int = 7, soc: float = 55.0, hour: float = 10.0, **settings: float) -> tuple[Store, VictronSimulation]:
    store = Store()
    store.add_device("settings", 0, None, {f"/Settings/CGwacs/{k.replace('_', '/')}": v for k, v in settings.items()})
    sim = VictronSimulation(store, seed=seed, soc=soc, hour=hour)
    sim.start()
    SystemService(store).start()  # no loop running here: it recomputes on every change
    return store, sim


def get(store: Store, service: str, instance: int, path: str) -> float:
    v = store.get(service, instance, path)
    assert isinstance(v, (int, float)), (service, instance, path, v)
    return float(v)


def test_devices_and_instances_like_a_cerbo() -> None:
    store, sim = make()
    expected = {
        ("vebus", 276), ("battery", 512), ("solarcharger", 278), ("solarcharger", 279), ("tank", 20),
        ("tank", 21), ("temperature", 24), ("temperature", 25), ("digitalinput", 30),
    }  # fmt: skip
    assert {(k, i) for k, i, _ in DEFAULT_LAYOUT} == expected
    assert {d.key for d in store.devices()} == expected | {("system", 0), ("settings", 0)}
    for key in expected:
        device = store.device(*key)
        assert device is not None and device.owner is sim
    assert store.get("tank", 20, "/FluidType") == 1 and store.get("tank", 21, "/FluidType") == 0  # water, fuel
    assert store.get("temperature", 24, "/TemperatureType") == 0  # battery
    assert store.get("digitalinput", 30, "/Type") == 4  # bilge alarm
    assert store.get("vebus", 276, "/CustomName") == "MultiPlus-II"


def test_every_published_path_is_mapped(cmap: CompiledMap) -> None:
    store, sim = make()
    for mode in (3, 1, 2, 4):  # every mode publishes the same set of paths
        sim.vebus.held["/Mode"] = mode  # type: ignore[union-attr]
        sim.step(1.0)
        for device in store.devices():
            if device.service in PATHS:
                assert set(device.values) == PATHS[device.service] | EXTRAS, device.key
                unmapped = set(device.values) - set(cmap.modbus.tables[device.service].by_path) - EXTRAS
                assert not unmapped, (device.key, unmapped)


def test_energy_balances_hold_every_step() -> None:
    store, sim = make()
    for _ in range(3 * 60):  # three simulated hours from 10:00, one minute per step
        soc_before = sim.plant.soc
        sim.step(1.0)
        f = sim.flows
        v, i, p = (get(store, "battery", 512, x) for x in ("/Dc/0/Voltage", "/Dc/0/Current", "/Dc/0/Power"))
        assert p == v * i  # exactly as published
        mppts = get(store, "solarcharger", 278, "/Yield/Power") + get(store, "solarcharger", 279, "/Yield/Power")
        vebus_dc = get(store, "vebus", 276, "/Dc/0/Voltage") * get(store, "vebus", 276, "/Dc/0/Current")
        assert p == pytest.approx(mppts + vebus_dc, abs=1e-6)  # DC: battery = PV + inverter/charger
        ac_out = get(store, "vebus", 276, "/Ac/Out/L1/P")
        assert ac_out == f.demand_w  # AC out delivers the loads
        assert get(store, "vebus", 276, "/Ac/ActiveIn/L1/P") == pytest.approx(ac_out + f.inverter_ac_w)
        soc = get(store, "battery", 512, "/Soc")
        assert get(store, "vebus", 276, "/Soc") == soc
        assert get(store, "battery", 512, "/ConsumedAmphours") == pytest.approx(-280 * (1 - soc / 100))
        if i > 0.01:
            assert soc > soc_before
        elif i < -0.01:
            assert soc < soc_before
        # The system service agrees: nothing unexplained on the DC bus, consumption = the loads.
        assert get(store, "system", 0, "/Dc/System/Power") == pytest.approx(0.0, abs=1e-6)
        assert get(store, "system", 0, "/Ac/Consumption/L1/Power") == pytest.approx(ac_out)
        assert get(store, "system", 0, "/Dc/Battery/Power") == p


def test_ess_holds_the_grid_at_the_setpoint_and_the_battery_takes_the_rest() -> None:
    store, sim = make()
    sim.step(1.0)
    assert get(store, "vebus", 276, "/Ac/ActiveIn/L1/P") == pytest.approx(50.0)  # default setpoint
    assert get(store, "battery", 512, "/Dc/0/Current") > 0  # 10:00, sunny: charging
    store.publish("vebus", 276, {"/Hub4/L1/AcPowerSetpoint": 1000})  # what the ESS loop writes
    sim.vebus.held["/Hub4/L1/AcPowerSetpoint"] = 1000  # type: ignore[union-attr]
    sim.step(0.5)  # the ramp: 1000 W/s
    assert get(store, "vebus", 276, "/Ac/ActiveIn/L1/P") == pytest.approx(550.0)
    sim.step(1.0)
    assert get(store, "vebus", 276, "/Ac/ActiveIn/L1/P") == pytest.approx(1000.0)
    assert get(store, "system", 0, "/Ac/Grid/L1/Power") == pytest.approx(1000.0)


def test_solar_is_zero_at_night_and_the_battery_carries_the_loads() -> None:
    store, sim = make()
    sim.step(14 * 3600 / 60)  # from 10:00 to midnight in one call (840 sub-steps)
    assert sim.plant.hour == pytest.approx(0.0)
    for mppt in (278, 279):
        assert store.get("solarcharger", mppt, "/Yield/Power") == 0
        assert store.get("solarcharger", mppt, "/State") == 0  # off
    assert store.get("system", 0, "/Dc/Pv/Power") == 0
    assert store.get("system", 0, "/Dc/Battery/State") == 2  # discharging
    soc = get(store, "battery", 512, "/Soc")
    sim.step(1.0)
    assert get(store, "battery", 512, "/Soc") < soc
    to_go = get(store, "battery", 512, "/TimeToGo")
    amps = get(store, "battery", 512, "/Dc/0/Current")
    soc = get(store, "battery", 512, "/Soc")
    assert to_go == pytest.approx((soc - 20) / 100 * 280 / -amps * 3600)  # hours to the 20 % floor


def test_minimum_soc_is_respected_and_the_grid_takes_over() -> None:
    store, sim = make(soc=20.5, hour=22.0)
    for _ in range(6 * 60):  # six dark hours
        sim.step(1.0)
        assert sim.plant.soc >= 20.0
    assert sim.plant.soc == 20.0
    assert get(store, "battery", 512, "/Dc/0/Power") == pytest.approx(0.0, abs=1e-9)
    loads = get(store, "vebus", 276, "/Ac/Out/L1/P")
    assert get(store, "vebus", 276, "/Ac/ActiveIn/L1/P") == pytest.approx(loads + IDLE_AC_W)  # the loads + 21.28 W
    store.publish("settings", 0, {"/Settings/CGwacs/BatteryLife/MinimumSocLimit": 10})
    sim.step(1.0)
    assert sim.plant.soc < 20.0  # a lower limit lets it discharge again


def test_a_raised_minimum_soc_stops_discharging_there() -> None:
    _, sim = make(soc=50.0, hour=21.0, BatteryLife_MinimumSocLimit=45)
    for _ in range(6 * 60):
        sim.step(1.0)
    assert sim.plant.soc == 45.0


def test_full_battery_feeds_in_the_excess() -> None:
    store, sim = make(soc=100.0, hour=12.0)
    sim.step(1.0)
    f = sim.flows
    pv = get(store, "solarcharger", 278, "/Yield/Power") + get(store, "solarcharger", 279, "/Yield/Power")
    assert pv == f.pv_available_w > 1000  # no curtailment while it can be fed in
    assert get(store, "battery", 512, "/Dc/0/Current") == 0.0
    # All PV goes through the inverter: AC-in = loads - (PV - 20 W idle) * 0.94, negative = feed-in.
    expected = f.demand_w - (pv - IDLE_W) * EFFICIENCY
    assert get(store, "vebus", 276, "/Ac/ActiveIn/L1/P") == pytest.approx(expected)
    assert expected < 0


async def test_full_battery_without_feed_in_curtails_the_mppts() -> None:
    store, sim = make(soc=100.0, hour=12.0)
    await write(store, "vebus", 276, {"/Hub4/DisableFeedIn": 1})
    sim.step(1.0)
    f = sim.flows
    assert get(store, "vebus", 276, "/Ac/ActiveIn/L1/P") == pytest.approx(50.0)  # held at the setpoint
    assert get(store, "battery", 512, "/Dc/0/Power") == 0.0
    pv = get(store, "solarcharger", 278, "/Yield/Power") + get(store, "solarcharger", 279, "/Yield/Power")
    assert pv == pytest.approx((f.demand_w - 50.0) / EFFICIENCY + IDLE_W)  # just the loads beyond the grid's 50 W
    assert pv < f.pv_available_w
    assert store.get("solarcharger", 278, "/MppOperationMode") == 1  # voltage/current limited


async def test_mode_off_kills_ac_out_at_once() -> None:
    store, sim = make()
    await write(store, "vebus", 276, {"/Mode": 4})
    for _ in range(2):  # at once (write), and still after a step
        assert store.get("vebus", 276, "/Mode") == 4
        assert store.get("vebus", 276, "/State") == 0  # off
        assert store.get("vebus", 276, "/Ac/Out/L1/P") == 0
        assert store.get("vebus", 276, "/Ac/Out/L1/V") == 0
        assert store.get("vebus", 276, "/Ac/ActiveIn/L1/P") == 0
        assert store.get("vebus", 276, "/Ac/ActiveIn/ActiveInput") == 240
        await asyncio.sleep(0)  # with a loop running, the system service recomputes once per iteration
        assert store.get("system", 0, "/Ac/Consumption/L1/Power") == 0
        sim.step(1.0)
    assert get(store, "battery", 512, "/Dc/0/Power") == pytest.approx(sim.flows.pv_available_w)  # PV only
    await write(store, "vebus", 276, {"/Mode": 3})
    assert store.get("vebus", 276, "/State") != 0
    assert get(store, "vebus", 276, "/Ac/Out/L1/P") > 0


async def test_inverter_only_runs_the_loads_from_the_battery() -> None:
    store, _ = make(hour=23.0)  # dark
    await write(store, "vebus", 276, {"/Mode": 2})
    assert store.get("vebus", 276, "/Ac/ActiveIn/ActiveInput") == 240
    assert store.get("vebus", 276, "/Ac/ActiveIn/L1/P") == 0
    assert store.get("vebus", 276, "/State") == 9  # inverting
    loads = get(store, "vebus", 276, "/Ac/Out/L1/P")
    assert loads > 0
    assert get(store, "battery", 512, "/Dc/0/Power") == pytest.approx(-loads / EFFICIENCY - IDLE_W)
    await asyncio.sleep(0)
    assert store.get("system", 0, "/Ac/ActiveIn/Source") == 240
    assert store.get("system", 0, "/Ac/Grid/L1/Power") is None


async def test_charger_only_charges_from_the_grid() -> None:
    store, _ = make(hour=23.0)
    await write(store, "vebus", 276, {"/Mode": 1})
    loads = get(store, "vebus", 276, "/Ac/Out/L1/P")
    assert get(store, "vebus", 276, "/Ac/ActiveIn/L1/P") == pytest.approx(loads + 3000.0)  # the charger's maximum
    assert get(store, "battery", 512, "/Dc/0/Power") == pytest.approx(3000.0 * EFFICIENCY - IDLE_W)
    assert store.get("vebus", 276, "/State") == 3  # bulk
    await write(store, "vebus", 276, {"/Ac/ActiveIn/CurrentLimit": 10.0})  # 10 A * 230 V = 2300 W in total
    assert get(store, "vebus", 276, "/Ac/ActiveIn/L1/P") == pytest.approx(2300.0)


async def test_external_control_uses_the_vebus_setpoint() -> None:
    store, sim = make(Hub4Mode=3)
    await write(store, "vebus", 276, {"/Hub4/L1/AcPowerSetpoint": -500})
    sim.step(1.0)
    assert get(store, "vebus", 276, "/Ac/ActiveIn/L1/P") == pytest.approx(-500.0)
    assert store.get("vebus", 276, "/Hub4/L1/AcPowerSetpoint") == -500


async def test_mppt_off_gives_zero_watts() -> None:
    store, sim = make()
    await write(store, "solarcharger", 279, {"/Mode": 4})
    assert store.get("solarcharger", 279, "/Yield/Power") == 0
    assert store.get("solarcharger", 279, "/State") == 0 and store.get("solarcharger", 279, "/Mode") == 4
    assert get(store, "solarcharger", 278, "/Yield/Power") > 0  # the other one is not affected
    sim.step(1.0)
    assert store.get("solarcharger", 279, "/Yield/Power") == 0


async def test_bad_writes_are_rejected_and_change_nothing() -> None:
    store, sim = make()
    before = {d.key: {p: v.value for p, v in d.values.items()} for d in store.devices()}
    for service, instance, changes in (
        ("vebus", 276, {"/Mode": 7}),
        ("vebus", 276, {"/Mode": 2.5}),
        ("vebus", 276, {"/Mode": "4"}),
        ("vebus", 276, {"/Mode": 4, "/State": 0}),  # one read-only path: nothing is applied
        ("vebus", 276, {"/Mode": 4, "/Ac/ActiveIn/CurrentLimit": 150}),
        ("vebus", 276, {"/Soc": 50}),
        ("solarcharger", 278, {"/Mode": 2}),
        ("battery", 512, {"/Relay/0/State": 2}),
        ("tank", 20, {"/Level": 10}),
        ("tank", 20, {"/CustomName": 5}),
    ):
        with pytest.raises(WriteRefused):
            await write(store, service, instance, changes)
    after = {d.key: {p: v.value for p, v in d.values.items()} for d in store.devices()}
    assert after == before
    assert sim.vebus is not None and sim.vebus.held["/Mode"] == 3


async def test_good_writes_are_published() -> None:
    store, _ = make()
    await write(store, "battery", 512, {"/Relay/0/State": 1, "/CustomName": "Lithium"})
    assert store.get("battery", 512, "/Relay/0/State") == 1 and store.get("battery", 512, "/CustomName") == "Lithium"
    await write(store, "vebus", 276, {"/Mode": 4.0})  # a number from JSON: stored as the enum's int
    assert store.get("vebus", 276, "/Mode") == 4 and isinstance(store.get("vebus", 276, "/Mode"), int)


def test_same_seed_same_installation() -> None:
    runs = []
    for _ in range(2):
        store, sim = make(seed=42)
        for _ in range(30):
            sim.step(1.0)
        runs.append({d.key: {p: v.value for p, v in d.values.items()} for d in store.devices()})
    assert runs[0] == runs[1]


def test_tanks_and_temperatures_move() -> None:
    store, sim = make()
    level = get(store, "tank", 20, "/Level")
    sim.step(60.0)  # one simulated hour in the day: water is used
    assert get(store, "tank", 20, "/Level") < level
    capacity, level = get(store, "tank", 20, "/Capacity"), get(store, "tank", 20, "/Level")
    assert get(store, "tank", 20, "/Remaining") == pytest.approx(capacity * level / 100)
    assert get(store, "temperature", 24, "/Temperature") == get(store, "battery", 512, "/Dc/0/Temperature")


async def test_run_steps_until_cancelled() -> None:
    store = Store()
    sim = VictronSimulation(store, time_scale=600.0, seed=1)
    sim.start()
    clock = sim.plant.clock_s
    task = asyncio.create_task(sim.run(tick_s=0.01))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sim.plant.clock_s > clock


def test_layout_from_the_config() -> None:
    store = Store()
    sim = VictronSimulation(store, layout=[("battery", 7, "Bank"), ("tank", 3, None), ("solarcharger", 290, None)])
    sim.start()
    assert {d.key for d in store.devices()} == {("battery", 7), ("tank", 3), ("solarcharger", 290)}
    assert store.get("tank", 3, "/CustomName") == "Simulated tank 3"
    assert store.get("battery", 7, "/Dc/0/Current") == pytest.approx(
        get(store, "solarcharger", 290, "/Dc/0/Current")
    )  # no inverter/charger: the MPPT is all there is on the DC bus
    with pytest.raises(ValueError, match="one battery"):
        VictronSimulation(Store(), layout=[("battery", 1, None), ("battery", 2, None)])
    with pytest.raises(ValueError, match="has no 'toaster' device"):
        VictronSimulation(Store(), layout=[("toaster", 1, None)])
