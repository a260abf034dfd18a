"""The settings service (``com.victronenergy.settings``, instance 0): persistent, atomic.

Values written over Modbus (or later the web and the bus) are stored in
``<state_dir>/settings.json``: debounced so a burst of writes costs one save, on disk within
``save_delay_s`` (1 s), written to a temporary file, fsynced and renamed, so a power cut
leaves the old or the new file, never half of one. A file that cannot be read is kept
aside as ``settings.json.bad`` (nothing is lost) and defaults are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from gateway.store import Device, Store, WriteRejected
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

    def __init__(self, store: Store, state_dir: Path | None, save_delay_s: float = 1.0) -> None:
        self.store = store
        self.path = state_dir / "settings.json" if state_dir is not None else None
        self.save_delay_s = save_delay_s
        self.values: dict[str, Scalar] = dict(DEFAULTS)
        self._save_task: asyncio.Task[None] | None = None
        self._dirty = False

    def start(self) -> Device:
        """Load saved settings and publish them. Raises OSError when state_dir is not writable."""
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            probe = self.path.with_suffix(".json.probe")
            probe.write_bytes(b"")  # fail now, in one line, rather than at the first write
            probe.unlink()
        self.values.update(self._load())
        self._follow()
        return self.store.add_device(SERVICE, INSTANCE, owner=self, values=self.values)

    async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
        bad = [p for p in changes if p in FOLLOWERS]
        if bad:
            raise WriteRejected(f"{', '.join(bad)} is derived and cannot be written")
        self.values.update(changes)
        self._follow()
        self.store.publish(SERVICE, INSTANCE, {**changes, **{f: self.values[f] for f in FOLLOWERS}})
        self._schedule_save()

    async def flush(self) -> None:
        """Save now if a save is pending (at shutdown)."""
        if self._save_task is not None and not self._save_task.done():
            self._save_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._save_task
            self.save()

    def _follow(self) -> None:
        for follower, leader in FOLLOWERS.items():
            self.values[follower] = self.values.get(leader)

    def _schedule_save(self) -> None:
        self._dirty = True
        if self.path is None or (self._save_task is not None and not self._save_task.done()):
            return

        async def later() -> None:
            while self._dirty:  # writes that arrive during a save get a save of their own
                await asyncio.sleep(self.save_delay_s)
                self._dirty = False
                try:  # fsync can take long on flash: keep it off the event loop (Modbus replies)
                    await asyncio.to_thread(self._write_file, self._snapshot())
                except OSError as e:  # the values stay live in memory; say so, without a traceback
                    log.error("cannot save settings to %s: %s", self.path, e)

        self._save_task = asyncio.create_task(later())

    def save(self) -> None:
        self._write_file(self._snapshot())

    def _snapshot(self) -> dict[str, Scalar]:
        """What differs from the defaults (taken on the event loop, written elsewhere)."""
        return {p: v for p, v in self.values.items() if p not in FOLLOWERS and DEFAULTS.get(p, object()) != v}

    def _write_file(self, changed: dict[str, Scalar]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A unique temporary file: a shutdown flush may overlap a save still in its thread.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".settings.", suffix=".tmp")
        try:
            with open(fd, "w", encoding="utf-8") as f:
                json.dump(changed, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        log.debug("settings saved to %s", self.path)

    def _load(self) -> dict[str, Scalar]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not all(
                isinstance(k, str) and (v is None or isinstance(v, (int, float, str))) for k, v in data.items()
            ):
                raise ValueError("not an object of path -> number/string")
        except (OSError, ValueError) as e:
            bad = self.path.with_suffix(".json.bad")
            os.replace(self.path, bad)
            log.warning("%s unreadable (%s); kept as %s, using defaults", self.path, e, bad)
            return {}
        return dict(data)
