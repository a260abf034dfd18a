"""The bus under the N2K frontend: one transport per ``[n2k] interface`` SPEC.

A transport moves whole PGNs, ``Frame = (priority, pgn, source, destination, payload)``;
CAN-level transports cut fast-packet PGNs into frames (``fast_packet_fragment``) and join
incoming ones (``Reassembler``), both from the ``nmea2000`` package's canboat core.

- ``socketcan:can0`` and ``virtual:NAME``: python-can (the in-process virtual bus for tests).
- ``yden:HOST:PORT``: a Yacht Devices Ethernet/Wi-Fi gateway in RAW mode over TCP.
- ``actisense:/dev/ttyUSB0``: an Actisense NGT-1 (the package's NGT-1 codec over pyserial).
- ``candump:PATH``: append every frame sent to PATH as ``candump -L`` lines with wall-clock
  timestamps, nothing after the data (python-can's logger appends T/R, which canboatjs refuses).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

import can
from nmea2000 import _canboat as canboat
from nmea2000 import backend

Frame = tuple[int, int, int, int, bytes]  # (priority, pgn, source, destination, payload)
SPECS = "socketcan:IFACE, virtual:NAME, yden:HOST:PORT, actisense:DEVICE or candump:PATH"


class Transport(Protocol):
    label: str

    async def open(self) -> None:
        """Connect; raises (OSError, can.CanError, ...) when the bus is not there."""

    def send(self, frame: Frame) -> int:
        """Send one PGN; returns the CAN frames it took; raises when the bus is gone."""

    async def receive(self) -> Frame:
        """The next complete PGN from the bus (write-only transports wait forever)."""

    async def close(self) -> None: ...


class Fragmenter:
    """PGN -> CAN (id, data) frames, fast-packet sequence counters per (source, PGN)."""

    def __init__(self) -> None:
        self._seq: dict[tuple[int, int], int] = {}

    def frames(self, frame: Frame) -> list[tuple[int, bytes]]:
        prio, pgn, src, dst, payload = frame
        can_id: int = canboat.can_id_compose(prio, pgn, src, dst)
        if not backend.is_fast_pgn(pgn) and len(payload) <= 8:
            return [(can_id, payload)]
        seq = self._seq.get((src, pgn), 0)
        self._seq[(src, pgn)] = (seq + 1) % 8
        return [(can_id, part) for part in canboat.fast_packet_fragment(seq, payload)]


class Joiner:
    """CAN frames -> complete PGNs (fast-packet reassembly)."""

    def __init__(self) -> None:
        self._reassembler = canboat.Reassembler()

    def push(self, can_id: int, data: bytes) -> Frame | None:
        prio, pgn, src, dst = canboat.can_id_decompose(can_id)
        try:
            payload = self._reassembler.push(pgn, data, src, dst, prio)
        except canboat.ReassemblyError:
            return None
        return None if payload is None else (prio, pgn, src, dst, payload)


class CandumpFile:
    """Appends ``(1763900000.123456) can0 19F21423#012D05D3FF777407`` lines."""

    def __init__(self, path: Path, channel: str = "can0", clock: Callable[[], float] = time.time) -> None:
        self.label = f"candump:{path}"
        self.path = path
        self.channel = channel
        self.clock = clock
        self._file: IO[str] | None = None
        self._fragmenter = Fragmenter()

    async def open(self) -> None:
        self._file = self.path.open("a", encoding="ascii")

    def send(self, frame: Frame) -> int:
        if self._file is None:
            raise OSError("not open")
        parts = self._fragmenter.frames(frame)
        now = self.clock()
        self._file.write("".join(f"({now:.6f}) {self.channel} {i:08X}#{d.hex().upper()}\n" for i, d in parts))
        self._file.flush()
        return len(parts)

    async def receive(self) -> Frame:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class PythonCanBus:
    """Any python-can interface: socketcan on Linux, virtual in one process (tests)."""

    def __init__(self, interface: str, channel: str) -> None:
        self.label = f"{interface}:{channel}"
        self.interface, self.channel = interface, channel
        self._bus: can.BusABC | None = None
        self._reader: can.AsyncBufferedReader | None = None
        self._notifier: can.Notifier | None = None
        self._fragmenter, self._joiner = Fragmenter(), Joiner()

    async def open(self) -> None:
        self._bus = can.Bus(interface=self.interface, channel=self.channel)
        self._reader = can.AsyncBufferedReader()
        self._notifier = can.Notifier(self._bus, [self._reader], timeout=0.1, loop=asyncio.get_running_loop())

    def send(self, frame: Frame) -> int:
        if self._bus is None:
            raise can.CanOperationError("not open")
        parts = self._fragmenter.frames(frame)
        for can_id, data in parts:
            self._bus.send(can.Message(arbitration_id=can_id, data=data, is_extended_id=True))
        return len(parts)

    async def receive(self) -> Frame:
        assert self._reader is not None
        while True:
            msg = await self._reader.get_message()
            if msg.is_extended_id and not msg.is_error_frame:
                joined = self._joiner.push(msg.arbitration_id, bytes(msg.data))
                if joined is not None:
                    return joined

    async def close(self) -> None:
        if self._notifier is not None:
            self._notifier.stop()
            self._notifier = None
        if self._bus is not None:
            self._bus.shutdown()
            self._bus = None


class YdenRaw:
    """Yacht Devices RAW over TCP: ``19F51323 01 02 ...`` lines out, ``hh:mm:ss.ms R ...`` lines in."""

    def __init__(self, host: str, port: int) -> None:
        self.label = f"yden:{host}:{port}"
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._fragmenter, self._joiner = Fragmenter(), Joiner()

    async def open(self) -> None:
        async with asyncio.timeout(5.0):
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    def send(self, frame: Frame) -> int:
        if self._writer is None or self._writer.is_closing():
            raise ConnectionError("not connected")
        parts = self._fragmenter.frames(frame)
        text = "".join(f"{i:08X} {' '.join(f'{b:02X}' for b in d)}\r\n" for i, d in parts)
        self._writer.write(text.encode("ascii"))
        return len(parts)

    async def receive(self) -> Frame:
        assert self._reader is not None
        while True:
            line = await self._reader.readline()
            if not line:
                raise ConnectionError("the gateway closed the connection")
            try:
                parsed = canboat.parse_line("ydwg02", line.decode("ascii", "replace").strip())
            except ValueError:
                continue
            if parsed is not None:
                prio, pgn, src, dst, data = parsed
                joined = self._joiner.push(canboat.can_id_compose(prio, pgn, src, dst), data)
                if joined is not None:
                    return joined

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class ActisenseNgt1:
    """An Actisense NGT-1 on a serial port; it takes whole PGNs (fast-packet is its job)."""

    def __init__(self, device: str, transmit: Callable[[], list[int]]) -> None:
        self.label = f"actisense:{device}"
        self.device = device
        self.transmit = transmit
        self._codec: canboat.GatewayCodec | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: list[Frame] = []

    async def open(self) -> None:
        import serial_asyncio

        self._codec = canboat.GatewayCodec("ngt1", tx_pgns=self.transmit())
        self._reader, self._writer = await serial_asyncio.open_serial_connection(url=self.device, baudrate=115200)
        self._writer.write(self._codec.open())

    def send(self, frame: Frame) -> int:
        if self._writer is None or self._codec is None:
            raise ConnectionError("not open")
        prio, pgn, src, dst, payload = frame
        self._writer.write(self._codec.send(pgn, payload, src, dst, prio))
        return max(1, (len(payload) + 7) // 7) if len(payload) > 8 else 1

    async def receive(self) -> Frame:
        assert self._reader is not None and self._codec is not None
        while not self._pending:
            data = await self._reader.read(4096)
            if not data:
                raise ConnectionError("the NGT-1 went away")
            for kind, event in self._codec.receive(data):
                if kind == "frame" and isinstance(event, tuple):
                    self._pending.append(event)
        return self._pending.pop(0)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def parse_interface(where: str, spec: str, transmit: Callable[[], list[int]] = list) -> Transport:
    """A transport for SPEC; ValueError (one line naming ``where``) for a bad one."""
    kind, _, rest = spec.partition(":")
    if kind in ("socketcan", "virtual") and rest:
        return PythonCanBus(kind, rest)
    if kind == "candump" and rest:
        return CandumpFile(Path(rest))
    if kind == "actisense" and rest:
        return ActisenseNgt1(rest, transmit)
    if kind == "yden":
        host, _, port = rest.rpartition(":")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return YdenRaw(host.strip("[]"), int(port))
    raise ValueError(f"{where}: expected {SPECS}, got {spec!r}")
