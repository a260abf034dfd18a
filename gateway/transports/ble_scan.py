"""Bluetooth LE advertisements, for every BLE driver: one scanner per source, shared.

A source is ``replay:FILE`` (recorded advertisements replayed at their own pace, once),
``replay-loop:FILE`` (the same, started again at the end: a demo that runs for hours) or
``bluez`` / ``bluez:hci1`` (live scanning through bleak on BlueZ). While a file ``FILE.unplug``
exists a replay goes on but delivers nothing, as sensors out of range (``touch`` / ``rm``). Drivers subscribe by MAC
address to a ``ScannerPool``; the first subscriber of a source starts its scanner, the last one
to leave stops it, so ten sensors cost one scan.

Replay files: JSON lines (``ble_advert``); a malformed line is counted and skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from gateway.transports.ble_advert import Advert, read_adverts
from gateway.transports.replay import Pulled, unplug_file

log = logging.getLogger(__name__)

SPECS: Final = "replay:FILE, replay-loop:FILE, bluez or bluez:ADAPTER"


Listener = Callable[[Advert], None]


@dataclass
class Scanner:
    """One source's scan: its listeners by address (``*``: every advertisement) and its task."""

    spec: str
    listeners: dict[str, list[Listener]] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    problem: str | None = None  # why it does not scan (no adapter), while it does not
    ended: bool = False  # a replay played to its end
    adverts: int = 0
    malformed: int = 0
    withheld: int = 0  # adverts not delivered while the replay is unplugged
    passes: int = 0  # times a looped replay started again

    def deliver(self, advert: Advert) -> None:
        self.adverts += 1
        for listener in (*self.listeners.get(advert.address, ()), *self.listeners.get("*", ())):
            listener(advert)

    async def run(self) -> None:
        kind, _, rest = self.spec.partition(":")
        if kind in ("replay", "replay-loop"):
            await self._replay(Path(rest), loop=kind == "replay-loop")
        else:
            await self._live(rest or None)

    async def _replay(self, path: Path, clock: Callable[[], float] = time.monotonic, loop: bool = False) -> None:
        delay = 1.0
        while not path.is_file():  # noqa: ASYNC240 (a stat) -- not there yet: one line, read once it is
            if self.problem is None:
                log.warning("Bluetooth replay:%s: no such file (retrying)", path)
            self.problem = f"replay:{path}: no such file"
            await asyncio.sleep(delay)
            delay = min(2 * delay, 30.0)
        self.problem = None
        pulled = Pulled(unplug_file(path), clock)
        while True:
            origin: tuple[float, float] | None = None  # each pass from the top: its first advert at once
            for advert in read_adverts(path):
                if advert is None:
                    self.malformed += 1
                    continue
                if origin is None:
                    origin = (advert.timestamp, clock())
                if (wait := origin[1] + advert.timestamp - origin[0] - clock()) > 0:
                    await asyncio.sleep(wait)
                if pulled():
                    self.withheld += 1
                    continue
                self.deliver(advert)
            if not loop:
                break
            self.passes += 1
            await asyncio.sleep(0.1)  # an empty file must not spin
        self.ended = True
        log.info("Bluetooth replay:%s ended after %d advertisements", path, self.adverts)

    async def _live(self, adapter: str | None) -> None:
        from gateway.transports.ble_live import scan  # bleak (D-Bus), only for a live scan

        delay = 2.0
        while True:
            heard_before = self.adverts
            try:
                await scan(adapter, self.deliver, self._up)
            except OSError as exc:  # no adapter, BlueZ not running, no permission: one line per outage
                if self.problem != str(exc):
                    log.warning("%s (retrying)", exc)  # "no Bluetooth...: why"
                self.problem = str(exc)
            delay = 2.0 if self.adverts > heard_before else delay  # it worked for a while: retry soon
            await asyncio.sleep(delay)
            delay = min(2 * delay, 60.0)

    def _up(self) -> None:
        if self.problem is not None:
            log.info("Bluetooth %s: scanning", self.spec)
        self.problem = None


class ScannerPool:
    """The scanners of one gateway (one per source spec), shared by all its BLE devices."""

    def __init__(self) -> None:
        self.scanners: dict[str, Scanner] = {}

    def subscribe(self, spec: str, address: str, listener: Listener) -> Scanner:
        scanner = self.scanners.get(spec)
        if scanner is None:
            scanner = self.scanners[spec] = Scanner(spec)
            scanner.task = asyncio.create_task(scanner.run())
        scanner.listeners.setdefault(address, []).append(listener)
        return scanner

    async def unsubscribe(self, spec: str, address: str, listener: Listener) -> None:
        scanner = self.scanners.get(spec)
        if scanner is None:
            return
        mine = scanner.listeners.get(address, [])
        if listener in mine:
            mine.remove(listener)
        if not mine:
            scanner.listeners.pop(address, None)
        if not scanner.listeners:
            del self.scanners[spec]
            if scanner.task is not None:
                scanner.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await scanner.task


def parse_source(where: str, spec: str) -> str:
    """A checked source spec; ValueError (one line naming ``where``) for a bad one."""
    kind, _, rest = spec.partition(":")
    replay = kind in ("replay", "replay-loop") and rest
    if replay or (kind == "bluez" and (not rest or re.fullmatch(r"hci\d+", rest))):
        return spec
    raise ValueError(f"{where}: expected {SPECS}, got {spec!r}")
