"""The settings service (``com.victronenergy.settings``, instance 0): persistent, atomic.

Values written over Modbus (or later the web and the bus) are kept in
``<state_dir>/settings.json`` through ``gateway.core.persist``: a burst of writes costs one save,
on disk within ``save_delay_s``; saves are atomic, run off the event loop, and are skipped when
nothing changed. Only what differs from ``DEFAULTS`` is saved, so a new default reaches every
user who never changed that setting. A bad file is kept aside and the backup or the defaults
are used (see ``persist.JsonFile.load``); paths in the file that are not settings are ignored.
A value outside its setting's range or enum (``specs``, from the compiled map) makes the
file bad too: a minimum SOC of -50 % is never loaded, the backup or the default is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from gateway.core.persist import JsonFile, LoadReport
from gateway.core.store import Device, Store, WriteRejected
from registers.model import PathSpec
from registers.values import Scalar

log = logging.getLogger(__name__)

SERVICE: Final = "settings"
INSTANCE: Final = 0

# Defaults as on a GX device with ESS set up for self-consumption; -1 means "no limit".
DEFAULTS: Final[Mapping[str, Scalar]] = {
    "/Settings/CGwacs/AcPowerSetPoint": 50,
    "/Settings/CGwacs/MaxChargePercentage": 100,
    "/Settings/CGwacs/MaxDischargePercentage": 100,
    "/Settings/CGwacs/MaxDischargePower": -1,
    "/Settings/SystemSetup/MaxChargeCurrent": -1,
    "/Settings/CGwacs/MaxFeedInPower": -1,
    "/Settings/CGwacs/OvervoltageFeedIn": 1,
    "/Settings/CGwacs/PreventFeedback": 0,
    "/Settings/SystemSetup/MaxChargeVoltage": 0,
    "/Settings/SystemSetup/AcInput1": 1,  # grid
    "/Settings/SystemSetup/AcInput2": 0,  # not used
    "/Settings/CGwacs/AcExportLimit": -1,
    "/Settings/CGwacs/AcInputLimit": -1,
    "/Settings/CGwacs/AlwaysPeakShave": 0,
    "/Settings/CGwacs/RunWithoutGridMeter": 1,
    "/Settings/CGwacs/BatteryLife/State": 2,  # self-consumption
    "/Settings/CGwacs/BatteryLife/MinimumSocLimit": 20,
    "/Settings/CGwacs/BatteryLife/SocLimit": 20,
    "/Settings/CGwacs/Hub4Mode": 1,  # ESS with phase compensation
    "/Settings/DynamicEss/Mode": 0,  # off
    "/Settings/SystemSetup/SystemName": "",
}
# Read-only paths the service keeps in step with the settings they follow.
FOLLOWERS: Final[Mapping[str, str]] = {
    "/Settings/CGwacs/BatteryLife/SocLimit": "/Settings/CGwacs/BatteryLife/MinimumSocLimit",
}


class Settings:
    """Owner of the settings device: applies writes, publishes them, saves them."""

    def __init__(
        self,
        store: Store,
        state_dir: Path | None,
        save_delay_s: float = 1.0,
        specs: Mapping[str, PathSpec] | None = None,
        defaults: Mapping[str, Scalar] | None = None,
    ) -> None:
        """``defaults``: the installation's own defaults for some settings (the config's), over ``DEFAULTS``."""
        self.store = store
        self.path = state_dir / "settings.json" if state_dir is not None else None
        self.save_delay_s = save_delay_s
        self.defaults: dict[str, Scalar] = {**DEFAULTS, **{p: v for p, v in (defaults or {}).items() if p in DEFAULTS}}
        self.values: dict[str, Scalar] = dict(self.defaults)
        self.specs = specs or {}
        parse = self._parse_checked
        self.file = JsonFile(self.path, parse, delay_s=save_delay_s) if self.path is not None else None

    def _parse_checked(self, data: object) -> dict[str, Scalar]:
        """The file's settings; ValueError (the file is corrupt) when one is out of its range."""
        values = parse_settings(data)
        for path, value in values.items():
            spec = self.specs.get(path)
            why = spec.refuse(value) if spec is not None and path in DEFAULTS and path not in FOLLOWERS else None
            if why is not None:
                raise ValueError(f"out of range: {why}")
        return values

    @property
    def load_report(self) -> LoadReport | None:
        """What loading found (None without a state_dir or before ``start``)."""
        return self.file.load_report if self.file is not None else None

    def start(self) -> Device:
        """Load saved settings and publish them. Raises OSError when state_dir is not writable."""
        if self.file is not None:
            self.file.check_writable()
            saved = self.file.load() or {}
            unknown = sorted(p for p in saved if p not in DEFAULTS or p in FOLLOWERS)
            if unknown:
                log.warning("%s: ignoring what is not a writable setting: %s", self.path, ", ".join(unknown))
            self.values.update((p, v) for p, v in saved.items() if p in DEFAULTS and p not in FOLLOWERS)
        self._follow()
        return self.store.add_device(SERVICE, INSTANCE, owner=self, values=self.values)

    async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
        bad = [p for p in changes if p in FOLLOWERS]
        if bad:
            raise WriteRejected(f"{', '.join(bad)} is derived and cannot be written")
        self.values.update(changes)
        self._follow()
        self.store.publish(SERVICE, INSTANCE, {**changes, **{f: self.values[f] for f in FOLLOWERS}})
        if self.file is not None:
            self.file.request_save(self._snapshot())  # a no-op when the saved content is unchanged

    async def flush(self) -> None:
        """Save now if a save is pending (at shutdown); waits for a save already under way."""
        if self.file is not None:
            await self.file.flush()

    def _follow(self) -> None:
        for follower, leader in FOLLOWERS.items():
            self.values[follower] = self.values.get(leader)

    def _snapshot(self) -> dict[str, Scalar]:
        """The settings that differ from their defaults (followers are derived, never saved)."""
        return {p: v for p, v in self.values.items() if p in DEFAULTS and p not in FOLLOWERS and self.defaults[p] != v}


def parse_settings(data: object) -> dict[str, Scalar]:
    """The file's shape: an object of path -> number, string or null. Anything else is corrupt."""
    if not isinstance(data, dict):
        raise ValueError(f"expected an object of path -> value, not {type(data).__name__}")
    for path, value in data.items():
        if isinstance(value, bool) or not (value is None or isinstance(value, (int, float, str))):
            raise ValueError(f"{path}: {type(value).__name__} is not a number or string")
    return dict(data)
