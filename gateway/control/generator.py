"""Generator start/stop (``com.victronenergy.generator``, startstop0) driving relay 0 ("genset").

Runs the generator on a manual start (/ManualStart 3500) or, with /AutoStartEnabled (3509), on
the battery's SOC: it starts once the SOC has stayed at or below ``soc_start`` for
``start_delay_s`` and stops once it has stayed at or above ``soc_stop`` for ``stop_delay_s``,
but not before ``min_run_s`` of running (a manual stop is at once, as on a GX). No SOC
reading starts nothing and stops nothing. /State (0 stopped, 1 running),
/RunningByConditionCode (0 stopped, 1 manual, 4 SOC), /Runtime of this run and
/ServiceCounter (seconds to the next service) are shown on the generator device. Contradicting
conditions (start value not below stop value) are refused when the config is loaded.
"""

from __future__ import annotations

from typing import ClassVar, Final

from gateway.control.rule import PathRef, Rule, Values
from registers.values import Scalar, as_number

MANUAL = PathRef("generator", 0, "/ManualStart")
AUTO = PathRef("generator", 0, "/AutoStartEnabled")
SOC = PathRef("system", 0, "/Dc/Battery/Soc")
RELAY = PathRef("system", 0, "/Relay/0/State")
STOPPED, BY_MANUAL, BY_SOC = 0, 1, 4
RUNNING: Final = 1


def generator_values() -> dict[str, Scalar]:
    """The generator device as it starts: stopped, autostart off."""
    zero = ("/ManualStart", "/RunningByConditionCode", "/Runtime", "/QuietHours", "/State", "/Error")
    return {**dict.fromkeys(zero, 0), "/AutoStartEnabled": 0, "/Alarms/NoGeneratorAtAcIn": 0, "/ServiceCounter": 0}


class Generator(Rule):
    name: ClassVar[str] = "generator"
    period_s: ClassVar[float] = 1.0

    def __init__(
        self,
        soc_start: float = 20.0,
        soc_stop: float = 80.0,
        start_delay_s: float = 0.0,
        stop_delay_s: float = 0.0,
        min_run_s: float = 0.0,
        service_interval_s: float = 0.0,
    ) -> None:
        if not 0 <= soc_start < soc_stop <= 100:
            raise ValueError(f"generator: soc_start {soc_start:g} must be below soc_stop {soc_stop:g} (0..100 %)")
        super().__init__(inputs=(MANUAL, AUTO, SOC, RELAY), outputs=(RELAY,))
        self.soc_start, self.soc_stop = soc_start, soc_stop
        self.start_delay_s, self.stop_delay_s, self.min_run_s = start_delay_s, stop_delay_s, min_run_s
        self.service_interval_s = service_interval_s
        self.reason = STOPPED
        self.started_at: float | None = None
        self.low_since: float | None = None
        self.high_since: float | None = None
        self.total_s = 0.0  # run time since the service counter was reset
        self.last: float | None = None

    def step(self, now: float, values: Values) -> Values:
        if self.started_at is not None and self.last is not None:
            self.total_s += max(0.0, now - self.last)
        self.last = now
        soc = as_number(values.get(SOC))
        self.low_since = (self.low_since if self.low_since is not None else now) if _le(soc, self.soc_start) else None
        self.high_since = (self.high_since if self.high_since is not None else now) if _ge(soc, self.soc_stop) else None
        manual = values.get(MANUAL) == 1
        auto = values.get(AUTO) == 1
        if manual:
            self._run(now, BY_MANUAL)
        elif auto and (self.reason == BY_SOC or self._due(now, self.low_since, self.start_delay_s)):
            ran = now - self.started_at if self.started_at is not None else 0.0
            if self.reason == BY_SOC and self._due(now, self.high_since, self.stop_delay_s) and ran >= self.min_run_s:
                self._stop()
            else:
                self._run(now, BY_SOC)
        else:
            self._stop()
        running = self.started_at is not None
        runtime = round(now - self.started_at) if self.started_at is not None else 0
        service = max(0, round(self.service_interval_s - self.total_s)) if self.service_interval_s else 0
        self.shown = {
            PathRef("generator", 0, "/State"): RUNNING if running else 0,
            PathRef("generator", 0, "/RunningByConditionCode"): self.reason,
            PathRef("generator", 0, "/Runtime"): runtime,
            PathRef("generator", 0, "/ServiceCounter"): service,
        }
        self.status = {STOPPED: "stopped", BY_MANUAL: "running: manual start", BY_SOC: "running: SOC"}[self.reason]
        return {RELAY: 1 if running else 0}

    def reset_service(self) -> None:
        self.total_s = 0.0

    def _due(self, now: float, since: float | None, delay: float) -> bool:
        return since is not None and now - since >= delay

    def _run(self, now: float, reason: int) -> None:
        if self.started_at is None:
            self.started_at = now
        self.reason = reason

    def _stop(self) -> None:
        self.started_at, self.reason = None, STOPPED


def _le(v: float | None, level: float) -> bool:
    return v is not None and v <= level


def _ge(v: float | None, level: float) -> bool:
    return v is not None and v >= level
