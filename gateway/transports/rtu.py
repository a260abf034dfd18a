"""Modbus RTU: one RS485 bus per serial port, shared by every meter on it.

pymodbus's serial client does the RTU framing (CRC-16, frame sizes from the function code);
this module makes it behave like ``gateway.transports.tcp.ModbusLink`` for the meter driver
(same ``lock`` / ``read_locked`` / ``name``), and adds what a shared bus needs:

- one request at a time per bus: the driver holds ``lock`` for a meter's whole poll, and an
  ``asyncio.Lock`` is FIFO, so the meters on one port are polled in turn;
- the silent interval between frames the Modbus serial line spec wants (3.5 character times,
  11 bits a character; a fixed 1.75 ms above 19200 baud) before every request;
- an answer that fails its CRC ends the request at once (counted: ``crc_errors``), not after
  the timeout; a unit that does not answer is counted (``timeouts``) and, after three in a
  row, skipped with a jittered back-off (1 s doubling to 10 s) so it does not stall the
  others on the bus;
- both are logged at a bounded rate (one line per kind and unit a minute, with the count);
- a port that cannot be opened is one clear line (missing, in use, permission) and retried
  with back-off, like every serial port of the gateway.

pymodbus is imported when a bus is first opened: a gateway without RTU meters never loads its
serial client. Its own per-request log lines are filtered out (they would be one per poll).
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from typing import Any, Final

from gateway.core.loglimit import Throttle
from gateway.transports.serial import SerialSettings, describe_open_error
from gateway.transports.tcp import ExceptionResponse, LinkDown, ModbusError, RequestTimeout

log = logging.getLogger(__name__)

BITS_PER_CHAR: Final = 11  # start, 8 data, parity (or a 2nd stop bit), stop: the spec's count
SILENT_BEFORE_BACKOFF: Final = 3
BACKOFF_MIN_S: Final = 1.0
BACKOFF_MAX_S: Final = 10.0
PYMODBUS_NOISE: Final = (  # pymodbus's own lines for what this link counts and logs itself
    "No response received",
    "request ask for id",
    "Failed to connect",
    "Not connected",
    "received pdu without a corresponding request",
    "Repeating",
)


class CrcError(ModbusError):
    """An answer arrived but its CRC does not match (noise, a bad termination, A/B swapped)."""


def frame_gap_s(baud: int) -> float:
    """The silent interval between two frames: 3.5 character times (1.75 ms above 19200 baud)."""
    return 0.00175 if baud > 19200 else 3.5 * BITS_PER_CHAR / baud


def answer_timeout_s(baud: int) -> float:
    """Long enough for the longest answer (125 registers, 255 bytes) plus a meter's think time."""
    return 0.3 + 256 * BITS_PER_CHAR / baud


class _QuietPymodbus(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.CRITICAL or not str(record.msg).startswith(PYMODBUS_NOISE)


class RtuLink:
    """A serialized Modbus RTU master on one serial port (see the module doc)."""

    protocol = "Modbus RTU"

    def __init__(self, path: str, settings: SerialSettings, timeout_s: float | None = None) -> None:
        self.path = path
        self.settings = settings
        self.timeout_s = answer_timeout_s(settings.baud) if timeout_s is None else timeout_s
        self.gap_s = frame_gap_s(settings.baud)
        self.lock = asyncio.Lock()  # held for a whole request (or a meter's poll)
        self.requests = 0
        self.crc_errors = 0
        self.timeouts = 0
        self.opens = 0
        self._client: Any = None  # pymodbus AsyncModbusSerialClient, made at first use
        self._crc_seen = False
        self._last_end = 0.0  # time.monotonic() the bus last went quiet (uvloop's clock has 1 ms steps)
        self._open_failures = 0
        self._retry_open_at = 0.0
        self._silent: dict[int, tuple[int, float]] = {}  # unit -> (timeouts in a row, no request before)
        self._throttle = Throttle(log)
        self._open_error: str | None = None

    @property
    def name(self) -> str:
        return self.path

    @property
    def connected(self) -> bool:
        return self._client is not None and bool(self._client.connected)

    # --- requests ---------------------------------------------------------------------
    async def read(
        self, unit: int, address: int, count: int, timeout_s: float | None = None, function: int = 3
    ) -> bytes:
        async with self.lock:
            return await self.read_locked(unit, address, count, timeout_s, function)

    async def read_locked(
        self, unit: int, address: int, count: int, timeout_s: float | None = None, function: int = 3
    ) -> bytes:
        """FC 3 (or 4): register bytes, big-endian words as on the wire."""
        what = f"read {address}+{count}"
        loop = asyncio.get_running_loop()
        _, not_before = self._silent.get(unit, (0, 0.0))
        if loop.time() < not_before:
            raise LinkDown(
                f"{what}: unit {unit} on {self.path} is silent (next try in {not_before - loop.time():.1f} s)"
            )
        client = await self._open()
        wait = self._last_end + self.gap_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait + 0.001)  # uvloop's timers have 1 ms steps: never short of the gap
        self.requests += 1
        self._crc_seen = False
        client.ctx.comm_params.timeout_connect = self.timeout_s if timeout_s is None else timeout_s
        reader = client.read_input_registers if function == 4 else client.read_holding_registers
        try:
            response = await reader(address, count=count, device_id=unit)
        except Exception as e:  # pymodbus: ModbusIOException (no answer), ConnectionException (port gone)
            if isinstance(e, CrcError) or self._crc_seen:
                self._count_crc(unit, what)
                raise CrcError(f"{what}: unit {unit} on {self.path}: answer failed its CRC") from None
            if not self.connected:
                raise LinkDown(f"{what}: {self.path} lost ({e})") from None
            self._after(unit, answered=False)
            self.timeouts += 1
            self._throttle.log(
                f"{self.path} unit {unit} silent",
                logging.WARNING,
                "rtu %s unit %d: no answer within %.2g s (%d so far on this bus)",
                self.path,
                unit,
                client.ctx.comm_params.timeout_connect,
                self.timeouts,
            )
            raise RequestTimeout(f"{what}: no answer from unit {unit} on {self.path}") from None
        finally:
            self._last_end = time.monotonic()
            _reraise_cancel()  # pymodbus awaits with wait_for, which can swallow a cancel (3.11)
        self._after(unit, answered=True)
        if response.isError():
            raise ExceptionResponse(int(getattr(response, "exception_code", 0)), what)
        registers = list(response.registers)
        return struct.pack(f">{len(registers)}H", *registers)

    def _count_crc(self, unit: int, what: str) -> None:
        self.crc_errors += 1
        self._throttle.log(
            f"{self.path} crc",
            logging.WARNING,
            "rtu %s unit %d: %s: answer failed its CRC (%d so far; noise? check termination and A/B wiring)",
            self.path,
            unit,
            what,
            self.crc_errors,
        )

    def _after(self, unit: int, answered: bool) -> None:
        """Track silent units: after a few timeouts in a row, skip them with a back-off."""
        if answered:
            self._silent.pop(unit, None)
            return
        silent, _ = self._silent.get(unit, (0, 0.0))
        silent += 1
        not_before = 0.0
        if silent >= SILENT_BEFORE_BACKOFF:
            delay = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** (silent - SILENT_BEFORE_BACKOFF))
            not_before = asyncio.get_running_loop().time() + delay * random.uniform(0.5, 1.0)
        self._silent[unit] = (silent, not_before)

    # --- the port ---------------------------------------------------------------------
    async def _open(self) -> Any:
        if self.connected:
            return self._client
        loop = asyncio.get_running_loop()
        if loop.time() < self._retry_open_at:
            raise LinkDown(f"{self._open_error or self.path + ': closed'} (retrying)")
        if self._client is None:
            self._client = self._make_client()
        if await self._client.connect():
            self.opens += 1
            self._open_failures = 0
            if self._open_error is not None:
                log.info("rtu %s: open again", self.path)
            self._open_error = None
            log.info(
                "rtu %s: open (%d baud, %s parity, %d stop bits)",
                self.path,
                self.settings.baud,
                self.settings.parity,
                self.settings.stopbits,
            )
            return self._client
        reason = _open_reason(self.path, self.settings)
        if reason != self._open_error:  # once per state change, not per attempt
            log.warning("rtu %s", reason)
        self._open_error = reason
        delay = min(BACKOFF_MAX_S, 0.5 * 2 ** min(self._open_failures, 8))
        self._open_failures += 1
        self._retry_open_at = loop.time() + delay * random.uniform(0.5, 1.0)
        raise LinkDown(reason)

    def _make_client(self) -> Any:
        from pymodbus.client import AsyncModbusSerialClient
        from pymodbus.framer import FramerRTU
        from pymodbus.pdu import DecodePDU

        logging.getLogger("pymodbus.logging").addFilter(_QUIET)
        client = AsyncModbusSerialClient(
            self.path,
            baudrate=self.settings.baud,
            parity=self.settings.pyserial()["parity"],
            bytesize=self.settings.bytesize,
            stopbits=self.settings.stopbits,
            timeout=self.timeout_s,
            retries=0,  # the poller retries at the next interval; a retry here would stall the bus
            reconnect_delay=0,  # this link reopens the port itself, with its own back-off
            name=f"rtu {self.path}",
        )
        link = self

        class CountingFramer(FramerRTU):
            """pymodbus's RTU framer, which drops a frame failing its CRC silently: end the
            request there (CrcError) instead of waiting out the timeout."""

            def decode(self, data: bytes) -> tuple[int, int, int, bytes]:
                used, dev_id, tid, frame = super().decode(data)
                if used and not frame:
                    link._crc_seen = True
                    future = client.ctx.response_future
                    if not future.done():
                        future.set_exception(CrcError(f"unit answer on {link.path} failed its CRC"))
                return used, dev_id, tid, frame

        client.ctx.framer = CountingFramer(DecodePDU(False))
        return client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


_QUIET: Final = _QuietPymodbus()


def _reraise_cancel() -> None:
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _open_reason(path: str, settings: SerialSettings) -> str:
    """Why pymodbus could not open the port (it only says False): ask pyserial once."""
    import serial  # type: ignore[import-untyped]

    try:
        port = serial.serial_for_url(path, exclusive=True, **settings.pyserial())
    except Exception as e:  # serial.SerialException, ValueError
        return describe_open_error(path, e)
    port.close()
    return f"{path}: could not be opened (it opens now: retrying)"


class RtuPool:
    """One ``RtuLink`` per serial port for every meter on that bus."""

    def __init__(self) -> None:
        self.links: dict[str, RtuLink] = {}

    def get(self, path: str, settings: SerialSettings) -> RtuLink:
        link = self.links.get(path)
        if link is None:
            link = self.links[path] = RtuLink(path, settings)
        return link

    async def close(self) -> None:
        for link in self.links.values():
            await link.close()
