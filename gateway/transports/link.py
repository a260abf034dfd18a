"""Keeps a transport open: retried with backoff, logged once per state change, never blocking.

The rest of the gateway (Modbus, HTTP, the drivers) must not notice an unplugged CAN adapter,
an unreachable Yacht Devices gateway or an unwritable candump path: ``send`` drops frames
(counted) while the link is down, and the link reopens in the background (0.5 s doubling to
30 s). A failure is logged once when the state changes, not at every attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable

from gateway.core.components import cancel_and_wait
from gateway.transports.can import Frame, Transport

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0


class Link:
    def __init__(
        self, transport: Transport, on_frame: Callable[[Frame], None], on_up: Callable[[], None] = lambda: None
    ) -> None:
        self.transport = transport
        self.on_frame = on_frame
        self.on_up = on_up  # (re)opened: the devices claim their addresses (again)
        self.up = False
        self.reason = "not started"
        self.frames_sent = 0
        self.pgns_dropped = 0
        self.opened = asyncio.Event()
        self._failed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._recent: deque[tuple[float, int]] = deque()  # (monotonic, frames) of the last 10 s

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"n2k link {self.transport.label}")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        await self.transport.close()
        self.up = False

    def send(self, frame: Frame) -> bool:
        if not self.up:
            self.pgns_dropped += 1
            return False
        try:
            n = self.transport.send(frame)
        except Exception as e:
            self.pgns_dropped += 1
            self._down(f"send failed: {e}")
            return False
        self.frames_sent += n
        now = time.monotonic()
        self._recent.append((now, n))
        while self._recent and self._recent[0][0] < now - 10.0:
            self._recent.popleft()
        return True

    def frames_per_s(self) -> float:
        """Frames sent per second over the last 10 s."""
        now = time.monotonic()
        return sum(n for t, n in self._recent if t >= now - 10.0) / 10.0

    def _down(self, reason: str) -> None:
        if self.up:
            log.warning("NMEA 2000 %s is down (%s); retrying in the background", self.transport.label, reason)
        self.up = False
        self.reason = reason
        self._failed.set()

    async def _run(self) -> None:
        delay = BACKOFF_START_S
        last_error: str | None = None
        while True:
            try:
                await self.transport.open()
            except Exception as e:
                reason = str(e) or type(e).__name__
                if reason != last_error:
                    log.warning("NMEA 2000 %s unavailable: %s; retrying with backoff", self.transport.label, reason)
                    last_error = reason
                self.reason = reason
                await self.transport.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            log.info("NMEA 2000 on %s", self.transport.label)
            self.up, self.reason, last_error, delay = True, "", None, BACKOFF_START_S
            self._failed.clear()
            self.opened.set()
            try:
                self.on_up()
            except Exception:
                log.exception("NMEA 2000: starting the devices on %s failed", self.transport.label)
            await self._serve()
            await self.transport.close()
            await asyncio.sleep(delay)

    async def _serve(self) -> None:
        """Hand received PGNs to on_frame until the transport fails."""
        failed = asyncio.create_task(self._failed.wait())
        try:
            while self.up:
                receive = asyncio.create_task(self.transport.receive())
                done, _ = await asyncio.wait({receive, failed}, return_when=asyncio.FIRST_COMPLETED)
                if receive not in done:
                    receive.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await receive
                    return
                try:
                    frame = receive.result()
                except Exception as e:
                    self._down(str(e) or type(e).__name__)
                    return
                try:
                    self.on_frame(frame)
                except Exception:
                    log.exception("NMEA 2000: handling a received PGN failed; ignored")
        finally:
            failed.cancel()
