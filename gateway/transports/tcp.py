"""One Modbus-TCP client connection per ``host:port``, shared by every device behind it.

Why a thin client of our own rather than pymodbus's async client: measured on this machine
(``make bench``, docs/BENCHMARKS.md) pymodbus costs several times the CPU per request of
this one, and at 100 devices polled every second the link is the hot path. What it must do
is small: FC 3 reads and FC 16 writes, one request at a time.

- Requests on a link are serialized (an ``asyncio.Lock``): SolarEdge accepts one Modbus-TCP
  client, and a datamanager with several inverters behind it answers one request at a time.
- Each request has a short timeout (1 s by default). A timeout closes the connection (a late
  answer must never be taken for the next request's) and the next request reconnects.
- A failed connect or a dropped connection backs off exponentially WITH jitter: the next
  attempt is not before ``delay * uniform(0.5, 1.0)``, so 100 devices failing together do not
  retry in lockstep. Requests during the back-off fail at once with ``LinkDown`` (no traffic).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import time
from collections.abc import Callable
from typing import Final

READ_REQUEST: Final = struct.Struct(">HHHBBHH")  # tid, protocol 0, length 6, unit, fc 3/4, address, count
WRITE_HEADER: Final = struct.Struct(">HHHBBHHB")  # tid, 0, length, unit, fc 16, address, count, bytes
MBAP: Final = struct.Struct(">HHHB")  # tid, protocol, length, unit
BACKOFF_MIN_S: Final = 0.5
BACKOFF_MAX_S: Final = 30.0
ONE_CLIENT_HINT: Final = "a device that takes one client (SolarEdge) does this while another master polls it"


class ModbusError(Exception):
    """A request that got no usable answer; the message says why in one line."""


class LinkDown(ModbusError):
    """Not connected (refused, unreachable, or waiting out the back-off)."""


class RequestTimeout(ModbusError):
    """No answer within the request's timeout."""


class ExceptionResponse(ModbusError):
    """The device answered with a Modbus exception code."""

    def __init__(self, code: int, what: str) -> None:
        super().__init__(f"{what}: exception {code:#04x}")
        self.code = code


class ModbusLink:
    """A serialized Modbus-TCP client for one ``host:port`` (see the module doc)."""

    protocol = "Modbus-TCP"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout_s: float = 1.0,
        backoff_min_s: float = BACKOFF_MIN_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.port = host, port
        self.timeout_s = timeout_s
        self.backoff_min_s, self.backoff_max_s = backoff_min_s, backoff_max_s
        self.lock = asyncio.Lock()  # held for a whole request (or a driver's sequence of them)
        self._rng = rng or random.Random()
        self._clock = clock
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tid = 0
        self._failures = 0
        self.retry_at = 0.0  # monotonic time before which no connect is attempted
        self.connects = 0  # successful connects (diagnostics, tests)
        self._answers = 0  # answers on the current connection (none yet: a busy device?)
        self.requests = 0

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._writer is not None

    # --- requests (callers hold ``lock``; ``read``/``write`` take it themselves) -----------
    async def read(
        self, unit: int, address: int, count: int, timeout_s: float | None = None, function: int = 3
    ) -> bytes:
        """FC 3 (or 4): register bytes (a device may answer fewer registers than asked: the caller sees it)."""
        async with self.lock:
            return await self.read_locked(unit, address, count, timeout_s, function)

    async def write(self, unit: int, address: int, data: bytes, timeout_s: float | None = None) -> None:
        """FC 16: write ``data`` (2 bytes per register) at ``address``."""
        async with self.lock:
            await self.write_locked(unit, address, data, timeout_s)

    async def read_locked(
        self, unit: int, address: int, count: int, timeout_s: float | None = None, function: int = 3
    ) -> bytes:
        tid = self._next_tid()
        request = READ_REQUEST.pack(tid, 0, 6, unit, function, address, count)
        pdu = await self._exchange(request, tid, unit, timeout_s, f"read {address}+{count}")
        if len(pdu) < 2 or pdu[1] != len(pdu) - 2 or pdu[1] % 2:
            await self._drop()
            raise ModbusError(f"read {address}+{count}: malformed answer from {self.name}")
        return pdu[2:]

    async def write_locked(self, unit: int, address: int, data: bytes, timeout_s: float | None = None) -> None:
        tid = self._next_tid()
        count = len(data) // 2
        request = WRITE_HEADER.pack(tid, 0, 7 + len(data), unit, 16, address, count, len(data)) + data
        await self._exchange(request, tid, unit, timeout_s, f"write {address}+{count}")

    # --- the exchange ------------------------------------------------------------------
    def _next_tid(self) -> int:
        self._tid = (self._tid + 1) & 0xFFFF
        return self._tid

    async def _exchange(self, request: bytes, tid: int, unit: int, timeout_s: float | None, what: str) -> bytes:
        """Send, then read frames until the one with our transaction id; the PDU after the unit id."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        self.requests += 1
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await self._connect()
                writer.write(request)
                while True:
                    header = await reader.readexactly(MBAP.size)
                    r_tid, protocol, length, r_unit = MBAP.unpack(header)
                    if protocol != 0 or not 2 <= length <= 254:
                        raise ModbusError(f"{what}: not a Modbus-TCP answer from {self.name}")
                    pdu = await reader.readexactly(length - 1)
                    if r_tid == tid and r_unit == unit:
                        break
        except TimeoutError:
            await self._drop()
            raise RequestTimeout(f"{what}: no answer from {self.name} within {timeout:g} s") from None
        except (OSError, asyncio.IncompleteReadError) as e:
            first = self._answers == 0
            await self._drop(failed=True)
            reason = _reason(e)
            if first and isinstance(e, asyncio.IncompleteReadError):
                reason += f" before its first answer; {ONE_CLIENT_HINT}"
            raise LinkDown(f"{what}: connection to {self.name} lost ({reason})") from None
        except ModbusError:
            await self._drop()
            raise
        self._failures = 0
        self._answers += 1
        if pdu[0] & 0x80:
            raise ExceptionResponse(pdu[1] if len(pdu) > 1 else 0, what)
        return pdu

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is not None and self._writer is not None:
            return self._reader, self._writer
        now = self._clock()
        if now < self.retry_at:
            raise LinkDown(f"{self.name}: waiting {self.retry_at - now:.1f} s before reconnecting")
        try:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        except OSError as e:
            self._back_off()
            raise LinkDown(f"cannot connect to {self.name} ({_reason(e)})") from None
        self.connects += 1
        self._answers = 0
        return self._reader, self._writer

    def _back_off(self) -> None:
        """Next connect not before an exponentially growing, jittered delay."""
        delay = min(self.backoff_max_s, self.backoff_min_s * (2 ** min(self._failures, 16)))
        self._failures += 1
        self.retry_at = self._clock() + delay * self._rng.uniform(0.5, 1.0)

    async def _drop(self, failed: bool = False) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if failed:
            self._back_off()
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(0.2):
                    await writer.wait_closed()

    async def close(self) -> None:
        await self._drop()


def _reason(e: BaseException) -> str:
    if isinstance(e, asyncio.IncompleteReadError):
        return "closed by the device"
    return (e.strerror or str(e) or type(e).__name__).lower() if isinstance(e, OSError) else str(e)


class LinkPool:
    """One ``ModbusLink`` per ``host:port`` for every device of every driver that shares it."""

    def __init__(self, **options: float) -> None:
        self.options = options
        self.links: dict[tuple[str, int], ModbusLink] = {}

    def get(self, host: str, port: int) -> ModbusLink:
        link = self.links.get((host, port))
        if link is None:
            link = self.links[(host, port)] = ModbusLink(host, port, **self.options)  # type: ignore[arg-type]
        return link

    async def close(self) -> None:
        for link in self.links.values():
            await link.close()
