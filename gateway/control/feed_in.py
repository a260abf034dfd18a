"""Feed-in limiting with AC-coupled PV inverters: grid export stays within MaxFeedInPower (2706),
or 0 with PreventFeedback (2708), by lowering the inverters' /Ac/PowerLimit in proportion to
their size; the limits rise again, step by step, when consumption or the limit rises.

With the ESS loop regulating (``ess``, Hub4Mode 1/2 with an inverter/charger), the battery
takes what it can first: only the export the inverter/charger cannot absorb (``Ess.absorb_w``)
is curtailed. And with PreventFeedback (AC-coupled PV may not be fed in) the limiter holds the
grid at the ESS grid setpoint itself, not just at 0: when the battery is full or charging at
its limit, PV is throttled so the grid meter still reads the setpoint (2700 = 500 means 500 W
of import). The limit is on the site's total (the sum of the phases), as a grid operator's is.

Each step the PV total wanted is the PV *measured* now less the excess export (and a margin),
or plus half the room left when export is below the limit: measured rather than commanded,
so an inverter producing below its limit (clouds) does not wind the loop up. Only inverters
that publish /Ac/PowerLimit and /Ac/MaxPower can be limited; the others are left alone.
While it limits it writes every ``refresh_s``, since the drivers and the inverters revert a
limit nobody refreshes (and the setpoint watchdog would too). hub4 /PvPowerLimiterActive
shows it.

Fail safe: with the grid meter offline the export is unknown, so every inverter is held at the
limit it had (or ``fallback_pct`` of its size when it had none), never released to 100 %.
An inverter that stays well above its limit is reported (logged and in the status).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import ClassVar, Final

from gateway.control.ess import Ess
from gateway.control.rule import PathRef, Rule, Values
from registers.values import Scalar, as_number

log = logging.getLogger(__name__)

MARGIN_W: Final = 50.0  # aim this far inside the limit
DEADBAND_W: Final = 20.0  # a smaller change of the PV total is not written
RAISE_GAIN: Final = 0.5  # the share of the room taken per step on the way up
CUT_GAIN: Final = 0.8  # the share of the excess cut per step: the meter and the PV read a poll behind
# After a change, the PV readings and then the grid meter (each a poll behind) show it this much
# later: no further change before, or the loop would cut again on a reading that predates the cut.
HOLD_S: Final = 1.5
IGNORED_AFTER_S: Final = 30.0  # above its limit this long: the inverter ignores it
MAX_FEED_IN = PathRef("settings", 0, "/Settings/CGwacs/MaxFeedInPower")
PREVENT = PathRef("settings", 0, "/Settings/CGwacs/PreventFeedback")
ACTIVE = PathRef("hub4", 0, "/PvPowerLimiterActive")
PV_PATHS: Final = ("/Ac/Power", "/Ac/MaxPower", "/Ac/PowerLimit", "/Connected")


def _n(values: Values, ref: PathRef) -> float | None:
    return as_number(values.get(ref))


class FeedInLimiter(Rule):
    name: ClassVar[str] = "feed-in"
    period_s: ClassVar[float] = 1.0
    refresh_s: ClassVar[float | None] = 10.0
    routine: ClassVar[bool] = True
    services: ClassVar[tuple[str, ...]] = ("grid", "pvinverter")

    def __init__(self, fallback_pct: float = 0.0, ess: Ess | None = None) -> None:
        super().__init__(inputs=(MAX_FEED_IN, PREVENT), outputs=())
        self.fallback_pct = fallback_pct
        self.ess = ess  # stepped before this rule (the control room orders them so)
        self.grid: int | None = None
        self.pv: tuple[int, ...] = ()
        self.active = False
        self.held: dict[int, float] = {}  # the last limits it set, per inverter
        self.over_since: dict[int, float] = {}
        self.ignoring: set[int] = set()
        self.changed_at = -1e18  # when it last changed a limit
        self.shown = {ACTIVE: 0}

    def wire(self, instances: Mapping[str, tuple[int, ...]]) -> None:
        grids = instances.get("grid", ())
        self.grid = grids[0] if grids else None
        self.pv = instances.get("pvinverter", ())
        grid = (
            (PathRef("grid", self.grid, "/Ac/Power"), PathRef("grid", self.grid, "/Connected"))
            if self.grid is not None
            else ()
        )
        pv = tuple(PathRef("pvinverter", i, p) for i in self.pv for p in PV_PATHS)
        self.inputs = (MAX_FEED_IN, PREVENT, *grid, *pv)
        self.outputs = tuple(PathRef("pvinverter", i, "/Ac/PowerLimit") for i in self.pv)

    def allowed_w(self, values: Values) -> float | None:
        if _n(values, PREVENT) == 1:
            return 0.0
        limit = _n(values, MAX_FEED_IN)
        return limit if limit is not None and limit >= 0 else None

    def floor_w(self, values: Values) -> tuple[float, float, float] | None:
        """(the lowest grid power allowed, the margin to aim inside it, what the battery can still
        absorb), or None with no limit. Zero feed-in under ESS holds the ESS grid target."""
        allowed = self.allowed_w(values)
        if allowed is None:
            return None
        ess = self.ess
        absorb = ess.absorb_w if ess is not None else None
        if absorb is None or ess is None:
            return -allowed, MARGIN_W, 0.0
        if _n(values, PREVENT) == 1 and ess.target_w is not None:
            return ess.target_w, 0.0, absorb  # the setpoint, not a legal limit: aim at it
        return -allowed, MARGIN_W, absorb

    def step(self, now: float, values: Values) -> Values:
        sizes: dict[int, float] = {}
        for i in self.pv:
            size = _n(values, PathRef("pvinverter", i, "/Ac/MaxPower"))
            limit = values.get(PathRef("pvinverter", i, "/Ac/PowerLimit"))
            if size and size > 0 and limit is not None and _n(values, PathRef("pvinverter", i, "/Connected")) != 0:
                sizes[i] = size
        floor = self.floor_w(values)
        if floor is None or not sizes:
            self.status = "no feed-in limit" if floor is None else "no PV inverter can be limited"
            return self._release(sizes)
        grid_w = None
        if self.grid is not None and _n(values, PathRef("grid", self.grid, "/Connected")) != 0:
            grid_w = _n(values, PathRef("grid", self.grid, "/Ac/Power"))
        if grid_w is None:
            self.status = "grid meter offline: PV held at the last safe limit"
            self._set_active(True)
            return {self._ref(i): round(self.held.get(i, size * self.fallback_pct / 100)) for i, size in sizes.items()}
        lowest, margin, absorb = floor
        if self.active and now - self.changed_at < HOLD_S:
            return {self._ref(i): values.get(self._ref(i)) for i in sizes}
        power = {i: max(0.0, _n(values, PathRef("pvinverter", i, "/Ac/Power")) or 0.0) for i in sizes}
        excess = lowest - grid_w - absorb  # W of PV the grid and the battery cannot take
        # What the PV will make: a limit just written is not in its reading yet (a poll behind), so
        # the lower of the two; cutting again from the stale reading would overshoot.
        total = sum(min(power[i], self.held.get(i, sizes[i])) for i in sizes)
        capacity = sum(sizes.values())
        within = f"grid {grid_w:.0f} W, not below {lowest:g} W"
        if excess > -margin:
            wanted = total - CUT_GAIN * (excess + margin)
        elif not self.active:
            self.status = within
            return {}
        else:
            wanted = total + RAISE_GAIN * (-excess - margin)
        if wanted >= capacity:
            self.status = within
            return self._release(sizes)
        wanted = max(0.0, wanted)
        out: dict[PathRef, Scalar] = {}
        limits = {i: min(size, wanted * size / capacity) for i, size in sizes.items()}
        currents = {i: _n(values, self._ref(i)) for i in sizes}
        # Not worth a write when the PV total moves less than DEADBAND_W (summed over the inverters:
        # 50 inverters each a few watts off are still a real excess).
        small = all(c is not None for c in currents.values()) and (
            sum(abs((currents[i] or 0.0) - limits[i]) for i in sizes) < DEADBAND_W
        )
        for i in sizes:
            limit, current = limits[i], currents[i]
            keep = small and current is not None
            self.held[i] = current if keep and current is not None else limit
            out[self._ref(i)] = values.get(self._ref(i)) if keep else round(limit)
            if not keep:
                self.changed_at = now
            self._watch(now, i, power[i], self.held[i])
        self._set_active(True)
        if self.ess is not None:
            self.ess.pv_spare_w = max(0.0, capacity - sum(self.held.values()))
        self.status = f"limiting: {within}, PV {total:.0f} W"
        if self.ignoring:
            self.status += f"; ignoring its limit: pvinverter {', '.join(map(str, sorted(self.ignoring)))}"
        return out

    def _ref(self, instance: int) -> PathRef:
        return PathRef("pvinverter", instance, "/Ac/PowerLimit")

    def _set_active(self, active: bool) -> None:
        self.active = active
        self.shown = {ACTIVE: 1 if active else 0}

    def _release(self, sizes: Mapping[int, float]) -> Values:
        """Back to full power once (the watchdog and drivers then forget the limits)."""
        was = self.active
        self._set_active(False)
        if self.ess is not None:
            self.ess.pv_spare_w = 0.0
        self.held.clear()
        self.over_since.clear()
        self.ignoring.clear()
        return {self._ref(i): round(size) for i, size in sizes.items()} if was else {}

    def _watch(self, now: float, i: int, power: float, limit: float) -> None:
        if power <= limit * 1.1 + 100:
            self.over_since.pop(i, None)
            self.ignoring.discard(i)
            return
        since = self.over_since.setdefault(i, now)
        if now - since >= IGNORED_AFTER_S and i not in self.ignoring:
            self.ignoring.add(i)
            log.error("pvinverter %d ignores its power limit: %.0f W against %.0f W", i, power, limit)
