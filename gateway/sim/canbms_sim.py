"""A CAN-bus BMS simulator: a lithium battery sending the 0x35x frames once a second.

It speaks on any python-can bus (``virtual:NAME`` in one process: the demo and tests;
``socketcan:vcan0`` on a Linux host) through gateway/transports/can_raw.py, with the frame
layout of registers.canbms_frames (the driver decodes with the same table). Faults: ``silent``
(the BMS cable pulled: nothing is sent) and, with ``control``, a file that makes it silent
while it exists (the demo's unplug command); ``limits`` sets the charge/discharge limits
(0 A included: a BMS that forbids charging says so with a 0 A limit).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.core.components import cancel_and_wait
from registers.canbms_frames import encode_frames

if TYPE_CHECKING:
    from gateway.transports.can_raw import RawBus


class CanBmsSim:
    def __init__(
        self,
        interface: str,
        name: str = "PYLON",
        interval_s: float = 1.0,
        control: Path | None = None,
        source: Callable[[], Mapping[str, float]] | None = None,
    ) -> None:
        """``source``: the battery's values instead of the built-in curves (the demo's plant)."""
        from gateway.transports.can_raw import parse_raw_bus  # python-can: only when a BMS is simulated

        self.bus: RawBus = parse_raw_bus("simulator interface", interface)
        self.name = name
        self.interval_s = interval_s
        self.control = control
        self.source = source
        self.silent = False
        self.limits = {"/Info/MaxChargeVoltage": 53.2, "/Info/MaxChargeCurrent": 50.0}
        self.limits |= {"/Info/MaxDischargeCurrent": 100.0, "/Info/BatteryLowVoltage": 44.8}
        self.alarms: dict[str, int] = {}
        self.sent: dict[str, float] = {}  # the values of the last frames sent
        self.frames_sent = 0
        self._started = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> tuple[str, int]:  # an Endpoints entry: the bus (no TCP port)
        return (self.bus.label, 0)

    def values(self) -> dict[str, float]:
        if self.source is not None:
            return {**self.limits, **self.source()}
        t = time.monotonic() - self._started
        amps = round(-8.0 + 6.0 * math.sin(t / 120.0), 1)
        return {
            **self.limits,
            "/Soc": 76 - int(t // 60) % 20,
            "/Soh": 98,
            "/Dc/0/Voltage": round(51.8 + amps * 0.01, 2),
            "/Dc/0/Current": amps,
            "/Dc/0/Temperature": 21.4,
            "/System/MinCellVoltage": 3.231,
            "/System/MaxCellVoltage": 3.244,
            "/System/MinCellTemperature": 19.85,  # whole kelvins on the wire (293 K)
            "/System/MaxCellTemperature": 21.85,
        }

    def send_once(self) -> None:
        from gateway.transports.can_raw import RawFrame

        values = self.values()
        for can_id, data in encode_frames(values, self.alarms, self.name).items():
            self.bus.send(RawFrame(time.time(), can_id, False, data))
            self.frames_sent += 1
        self.sent = values

    async def start(self, *_: object) -> None:
        await self.bus.open()
        self._task = asyncio.create_task(self._run(), name="canbms sim")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        await self.bus.close()

    async def _run(self) -> None:
        while True:
            pulled = self.control is not None and self.control.exists()
            if not (self.silent or pulled):
                self.send_once()
            await asyncio.sleep(self.interval_s)
