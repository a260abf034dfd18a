"""The ``canbms`` driver: a lithium battery's BMS on a CAN bus (the GX's BMS-Can port).

Frames (0x351, 0x355, 0x356, 0x35A, 0x35C, 0x35E, 0x373) are decoded by registers.canbms_frames
into the ``battery`` service: SOC, SOH, voltage, current, temperature, charge voltage and
current limits and the discharge limit (which the system overview takes into DVCC), alarms and
warnings, the manufacturer's name, min/max cell voltages and temperatures. A keep-alive
(0x305) goes out every second, as an inverter sends it. ``SILENCE_S`` without a frame: every
value is invalidated and ``/Connected`` is 0; the next frame brings it back. Short frames and
unknown ids are counted and logged at a bounded rate. python-can loads only when a canbms
device is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

from gateway.core.components import StartupError, cancel_and_wait
from gateway.core.keys import Key, text
from gateway.core.loglimit import Throttle
from gateway.core.store import Device, Store, WriteRejected
from gateway.sources.registry import LINK, DeviceConfig, DriverSpec, SourceContext, port_or_link
from registers.canbms_frames import KEEPALIVE_ID, KNOWN_IDS, decode_frame
from registers.values import Scalar

if TYPE_CHECKING:
    from gateway.transports.can_raw import RawBus

log = logging.getLogger(__name__)

SILENCE_S: Final = 4.5  # a BMS sends every second; pulled at any moment, 0A comes within 3.5-5 s
KEEPALIVE_S: Final = 1.0
BITRATE: Final = 500_000


class CanBms:
    """One BMS on one bus: frames -> the Store's battery device, which it owns."""

    def __init__(self, store: Store, config: DeviceConfig, silence_s: float = SILENCE_S) -> None:
        self.store = store
        self.config = config
        self.silence_s = silence_s
        self.interface = str(config.options.get("interface") or "")
        self.connected = False
        self.frames = 0
        self.short = 0
        self.unknown = 0
        self._published: set[str] = set()
        self._last = 0.0
        self._throttle = Throttle(log)
        self._bus: RawBus | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def name(self) -> str:
        return f"canbms {self.interface}"

    async def start(self, interface: str | None = None) -> None:
        """Open the bus (``interface``: where the config's ``link`` resolved to) and read it."""
        from gateway.transports.can_raw import parse_raw_bus  # python-can: only when configured

        self.interface = interface or self.interface
        where = f"{self.config.where}.interface"
        try:
            self._bus = parse_raw_bus(where, self.interface, BITRATE)
        except ValueError as e:
            raise StartupError(str(e)) from None  # names the key already
        try:
            await self._bus.open()
        except OSError as e:
            raise StartupError(f"{where} {self.interface}: {e}") from None
        except Exception as e:  # python-can's CanError family: no such interface, no driver
            raise StartupError(f"{where} {self.interface}: {e}") from None
        values: dict[str, Scalar] = {"/Connected": 0, "/Mgmt/Connection": f"CAN-bus BMS {self.interface}"}
        self.store.add_device(
            "battery", self.config.instance, owner=self, values={**values, **self.config.config_values("battery")}
        )
        self._tasks = [
            asyncio.create_task(self._read(), name=self.name),
            asyncio.create_task(self._tick(), name=f"{self.name} tick"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        if self._bus is not None:
            await self._bus.close()
        self.store.remove_device("battery", self.config.instance)

    async def _read(self) -> None:
        assert self._bus is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                frame = await self._bus.receive()
            except EOFError:
                log.info("%s: the replay has ended", self.name)
                return
            except Exception as e:  # python-can's CanError family (bus off, adapter gone): keep trying
                self._throttle.log("bus", logging.WARNING, "%s: cannot read the bus: %s", self.name, e)
                await asyncio.sleep(1.0)
                continue
            if frame.extended or frame.can_id not in KNOWN_IDS:
                self.unknown += 1
                self._throttle.log(
                    "unknown", logging.INFO, "%s: %d frames with ids it does not use", self.name, self.unknown
                )
                continue
            values, short = decode_frame(frame.can_id, frame.data)
            if short:
                self.short += short
                self._throttle.log(
                    "short", logging.WARNING, "%s: %d fields cut off by short frames", self.name, self.short
                )
            self.frames += 1
            self._last = loop.time()
            self._published.update(values)
            values["/Connected"] = 1
            self.store.publish("battery", self.config.instance, values)
            if not self.connected:
                self.connected = True
                log.info("%s: BMS talking, battery %d", self.name, self.config.instance)

    async def _tick(self) -> None:
        from gateway.transports.can_raw import RawFrame

        loop = asyncio.get_running_loop()
        ticks = 0
        while True:
            await asyncio.sleep(KEEPALIVE_S / 4)
            ticks += 1
            if self.connected and loop.time() - self._last > self.silence_s:
                self.connected = False
                gone: dict[str, Scalar] = dict.fromkeys(self._published)
                gone["/Connected"] = 0
                self.store.publish("battery", self.config.instance, gone)
                log.warning("%s: disconnected (no frame for %g s)", self.name, self.silence_s)
            if self._bus is not None and ticks % 4 == 0:
                with contextlib.suppress(Exception):  # a bus that refuses to send is a bus without keep-alive
                    self._bus.send(RawFrame(0.0, KEEPALIVE_ID, False, bytes(8)))

    async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
        if set(changes) <= {"/CustomName"}:
            self.store.publish(device.service, device.instance, changes)
            return
        raise WriteRejected(f"{self.name}: a BMS's values are measured and cannot be written")


class CanBmsGroup:
    def __init__(self, store: Store, devices: Sequence[DeviceConfig], context: SourceContext) -> None:
        self.context = context
        self.bms = [CanBms(store, d) for d in devices]

    async def start(self) -> None:
        started: list[CanBms] = []
        try:
            for b in self.bms:
                link = b.config.options.get("link")
                await b.start(self.context.endpoints.address(str(link))[0] if link else None)
                started.append(b)
        except BaseException:
            for b in reversed(started):  # a failed start leaves nothing running
                await b.stop()
            raise

    async def stop(self) -> None:
        for b in reversed(self.bms):
            await b.stop()


SPEC: Final = DriverSpec(
    name="canbms",
    doc="a lithium battery's BMS on a CAN bus (0x35x frames, 500 kbit/s), as a GX's BMS-Can port reads it",
    keys=(
        Key(
            "interface",
            None,
            text,
            "the bus: socketcan:can0, virtual:NAME (python-can, one process) or candump-replay:FILE",
        ),
        LINK,
    ),
    service=lambda d: "battery",
    build=CanBmsGroup,
    rules=port_or_link("interface"),
)
