"""The generator, the relay functions, the ESS loop's limits and the [control] section's refusals,
each rule's step called with the values and times of a scenario (an injected clock)."""

from __future__ import annotations

import logging

import pytest

from gateway.control.control_keys import parse_control
from gateway.control.ess import GRID, MAX_DISCHARGE, MIN_SOC, MODE, OVERRIDE, SETPOINT, SOC, Ess
from gateway.control.feed_in import MAX_FEED_IN, FeedInLimiter
from gateway.control.generator import AUTO, MANUAL, RELAY, Generator
from gateway.control.generator import SOC as GEN_SOC
from gateway.control.relay_functions import TankPump, TemperatureRelay
from gateway.control.rule import PathRef
from gateway.core.keys import ConfigError
from registers.values import Scalar

V = 276
RELAY1 = PathRef("system", 0, "/Relay/1/State")


def vebus(path: str) -> PathRef:
    return PathRef("vebus", V, path)


def shown(rule: Generator, path: str) -> Scalar:
    return rule.shown[PathRef("generator", 0, path)]


def test_a_manual_start_runs_at_once_and_a_manual_stop_stops_at_once() -> None:
    g = Generator(min_run_s=600)
    assert g.step(0.0, {MANUAL: 0, AUTO: 0, GEN_SOC: 50.0}) == {RELAY: 0}
    assert g.step(1.0, {MANUAL: 1, AUTO: 0, GEN_SOC: 50.0}) == {RELAY: 1}
    assert shown(g, "/State") == 1 and shown(g, "/RunningByConditionCode") == 1
    g.step(61.0, {MANUAL: 1, AUTO: 0, GEN_SOC: 50.0})
    assert shown(g, "/Runtime") == 60
    assert g.step(62.0, {MANUAL: 0, AUTO: 0, GEN_SOC: 50.0}) == {RELAY: 0}  # min run time is for autostart
    assert shown(g, "/State") == 0 and shown(g, "/Runtime") == 0


def test_soc_autostart_with_delays_and_a_minimum_run_time() -> None:
    g = Generator(soc_start=20, soc_stop=80, start_delay_s=30, stop_delay_s=10, min_run_s=100)
    auto = {MANUAL: 0, AUTO: 1}
    assert g.step(0.0, {**auto, GEN_SOC: 19.0}) == {RELAY: 0}  # low, but not for 30 s yet
    assert g.step(29.0, {**auto, GEN_SOC: 19.0}) == {RELAY: 0}
    assert g.step(30.0, {**auto, GEN_SOC: 19.0}) == {RELAY: 1}
    assert shown(g, "/RunningByConditionCode") == 4  # SOC
    assert g.step(40.0, {**auto, GEN_SOC: 85.0}) == {RELAY: 1}  # high, not for 10 s yet
    assert g.step(60.0, {**auto, GEN_SOC: 85.0}) == {RELAY: 1}  # 30 s run: the minimum is 100 s
    assert g.step(130.0, {**auto, GEN_SOC: 85.0}) == {RELAY: 0}
    assert g.step(131.0, {**auto, GEN_SOC: None}) == {RELAY: 0}  # no reading starts nothing


def test_contradicting_generator_levels_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="soc_start 80 must be below soc_stop 20"):
        Generator(soc_start=80, soc_stop=20)
    with pytest.raises(ConfigError, match="generator_soc_start: 60 % must be below generator_soc_stop 50 %"):
        parse_control({"relay0": "genset", "generator_soc_start": 60, "generator_soc_stop": 50})
    with pytest.raises(ConfigError, match="the generator drives relay 0"):
        parse_control({"relay1": "genset"})
    with pytest.raises(ConfigError, match="tank_pump_start_level: 90 % must be below"):
        parse_control({"relay1": "tank-pump", "tank_pump_start_level": 90, "tank_pump_stop_level": 80})


def test_a_tank_pump_holds_between_its_levels_and_a_missing_tank_changes_nothing() -> None:
    pump = TankPump(1, 20, start_level=30, stop_level=80)
    level = PathRef("tank", 20, "/Level")
    assert pump.step(0.0, {level: 30.0}) == {RELAY1: 1}
    assert pump.step(1.0, {level: 55.0}) == {}  # between: as it is
    assert pump.step(2.0, {level: 80.0}) == {RELAY1: 0}
    assert pump.step(3.0, {level: None}) == {} and "no reading from tank 20" in pump.status


def test_a_temperature_relay_closes_hot_and_opens_cool() -> None:
    fan = TemperatureRelay(0, 24, on_above=40, off_below=35)
    t = PathRef("temperature", 24, "/Temperature")
    relay0 = PathRef("system", 0, "/Relay/0/State")
    assert fan.step(0.0, {t: 41.0}) == {relay0: 1}
    assert fan.step(1.0, {t: 37.0}) == {}
    assert fan.step(2.0, {t: 35.0}) == {relay0: 0}


def ess_values(**over: Scalar) -> dict[PathRef, Scalar]:
    v: dict[PathRef, Scalar] = {MODE: 1, SETPOINT: 0, MIN_SOC: 20, SOC: 60.0, OVERRIDE: None, MAX_DISCHARGE: -1}
    v |= {GRID[0]: 2000.0, GRID[1]: 0.0, GRID[2]: 0.0}
    v |= {vebus("/Ac/NumberOfPhases"): 1, vebus("/Ac/Out/NominalInverterPower"): 4000.0}
    v |= {vebus("/Ac/ActiveIn/L1/P"): 0.0, vebus("/Ac/Out/L1/P"): 500.0, vebus("/Hub4/L1/AcPowerSetpoint"): 0}
    for key, value in over.items():
        v[{"mode": MODE, "soc": SOC, "override": OVERRIDE, "max_discharge": MAX_DISCHARGE}[key]] = value
    return v


def ess() -> Ess:
    rule = Ess()
    rule.wire({"vebus": (V,), "battery": ()})
    return rule


SP = vebus("/Hub4/L1/AcPowerSetpoint")


def test_ess_discharges_towards_the_setpoint_within_the_limits() -> None:
    assert ess().step(0.0, ess_values())[SP] == -1200  # 0.6 of the 2000 W error
    assert ess().step(0.0, ess_values(max_discharge=300))[SP] == 500 - 300  # AC out less 300 W
    assert ess().step(0.0, ess_values(soc=20.0))[SP] == 500  # at min SOC: no discharge at all
    assert ess().step(0.0, ess_values(override=2000))[SP] == 0  # the override is the target now


def test_ess_stands_back_in_external_control_and_without_a_grid_reading() -> None:
    rule = ess()
    assert rule.step(0.0, ess_values(mode=3)) == {} and rule.status == "external control (Hub4Mode 3)"
    values = ess_values() | {GRID[0]: None, GRID[1]: None, GRID[2]: None}
    assert rule.step(1.0, values) == {} and "no grid reading" in rule.status


def test_an_inverter_that_ignores_its_limit_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    limiter = FeedInLimiter()
    limiter.wire({"grid": (34,), "pvinverter": (0,)})
    pv = {p: PathRef("pvinverter", 0, p) for p in ("/Ac/Power", "/Ac/MaxPower", "/Ac/PowerLimit", "/Connected")}
    grid = {PathRef("grid", 34, "/Ac/Power"): -5000.0, PathRef("grid", 34, "/Connected"): 1}
    base = {MAX_FEED_IN: 0, pv["/Ac/MaxPower"]: 8000.0, pv["/Connected"]: 1, pv["/Ac/Power"]: 5500.0}
    limit: Scalar = 8000.0
    with caplog.at_level(logging.ERROR):
        for t in range(40):
            out = limiter.step(float(t), {**base, **grid, pv["/Ac/PowerLimit"]: limit})
            limit = out.get(pv["/Ac/PowerLimit"], limit)
    assert "ignoring its limit: pvinverter 0" in limiter.status
    assert "pvinverter 0 ignores its power limit" in caplog.text


def test_the_alarm_relay_follows_every_device_s_alarms_not_warnings() -> None:
    from gateway.control.relay_functions import AlarmRelay
    from gateway.control.room import alarm_paths
    from gateway.core.store import Store
    from gateway.core.writes import WriteGate
    from registers import load_default

    paths = alarm_paths(WriteGate(Store(), load_default(defer_n2k=True)))
    assert "/Alarms/LowBattery" in paths["vebus"] and paths["digitalinput"] == ("/Alarm",)
    relay = AlarmRelay(0, paths)
    relay.wire({"vebus": (276,), "digitalinput": (30,)})
    relay0 = PathRef("system", 0, "/Relay/0/State")
    low = PathRef("vebus", 276, "/Alarms/LowBattery")
    bilge = PathRef("digitalinput", 30, "/Alarm")
    assert relay.step(0.0, {low: 0, bilge: 0}) == {relay0: 0} and relay.status == "no alarm"
    assert relay.step(1.0, {low: 1, bilge: 0}) == {relay0: 0}  # a warning is not an alarm
    assert relay.step(2.0, {low: 1, bilge: 2}) == {relay0: 1}
    assert relay.status == "alarm: digitalinput/30:/Alarm"
    assert relay.step(3.0, {low: 0, bilge: None}) == {relay0: 0}
