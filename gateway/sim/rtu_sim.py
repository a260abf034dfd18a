"""Energy meters on a simulated RS485 bus: Modbus RTU slaves behind the master side of a pty.

What a USB RS485 adapter with meters on its bus shows a master. The register images are the
TCP meter simulators' (``MeterSimulator``: the same compiled model the driver decodes with);
this module only adds the RTU framing: requests are 8-byte frames (unit, function, address,
count, CRC-16), a frame failing its CRC is ignored (as a meter ignores noise), a unit no meter
has stays silent (on a bus nobody answers for an absent unit, unlike a TCP gateway's 0x0B),
and every answer carries its CRC.

Faults: ``silent`` (units that stop answering), ``corrupt`` (the next N answers carry a wrong
CRC). With ``link``, a symlink at that path points at the pty's slave (a by-id name).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import time
import tty
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from pymodbus.framer import FramerRTU

from gateway.sim.protocols.meter_sim import MeterSimulator

REQUEST_SIZE: Final = 8  # unit, function, address (2), count (2), CRC (2): FC 3 and 4


def crc16(frame: bytes) -> bytes:
    """The Modbus CRC of ``frame``, as sent on the wire (low byte first)."""
    return int(FramerRTU.compute_CRC(frame)).to_bytes(2, "big")


class RtuBusSim:
    """Meters (unit id -> simulator) answering Modbus RTU on one pty (see the module doc)."""

    def __init__(self, meters: Mapping[int, MeterSimulator], link: Path | None = None) -> None:
        self.meters = dict(meters)
        self.link = link
        self.silent: set[int] = set()
        self.corrupt = 0  # the next N answers get a wrong CRC
        self.requests: collections.Counter[int] = collections.Counter()  # per unit, answered or not
        self.bad_frames = 0
        self.timeline: collections.deque[tuple[str, float]] = collections.deque(maxlen=1000)  # (event, time)
        self._master = -1
        self._slave = -1
        self._slave_path = ""
        self._buffer = bytearray()

    @property
    def path(self) -> str:
        """What a master opens: the link when there is one, else the pty's slave."""
        return str(self.link) if self.link is not None else self._slave_path

    async def start(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)  # the pty's line settings: raw both ways (no echo of answers)
        self._slave_path = os.ttyname(self._slave)  # kept open: the master never reads EIO between clients
        os.set_blocking(self._master, False)
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
            self.link.symlink_to(self._slave_path)
        asyncio.get_running_loop().add_reader(self._master, self._readable)

    async def stop(self) -> None:
        if self._master < 0:
            return
        asyncio.get_running_loop().remove_reader(self._master)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        self._buffer += data
        while len(self._buffer) >= REQUEST_SIZE:
            frame = bytes(self._buffer[:REQUEST_SIZE])
            if crc16(frame[:6]) != frame[6:]:
                del self._buffer[0]  # not a frame start (noise, or a frame we do not serve): hunt on
                self.bad_frames += 1
                continue
            del self._buffer[:REQUEST_SIZE]
            self._request(frame[0], frame[1:6])

    def _request(self, unit: int, pdu: bytes) -> None:
        self.requests[unit] += 1
        self.timeline.append(("request", time.monotonic()))
        meter = self.meters.get(unit)
        if meter is None or unit in self.silent or meter.hang:
            return  # an absent or dead unit: silence on the bus
        adu = bytes((unit,)) + meter.answer(meter.unit, pdu)
        crc = crc16(adu)
        if self.corrupt > 0:
            self.corrupt -= 1
            crc = bytes((crc[0] ^ 0xFF, crc[1]))
        with contextlib.suppress(OSError):  # nobody reading: the pty's buffer is full
            os.write(self._master, adu + crc)
            self.timeline.append(("answer", time.monotonic()))
