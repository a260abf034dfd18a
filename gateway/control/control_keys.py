"""The ``[control]`` section: which rules run and their levels (schema, checked at load).

Levels that contradict (a generator's SOC start value not below its stop value, a tank pump
that would start above where it stops) are refused here with the reason, before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from gateway.core.keys import ConfigError, Key, at_least, boolean, check_table, choice, integer

FUNCTIONS: Final = ("manual", "genset", "tank-pump", "temperature", "alarm")


def _percent(where: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 100:
        raise ConfigError(f"{where}: expected a percentage 0..100, got {v!r}")
    return float(v)


def _celsius(where: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not -50 <= v <= 150:
        raise ConfigError(f"{where}: expected degrees Celsius -50..150, got {v!r}")
    return float(v)


KEYS: Final = (
    Key("ess", True, boolean, "run the ESS loop (Hub4Mode 1/2: the grid meter follows AcPowerSetPoint, 2700)"),
    Key("feed_in_limiter", True, boolean, "limit PV inverters so export stays within MaxFeedInPower (2706/2708)"),
    Key(
        "zero_feed_in",
        False,
        boolean,
        "AC-coupled PV may not be fed in: PreventFeedback (2708) is 1 until written (the site's default)",
    ),
    Key("limiter_fallback_pct", 0.0, _percent, "PV limit (% of size) when the grid meter is lost before any limit"),
    Key("relay0", "manual", choice(*FUNCTIONS), f"relay 0's function: {', '.join(FUNCTIONS)}"),
    Key("relay1", "manual", choice(*FUNCTIONS), "relay 1's function (same choices)"),
    Key("generator_soc_start", 20.0, _percent, "autostart: start at or below this SOC (%)"),
    Key("generator_soc_stop", 80.0, _percent, "autostart: stop at or above this SOC (%)"),
    Key("generator_start_delay_s", 0.0, at_least(0.0), "the start condition must hold this long"),
    Key("generator_stop_delay_s", 0.0, at_least(0.0), "the stop condition must hold this long"),
    Key("generator_min_run_s", 0.0, at_least(0.0), "an autostarted generator runs at least this long"),
    Key("generator_service_interval_h", 0.0, at_least(0.0), "run hours between services (/ServiceCounter); 0 = off"),
    Key("tank_pump_tank", 20, integer(0, 65535), "the tank instance a tank-pump relay follows"),
    Key("tank_pump_start_level", 30.0, _percent, "tank pump: on at or below this level (%)"),
    Key("tank_pump_stop_level", 80.0, _percent, "tank pump: off at or above this level (%)"),
    Key("temperature_sensor", 24, integer(0, 65535), "the temperature instance a temperature relay follows"),
    Key("temperature_on_above", 40.0, _celsius, "temperature relay: on at or above (°C)"),
    Key("temperature_off_below", 35.0, _celsius, "temperature relay: off at or below (°C)"),
)


@dataclass(frozen=True, slots=True)
class ControlConfig:
    ess: bool = KEYS[0].default
    feed_in_limiter: bool = KEYS[1].default
    zero_feed_in: bool = KEYS[2].default
    limiter_fallback_pct: float = KEYS[3].default
    relay0: str = KEYS[4].default
    relay1: str = KEYS[5].default
    generator_soc_start: float = KEYS[6].default
    generator_soc_stop: float = KEYS[7].default
    generator_start_delay_s: float = KEYS[8].default
    generator_stop_delay_s: float = KEYS[9].default
    generator_min_run_s: float = KEYS[10].default
    generator_service_interval_h: float = KEYS[11].default
    tank_pump_tank: int = KEYS[12].default
    tank_pump_start_level: float = KEYS[13].default
    tank_pump_stop_level: float = KEYS[14].default
    temperature_sensor: int = KEYS[15].default
    temperature_on_above: float = KEYS[16].default
    temperature_off_below: float = KEYS[17].default

    def settings_defaults(self) -> dict[str, int]:
        """Settings this section gives a default of its own (the settings service applies them)."""
        return {"/Settings/CGwacs/PreventFeedback": 1} if self.zero_feed_in else {}

    def relays(self, function: str) -> list[int]:
        return [i for i, f in enumerate((self.relay0, self.relay1)) if f == function]


def parse_control(table: Mapping[str, Any]) -> ControlConfig:
    c = ControlConfig(**check_table("control", dict(table), KEYS))
    if c.relay1 == "genset":
        raise ConfigError('control.relay1: the generator drives relay 0 (set relay0 = "genset")')
    for function in ("tank-pump", "temperature", "alarm"):
        if len(c.relays(function)) > 1:
            raise ConfigError(f"control.relay1: relay 0 already has the function {function!r}")
    if c.relay0 == "genset" and not c.generator_soc_start < c.generator_soc_stop:
        raise ConfigError(
            f"control.generator_soc_start: {c.generator_soc_start:g} % must be below generator_soc_stop"
            f" {c.generator_soc_stop:g} % (the generator would stop before it started)"
        )
    if c.relays("tank-pump") and not c.tank_pump_start_level < c.tank_pump_stop_level:
        raise ConfigError(
            f"control.tank_pump_start_level: {c.tank_pump_start_level:g} % must be below tank_pump_stop_level"
            f" {c.tank_pump_stop_level:g} %"
        )
    if c.relays("temperature") and not c.temperature_off_below < c.temperature_on_above:
        raise ConfigError(
            f"control.temperature_off_below: {c.temperature_off_below:g} must be below temperature_on_above"
            f" {c.temperature_on_above:g}"
        )
    return c
