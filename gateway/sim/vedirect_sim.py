"""VE.Direct device simulators (MPPT, SmartShunt, Phoenix inverter): the real text protocol on a pty.

What a VE.Direct-USB cable shows a reader.

A ``VeDirectSim`` writes one checksummed block a second (a battery monitor alternates its main
block and its history block, as a BMV does) to the master side of a pty; a reader opens the
slave like any serial port. With ``link``, a symlink at that path points at the current slave,
as udev's /dev/serial/by-id names do, so an unplug and re-plug (a new pty, the link moved)
looks to the reader exactly like a USB cable pulled and pushed back in.

Faults on command: ``unplug()`` / ``plug()``; ``silent`` (the device stops talking, port still
open); ``corrupt`` (the next N blocks carry a wrong checksum). With ``link``, a file
``<link>.unplug`` unplugs it while it exists (the demo's command: ``touch`` / ``rm``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Final

from gateway.core.components import StartupError, cancel_and_wait
from registers.vedirect import block_bytes, hex_command

log = logging.getLogger(__name__)

Fields = dict[str, str]


def _mppt(t: float, serial: str) -> list[Fields]:
    sun = max(0.0, math.sin(t / 600.0 * math.pi)) * 0.8 + 0.2  # a slow 10-minute swell of light
    ppv = round(180 * sun)
    volts = 13.2 + 1.0 * sun
    amps = ppv / volts
    return [
        {
            "PID": "0xA053",
            "FW": "164",
            "SER#": serial,
            "V": str(round(volts * 1000)),
            "I": str(round(amps * 1000)),
            "VPV": str(round((34.0 + 4 * sun) * 1000)),
            "PPV": str(ppv),
            "CS": "3" if volts < 14.1 else "4",
            "MPPT": "2",
            "OR": "0x00000000",
            "ERR": "0",
            "LOAD": "ON",
            "IL": "0",
            "H19": str(10349 + int(t // 60)),
            "H20": str(27 + int(t // 120)),
            "H21": "182",
            "H22": "63",
            "H23": "204",
            "HSDS": "112",
        }
    ]


def _shunt(t: float, serial: str) -> list[Fields]:
    amps = -3.0 + 2.0 * math.sin(t / 90.0)
    volts = 26.2 + amps * 0.02
    soc = 812 - int(t // 30) % 200
    main = {
        "PID": "0xA389",
        "V": str(round(volts * 1000)),
        "VS": "12930",
        "I": str(round(amps * 1000)),
        "P": str(round(volts * amps)),
        "CE": str(-52300 - int(t) * 3),
        "SOC": str(soc),
        "TTG": str(max(1, round(soc / 10 * 4))) if amps < 0 else "-1",
        "Alarm": "OFF",
        "Relay": "OFF",
        "AR": "0",
        "BMV": "SmartShunt 500A/50mV",
        "FW": "0411",
        "MON": "0",
    }
    history = {
        "H1": "-102400",
        "H2": "-52300",
        "H3": "-31200",
        "H4": "48",
        "H5": "2",
        "H6": "-4802100",
        "H7": "21010",
        "H8": "28900",
        "H9": "86400",
        "H10": "12",
        "H11": "3",
        "H12": "0",
        "H13": "1",
        "H14": "0",
        "H15": "11200",
        "H16": "14900",
        "H17": "11820",
        "H18": "12950",
    }
    return [main, history]


def _phoenix(t: float, serial: str) -> list[Fields]:
    amps = 2.0 + 1.5 * math.sin(t / 45.0)  # AC load on the output
    return [
        {
            "PID": "0xA2A2",
            "FW": "0113",
            "SER#": serial,
            "MODE": "2",
            "CS": "9",
            "AR": "0",
            "WARN": "0",
            "V": str(round((25.4 - amps * 0.1) * 1000)),
            "AC_OUT_V": "23002",
            "AC_OUT_I": str(round(amps * 10)),
            "AC_OUT_S": str(round(230 * amps)),
        }
    ]


PRODUCTS: Final[dict[str, Callable[[float, str], list[Fields]]]] = {
    "mppt": _mppt,
    "smartshunt": _shunt,
    "phoenix": _phoenix,
}


class VeDirectSim:
    """One simulated VE.Direct device on a pty (see the module doc)."""

    def __init__(
        self,
        product: str,
        link: Path | None = None,
        interval_s: float = 1.0,
        serial: str = "HQ2132QY2KR",
        source: Callable[[], list[Fields]] | None = None,
    ):
        """``source``: the blocks to send instead of the product's own curves (the demo's
        plant computes them; ``product`` then only names the device)."""
        if source is None and product not in PRODUCTS:
            raise ValueError(f"unknown VE.Direct product {product!r} (known: {', '.join(PRODUCTS)})")
        self.product = product
        self.link = link
        self.interval_s = interval_s
        self.serial = serial
        self.source = source
        self.silent = False
        self.corrupt = 0
        self.sent: list[Fields] = []  # every block written, newest last (bounded)
        self.blocks_sent = 0
        self._master: int | None = None
        self._slave_path = ""
        self._task: asyncio.Task[None] | None = None
        self._started = time.monotonic()

    @property
    def path(self) -> str:
        """What a reader opens: the link when there is one, else the pty's slave."""
        return str(self.link) if self.link is not None else self._slave_path

    @property
    def address(self) -> tuple[str, int]:  # an Endpoints entry: the port path (no TCP port)
        return (self.path, 0)

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def plug(self) -> None:
        if self._master is not None:
            return
        try:
            master, slave = os.openpty()
        except OSError as e:  # no /dev/pts (a bare chroot): one line, not a traceback
            raise StartupError(f"simulated VE.Direct {self.product}: cannot make a pty: {e.strerror or e}") from None
        tty.setraw(master)
        tty.setraw(slave)
        self._slave_path = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(master, False)
        self._master = master
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._slave_path)
            tmp.replace(self.link)  # atomic: a reader never sees a missing link while plugged

    def unplug(self) -> None:
        if self._master is None:
            return
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
        os.close(self._master)  # the reader's next read fails: the cable is gone
        self._master = None

    async def start(self, *_: object) -> None:
        self.plug()
        self._task = asyncio.create_task(self._run(), name=f"vedirect sim {self.product}")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        self.unplug()

    def blocks(self) -> list[Fields]:
        if self.source is not None:
            return self.source()
        return PRODUCTS[self.product](time.monotonic() - self._started, self.serial)

    def write_raw(self, data: bytes) -> bool:
        """Write bytes as the device would; False when unplugged or nobody drains the pty."""
        if self._master is None:
            return False
        try:
            os.write(self._master, data)
        except (BlockingIOError, OSError):
            return False  # a full buffer: a UART drops bytes nobody reads
        return True

    def send_once(self) -> None:
        for fields in self.blocks():
            bad = self.corrupt > 0
            if self.write_raw(block_bytes(fields, corrupt=bad)):
                self.corrupt -= bad
                if not bad:
                    self.sent.append(fields)
                    del self.sent[:-8]
                    self.blocks_sent += 1
        if self.blocks_sent % 5 == 1:  # an async HEX frame now and then
            self.write_raw(hex_command(0xA, bytes([0xBB, 0xED, 0x00, 0x2C, 0x0E])))

    async def _run(self) -> None:
        control = self.link.with_name(self.link.name + ".unplug") if self.link is not None else None
        pulled = False  # the control file acts when it appears or goes (unplug() and plug() still work)
        while True:
            if control is not None and control.exists() != pulled:
                pulled = not pulled
                log.info("vedirect sim %s: %s", self.path, "unplugged" if pulled else "plugged in")
                self.unplug() if pulled else self.plug()
            if not self.silent:
                self.send_once()
            await asyncio.sleep(self.interval_s)
