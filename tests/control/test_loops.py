"""The ESS loop and the feed-in limiter stepped with an injected clock against a small site model
(a grid meter a step behind, a MultiPlus that ramps to its setpoint up to its charger's limit,
PV inverters that take a step to follow a new limit): settling and overshoot are bounded."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from gateway.control.ess import GRID, MAX_FEED_IN, MODE, OVERRIDE, SETPOINT, SOC, Ess
from gateway.control.feed_in import ACTIVE, FeedInLimiter
from gateway.control.feed_in import PREVENT as PREVENT_FEEDBACK
from gateway.control.rule import PathRef
from registers.values import Scalar

V = 276


def vebus(path: str) -> PathRef:
    return PathRef("vebus", V, path)


def pv(i: int, path: str) -> PathRef:
    return PathRef("pvinverter", i, path)


@dataclass
class Site:
    loads_w: float = 450.0
    pv_sizes: tuple[float, ...] = (8200.0, 8000.0)
    sun: float = 0.6  # the share of its size each inverter could make
    charger_max_w: float = 3000.0  # what the MultiPlus can take from AC (it does not publish it)
    ramp_w: float = 1000.0  # per step (1 s)
    ac_in: float = 0.0
    pv_w: list[float] = field(default_factory=list)
    meter_w: float = 0.0  # what the grid meter read last step
    settings: dict[PathRef, Scalar] = field(default_factory=dict)
    clock: int = 0  # seconds stepped so far
    active: Scalar = 0  # hub4 /PvPowerLimiterActive after the last step

    def __post_init__(self) -> None:
        self.limits = list(self.pv_sizes)
        self.pv_w = [s * self.sun for s in self.pv_sizes]
        self.setpoint = 0.0

    def grid_w(self) -> float:
        return self.loads_w + self.ac_in - sum(self.pv_w)

    def advance(self) -> None:
        self.meter_w = self.grid_w()  # the meter reads the flows of the step before
        wanted = min(self.setpoint, self.charger_max_w)
        self.ac_in += max(-self.ramp_w, min(self.ramp_w, wanted - self.ac_in))
        self.pv_w = [min(s * self.sun, limit) for s, limit in zip(self.pv_sizes, self.limits, strict=True)]

    def values(self) -> dict[PathRef, Scalar]:
        v: dict[PathRef, Scalar] = {MODE: 1, SETPOINT: 50, MAX_FEED_IN: -1, PREVENT_FEEDBACK: 0, SOC: 60.0}
        v |= self.settings
        v |= {GRID[0]: self.meter_w, GRID[1]: 0.0, GRID[2]: 0.0, OVERRIDE: None}
        v |= {vebus("/Ac/NumberOfPhases"): 1, vebus("/Ac/Out/NominalInverterPower"): 4000.0}
        v |= {vebus("/Ac/ActiveIn/L1/P"): self.ac_in, vebus("/Ac/Out/L1/P"): 0.0}
        v |= {vebus("/Hub4/L1/AcPowerSetpoint"): self.setpoint}
        v |= {PathRef("grid", 34, "/Ac/Power"): self.meter_w, PathRef("grid", 34, "/Connected"): 1}
        for i, size in enumerate(self.pv_sizes):
            v |= {pv(i, "/Ac/Power"): self.pv_w[i], pv(i, "/Ac/MaxPower"): size, pv(i, "/Connected"): 1}
            v |= {pv(i, "/Ac/PowerLimit"): self.limits[i]}
        return v


RULES: dict[int, tuple[Ess, FeedInLimiter]] = {}


def run(site: Site, seconds: int) -> list[float]:
    """Step the loops of this site (the same rules from one call to the next) for ``seconds``."""
    if id(site) not in RULES:
        ess = Ess()
        RULES[id(site)] = (ess, FeedInLimiter(ess=ess))
    ess, limiter = RULES[id(site)]
    ess.wire({"vebus": (V,), "battery": ()})
    limiter.wire({"grid": (34,), "pvinverter": tuple(range(len(site.pv_sizes)))})
    grid = []
    for _ in range(seconds):
        t = site.clock
        site.clock += 1
        values = site.values()
        out = ess.step(float(t), values)
        if vebus("/Hub4/L1/AcPowerSetpoint") in out:
            site.setpoint = float(out[vebus("/Hub4/L1/AcPowerSetpoint")])  # type: ignore[arg-type]
        for ref, limit in limiter.step(float(t), site.values()).items():
            site.limits[ref.instance] = float(limit)  # type: ignore[arg-type]
        site.advance()
        grid.append(site.grid_w())
    site.active = limiter.shown[ACTIVE]
    return grid


def test_zero_feed_in_holds_the_grid_at_the_setpoint_once_the_charger_is_full() -> None:
    site = Site(settings={SETPOINT: 500, PREVENT_FEEDBACK: 1})
    grid = run(site, 40)
    assert all(abs(w - 500) <= 100 for w in grid[15:]), grid
    assert site.ac_in == pytest.approx(3000, abs=60)  # the battery takes what it can first
    assert sum(site.limits) < sum(site.pv_sizes)  # and the PV is throttled for the rest


def test_without_a_limit_the_pv_is_left_alone_and_exports() -> None:
    site = Site(settings={SETPOINT: 500})
    grid = run(site, 20)
    assert grid[-1] < -5000 and site.limits == list(site.pv_sizes)


def test_a_feed_in_limit_is_held_without_overshoot_beyond_it_and_released() -> None:
    site = Site(charger_max_w=0.0, settings={SETPOINT: 50, MAX_FEED_IN: 1000})
    grid = run(site, 30)
    settled = next(t for t, w in enumerate(grid) if w > -1100)
    assert settled <= 12, grid  # incl. 3 s to find that the charger takes nothing
    assert min(grid[settled:]) > -1100, grid  # bounded: never back over the limit
    assert max(grid[settled:]) < 0, grid  # and never throttled into import
    site.settings[MAX_FEED_IN] = -1
    run(site, 3)
    assert site.limits == list(site.pv_sizes) and site.active == 0


def test_the_battery_absorbs_before_the_pv_is_limited() -> None:
    """A 1000 W limit with a charger that can take all the excess: no PV is curtailed."""
    site = Site(sun=0.25, charger_max_w=5000.0, settings={SETPOINT: 50, MAX_FEED_IN: 1000})
    grid = run(site, 30)
    assert site.limits == list(site.pv_sizes)
    assert abs(grid[-1] - 50) < 60


def test_a_grid_meter_lost_mid_regulation_holds_the_last_limits() -> None:
    site = Site(charger_max_w=0.0, settings={SETPOINT: 50, MAX_FEED_IN: 1000})
    run(site, 20)
    held = list(site.limits)
    limiter = FeedInLimiter(fallback_pct=10.0)
    limiter.wire({"grid": (34,), "pvinverter": (0, 1)})
    values = site.values() | {PathRef("grid", 34, "/Connected"): 0}
    out = limiter.step(0.0, values)
    assert [out[pv(i, "/Ac/PowerLimit")] for i in (0, 1)] == [820, 800]  # never 100 %: the fallback
    assert "offline" in limiter.status
    assert all(limit < size for limit, size in zip(held, site.pv_sizes, strict=True))


def test_a_feed_in_limit_with_no_pv_inverter_able_to_limit_says_so_and_writes_nothing() -> None:
    limiter = FeedInLimiter()
    limiter.wire({"grid": (34,), "pvinverter": (0,)})
    values = {MAX_FEED_IN: 0, pv(0, "/Ac/Power"): 3000.0, pv(0, "/Ac/MaxPower"): 3000.0, pv(0, "/Ac/PowerLimit"): None}
    assert limiter.step(0.0, values) == {} and limiter.status == "no PV inverter can be limited"
