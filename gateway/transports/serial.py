"""Serial ports, for every serial driver (VE.Direct; Modbus RTU opens its port through pymodbus).

A ``SerialReader`` keeps one port open and hands every chunk of bytes read to a callback:

- any device path: ``/dev/ttyUSB0``, ``/dev/serial/by-id/...`` (stable across re-plugs), a pty;
- the line settings come from the driver's defaults or the device's config (``SerialSettings``);
- a port that vanishes (USB unplugged) or cannot be opened is retried with a jittered back-off
  (0.5 s doubling to 10 s) and logged once per state change, never once per attempt;
- the port is opened exclusively (a lock, as pyserial takes it): a port another process holds
  is one clear line ("in use by another process") instead of two readers stealing bytes.

pyserial-asyncio-fast is the transport: the maintained fork of pyserial-asyncio (the original
has had no release since 2021), with asyncio's own reader callbacks instead of polling. It is
imported when a port is first opened, so a gateway without serial devices never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from gateway.core.components import cancel_and_wait

log = logging.getLogger(__name__)

BACKOFF_START_S: Final = 0.5
BACKOFF_MAX_S: Final = 10.0
PARITIES: Final = {"none": "N", "even": "E", "odd": "O"}


@dataclass(frozen=True, slots=True)
class SerialSettings:
    baud: int = 19200
    parity: str = "none"  # none, even, odd
    bytesize: int = 8
    stopbits: int = 1

    def pyserial(self) -> dict[str, Any]:
        return {
            "baudrate": self.baud,
            "parity": PARITIES[self.parity],
            "bytesize": self.bytesize,
            "stopbits": self.stopbits,
        }


def describe_open_error(path: str, error: BaseException) -> str:
    """One line saying why a port cannot be used, in the user's terms."""
    text = str(error)
    if "exclusively lock" in text or "Resource temporarily unavailable" in text:
        return f"{path} is in use by another process (close it, or remove the other [[device]] on this port)"
    if "No such file" in text or ("could not open port" in text and "[Errno 2]" in text):
        return f"{path} does not exist (unplugged? use /dev/serial/by-id/... for a name that survives re-plugging)"
    if "Permission denied" in text or "[Errno 13]" in text:
        return f"{path}: permission denied (add the gateway's user to the dialout group)"
    return f"{path}: {text}"


class _Protocol(asyncio.Protocol):
    def __init__(self, on_data: Callable[[bytes], None], lost: asyncio.Future[str]) -> None:
        self.on_data = on_data
        self.lost = lost

    def data_received(self, data: bytes) -> None:
        self.on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(str(exc) if exc else "closed")


class SerialReader:
    """Reads one port for as long as it runs; reopens it after it vanished."""

    def __init__(
        self,
        path: str,
        settings: SerialSettings,
        on_data: Callable[[bytes], None],
        on_state: Callable[[bool], None] = lambda up: None,
    ) -> None:
        self.path = path
        self.settings = settings
        self.on_data = on_data
        self.on_state = on_state  # True: opened; False: lost or not openable
        self.up = False
        self.reason = "not started"
        self.opens = 0
        self.bytes_read = 0
        self._transport: asyncio.BaseTransport | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"serial {self.path}")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        self._close()

    def write(self, data: bytes) -> bool:
        """Send bytes (a HEX command); False while the port is closed."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        transport.write(data)  # type: ignore[attr-defined]
        return True

    def _feed(self, data: bytes) -> None:
        self.bytes_read += len(data)
        self.on_data(data)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _set(self, up: bool, reason: str) -> None:
        changed = up != self.up or (not up and reason != self.reason)
        self.up, self.reason = up, reason
        if not changed:
            return
        if up:
            log.info("serial %s: open (%d baud, %s parity)", self.path, self.settings.baud, self.settings.parity)
        else:
            log.warning("serial %s", reason)
        self.on_state(up)

    async def _run(self) -> None:
        import serial_asyncio_fast  # heavy-ish and optional: only a gateway with serial devices loads it

        loop = asyncio.get_running_loop()
        delay = BACKOFF_START_S
        while True:
            lost: asyncio.Future[str] = loop.create_future()
            try:
                transport, _ = await serial_asyncio_fast.create_serial_connection(
                    loop,
                    functools.partial(_Protocol, self._feed, lost),
                    self.path,
                    exclusive=True,
                    **self.settings.pyserial(),
                )
            except Exception as e:  # serial.SerialException (an OSError), ValueError for bad settings
                self._set(False, describe_open_error(self.path, e))
            else:
                self._transport = transport
                self.opens += 1
                delay = BACKOFF_START_S
                self._set(True, "open")
                reason = await lost
                self._close()
                self._set(False, f"{self.path}: lost ({reason})")
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, BACKOFF_MAX_S)


@contextlib.contextmanager
def pty_pair() -> Any:
    """A pty (master fd, slave path): what a USB serial adapter looks like to a reader, for
    the simulators and tests. The master is closed on exit (the slave then reads EOF/EIO)."""
    import os
    import tty

    master, slave = os.openpty()
    tty.setraw(master)
    path = os.ttyname(slave)
    os.close(slave)
    try:
        yield master, path
    finally:
        with contextlib.suppress(OSError):
            os.close(master)
