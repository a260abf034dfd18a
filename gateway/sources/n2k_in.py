"""NMEA 2000 in: other senders' tank, battery, charger and temperature PGNs into the Store.

The component: a raw CAN bus (``gateway.transports.can_raw``: SocketCAN, the python-can
virtual bus, a ``candump-replay:`` file) read frame by frame through the frame stage
(``n2k_frames``: budget, claims, filters, reassembly, decoding) into the service table
(``n2k_services``: one Store device per sender's data instance, timeouts). A bus that cannot
be opened (no interface yet, a replay file not there) is one warning line, not a failed start:
the reader retries with back-off and says when it is there; a bus lost while reading is
reopened the same way. Every expected fault is counted in ``stats()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from nmea2000 import _canboat as canboat

from gateway.core.components import cancel_and_wait
from gateway.core.store import Store
from gateway.sources.n2k_frames import CLAIM, Claim, FrameStage
from gateway.sources.n2k_names import sender_filter
from gateway.sources.n2k_reverse import ReversePgn, reverse_map
from gateway.sources.n2k_senders import Senders, Service
from gateway.sources.n2k_services import CONFIGURATION, PRODUCT, ServiceTable
from gateway.transports.can_raw import RawBus, RawFrame, parse_raw_bus
from registers.model import CompiledMap

log = logging.getLogger(__name__)

REQUEST: Final = 59904
NULL_ADDRESS: Final = 254  # a Request for Address Claimed may come from the null address
FIRST_RETRY_S: Final = 1.0
MAX_RETRY_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class N2kInSettings:
    bus: str  # a can_raw spec
    pgns: frozenset[int] = frozenset()  # empty: every mapped PGN
    senders: tuple[str, ...] = ()  # NAMEs (16 hex digits) or manufacturers (code or canboat name); empty: all
    first_instance: int = 40
    max_frames_per_source: int = 1000  # frames/s


class N2kInput:
    label = "NMEA 2000 in"

    def __init__(
        self,
        store: Store,
        cmap: CompiledMap,
        settings: N2kInSettings,
        state_dir: Path | None,
        own: Callable[[int], bool],
        bus: RawBus | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.bus = bus or parse_raw_bus("n2k.input", settings.bus)
        self.reverse: Mapping[int, tuple[ReversePgn, ...]] = {
            p: r for p, r in reverse_map(cmap).items() if not settings.pgns or p in settings.pgns
        }
        reserved = {unit for unit in cmap.modbus.unit_ids} | {0}
        self.senders = Senders(state_dir, settings.first_instance, reserved)
        self.counts: Counter[str] = Counter()
        wanted = frozenset(self.reverse) | {PRODUCT, CONFIGURATION}
        self.frames = FrameStage(
            wanted, own, self.senders.names, sender_filter(settings.senders),
            settings.max_frames_per_source, self.counts, clock,
        )  # fmt: skip
        self.table = ServiceTable(store, self.reverse, self.senders, self.bus.label, self.counts, clock)
        self._tasks: list[asyncio.Task[None]] = []
        self._open = False
        self._problem: str | None = None  # why the bus is not open, while it is not
        self.ended = False

    @property
    def services(self) -> dict[str, Service]:
        return self.table.services

    # --- component -----------------------------------------------------------------------
    async def start(self) -> None:
        self.senders.load()
        await self._try_open()  # at once when it can: nothing sent meanwhile is missed
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._watch())]
        await asyncio.sleep(0)  # the reader's first step: what a replay has at its first instant is read now
        log.info("%s on %s: %d PGNs mapped", self.label, self.bus.label, len(self.reverse))

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        await self.bus.close()
        self._open = False
        self.table.remove_all()
        await self.senders.flush()

    def health(self) -> str | None:
        reader = self._tasks[0] if self._tasks else None
        if reader is not None and reader.done() and not reader.cancelled() and reader.exception():
            return f"{self.label} stopped: {reader.exception()}"
        if self._problem is not None:
            return f"{self.label}: waiting: {self._problem}"
        return None

    def stats(self) -> dict[str, Any]:
        return {
            "bus": self.bus.label,
            "open": self._open,
            "services": {k: s.instance for k, s in self.services.items()},
            "counts": dict(self.counts),
        }

    # --- the bus -------------------------------------------------------------------------
    async def _try_open(self) -> bool:
        try:
            await self.bus.open()
        except OSError as exc:
            if self._problem is None:  # one line per outage, not one per retry
                log.warning("%s: %s (retrying)", self.label, exc)  # the bus says which it is
            self._problem = str(exc)
            return False
        if self._problem is not None:
            log.info("%s: %s is open now", self.label, self.bus.label)
        self._open, self._problem = True, None
        request = canboat.can_id_compose(6, REQUEST, NULL_ADDRESS, 255)
        with contextlib.suppress(OSError):  # a read-only replay counts it; a dead bus is seen below
            self.bus.send(RawFrame(0.0, request, True, CLAIM.to_bytes(3, "little")))
        return True

    async def _read(self) -> None:
        delay = FIRST_RETRY_S
        while True:
            if not self._open:
                if not await self._try_open():
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY_S)
                    continue
                delay = FIRST_RETRY_S
            try:
                frame = await self.bus.receive()
            except EOFError:
                self.ended = True
                log.info("%s: the replay ended after %d frames", self.bus.label, self.counts["frames"])
                return
            except OSError as exc:  # the bus went away: reopen it as at start
                log.warning("%s: %s (reopening)", self.label, exc)
                self._open, self._problem = False, str(exc)
                await self.bus.close()
                continue
            self.on_frame(frame)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self.table.check_timeouts()

    def on_frame(self, frame: RawFrame) -> None:
        event = self.frames.accept(frame)
        if isinstance(event, Claim):
            self.table.claim(event)
        elif event is not None:
            self.table.decoded(event)
