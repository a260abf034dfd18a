"""Raw CAN frames, for every reader of a CAN bus: the CAN-bus BMS driver and NMEA 2000 in.

A ``RawBus`` yields ``RawFrame``s (timestamp, arbitration id, extended?, data) and sends them;
what the ids mean (0x35x BMS frames, 29-bit NMEA 2000 ids) is the reader's business.

- ``socketcan:can0`` and ``virtual:NAME``: python-can (the in-process virtual bus for tests).
- ``candump-replay:PATH``: ``candump -L`` lines replayed at their own pace (the gaps between
  their timestamps), once; ``candump-loop:PATH`` starts again at the end (a demo that runs for
  hours). Malformed lines are counted and skipped, never fatal. Sends go nowhere (a replay is
  read-only) and are counted. While a file ``PATH.unplug`` exists the replay goes on but
  delivers nothing, as a pulled cable (``touch`` it to stop the senders, ``rm`` it to resume).

A bus that cannot be opened or sent on raises OSError with one line, whatever the medium.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import can

from gateway.transports.replay import Pulled, unplug_file

SPECS = "socketcan:IFACE, virtual:NAME, candump-replay:PATH or candump-loop:PATH"

# (1763900000.123456) can0 19F21423#012D05D3FF777407   (R/T after the data is tolerated)
CANDUMP_LINE = re.compile(r"^\((\d+(?:\.\d+)?)\)\s+(\S+)\s+([0-9A-Fa-f]{1,8})#([0-9A-Fa-f]*)(?:\s+[RT])?\s*$")


@dataclass(frozen=True, slots=True)
class RawFrame:
    timestamp: float
    can_id: int
    extended: bool
    data: bytes


class RawBus(Protocol):
    label: str

    async def open(self) -> None: ...

    async def receive(self) -> RawFrame:
        """The next frame; EOFError when a replay has ended."""
        ...

    def send(self, frame: RawFrame) -> None: ...

    async def close(self) -> None: ...


def parse_candump_line(line: str) -> RawFrame | None:
    """A frame from one ``candump -L`` line; None for a line that is not one."""
    m = CANDUMP_LINE.match(line.strip())
    if m is None or len(m.group(4)) % 2 or len(m.group(4)) > 16:
        return None
    ident = m.group(3)
    return RawFrame(float(m.group(1)), int(ident, 16), len(ident) > 3, bytes.fromhex(m.group(4)))


def format_candump_line(frame: RawFrame, channel: str = "can0") -> str:
    ident = f"{frame.can_id:08X}" if frame.extended else f"{frame.can_id:03X}"
    return f"({frame.timestamp:.6f}) {channel} {ident}#{frame.data.hex().upper()}"


def read_candump(path: Path) -> Iterator[RawFrame | None]:
    """Every line of a candump -L file as a frame, or None where the line is malformed."""
    with path.open(encoding="ascii", errors="replace") as lines:
        for line in lines:
            if line.strip():
                yield parse_candump_line(line)


class CandumpReplay:
    """Replays a candump -L file at its own pace (``speed`` > 1 plays it faster), once or looped."""

    def __init__(
        self, path: Path, speed: float = 1.0, clock: Callable[[], float] = time.monotonic, loop: bool = False
    ) -> None:
        self.label = f"candump-{'loop' if loop else 'replay'}:{path}"
        self.path, self.speed, self.clock, self.loop = path, speed, clock, loop
        self.control = unplug_file(path)
        self.malformed = 0
        self.unsent = 0
        self.withheld = 0  # frames not delivered while unplugged
        self.passes = 0  # times a looped replay started again
        self._frames: Iterator[RawFrame | None] | None = None
        self._origin: tuple[float, float] | None = None  # (first frame's timestamp, clock then)
        self._pulled = Pulled(self.control, clock)

    async def open(self) -> None:
        if not self.path.is_file():
            raise OSError(f"{self.label}: no such file")
        self._frames = read_candump(self.path)
        self._origin = None

    async def receive(self) -> RawFrame:
        while True:
            if self._frames is None:
                raise OSError(f"{self.label}: not open")
            for frame in self._frames:
                if frame is None:
                    self.malformed += 1
                    continue
                if self._origin is None:
                    self._origin = (frame.timestamp, self.clock())
                due = self._origin[1] + (frame.timestamp - self._origin[0]) / self.speed
                if (wait := due - self.clock()) > 0:
                    await asyncio.sleep(wait)
                if self._pulled():
                    self.withheld += 1
                    continue
                return frame
            if not self.loop:
                raise EOFError(self.label)
            self.passes += 1
            await asyncio.sleep(0.1)  # an empty file must not spin
            await self.open()  # again from the top: its first frame at once

    def send(self, frame: RawFrame) -> None:
        self.unsent += 1

    async def close(self) -> None:
        self._frames = None


class PythonCanRawBus:
    """Any python-can interface, frames as they come (error frames dropped)."""

    def __init__(self, interface: str, channel: str, bitrate: int | None = None) -> None:
        self.label = f"{interface}:{channel}"
        self.interface, self.channel, self.bitrate = interface, channel, bitrate
        self._bus: can.BusABC | None = None
        self._reader: can.AsyncBufferedReader | None = None
        self._notifier: can.Notifier | None = None

    async def open(self) -> None:
        """OSError (one line) when the interface is not there: readers retry, whatever the bus."""
        try:
            if self.bitrate and self.interface == "socketcan":
                self._bus = can.Bus(interface=self.interface, channel=self.channel, bitrate=self.bitrate)
            else:
                self._bus = can.Bus(interface=self.interface, channel=self.channel)
        except (can.CanError, OSError) as exc:  # OSError: no SocketCAN here (EAFNOSUPPORT), no such interface
            raise OSError(
                f"{self.label}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}"
            ) from None
        self._reader = can.AsyncBufferedReader()
        self._notifier = can.Notifier(self._bus, [self._reader], timeout=0.1, loop=asyncio.get_running_loop())

    async def receive(self) -> RawFrame:
        if self._reader is None:
            raise OSError(f"{self.label}: not open")
        while True:
            msg = await self._reader.get_message()
            if not msg.is_error_frame and not msg.is_remote_frame:
                return RawFrame(msg.timestamp, msg.arbitration_id, msg.is_extended_id, bytes(msg.data))

    def send(self, frame: RawFrame) -> None:
        if self._bus is None:
            raise OSError(f"{self.label}: not open")
        try:
            self._bus.send(can.Message(arbitration_id=frame.can_id, data=frame.data, is_extended_id=frame.extended))
        except can.CanError as exc:
            raise OSError(f"{self.label}: {exc}") from None

    async def close(self) -> None:
        if self._notifier is not None:
            self._notifier.stop()
            self._notifier = None
        if self._bus is not None:
            self._bus.shutdown()
            self._bus = None


def parse_raw_bus(where: str, spec: str, bitrate: int | None = None) -> RawBus:
    """A raw bus for SPEC; ValueError (one line naming ``where``) for a bad one."""
    kind, _, rest = spec.partition(":")
    if kind in ("socketcan", "virtual") and rest:
        return PythonCanRawBus(kind, rest, bitrate)
    if kind in ("candump-replay", "candump-loop") and rest:
        return CandumpReplay(Path(rest), loop=kind == "candump-loop")
    raise ValueError(f"{where}: expected {SPECS}, got {spec!r}")
