"""The ``vedirect`` driver: Victron devices on VE.Direct ports (MPPTs, BMVs, SmartShunts ...).

One port, one device, over gateway/transports/serial.py (19200 baud 8N1, reopened after an
unplug). The text blocks pass registers.vedirect's framer (a bad checksum drops the block,
counted); the product id (PID) picks the product and its service from mappings/vedirect, and
that service's rows turn the block into GX paths — no Python per product or field.

- Start waits up to ``IDENTIFY_S`` for each port's first block, so a device that is there is
  in the Store (and the banner) when the gateway reports ready; a later one joins when it speaks.
- ``SILENCE_S`` without a valid block: every published value is invalidated and ``/Connected``
  is 0 (its unit id answers 0x0A); the next valid block brings it back by itself.
- An unknown product id, refused values (out of range: a checksum can pass by chance) and bad
  checksums are counted and logged at a bounded rate, never once per block.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Final

from gateway.core.components import cancel_and_wait
from gateway.core.keys import ConfigError
from gateway.core.loglimit import Throttle
from gateway.core.store import Device, Store, WriteRejected
from gateway.sources.registry import LINK, SERIAL_PORT, DeviceConfig, DriverSpec, SourceContext, port_or_link
from gateway.sources.vedirect_instances import assign
from gateway.transports.serial import SerialReader, SerialSettings
from registers.values import Scalar
from registers.vedirect import TextFramer, VeDirectMap, VeProduct, parse_pid, vedirect_map

log = logging.getLogger(__name__)

SILENCE_S: Final = 3.0
IDENTIFY_S: Final = 2.5  # a device sends a block about once a second
CHECK_EVERY_S: Final = 0.25


class VeDirectPort:
    """One VE.Direct port: bytes -> blocks -> the Store; the Store device's owner."""

    def __init__(self, store: Store, config: DeviceConfig, vmap: VeDirectMap, silence_s: float = SILENCE_S) -> None:
        self.store = store
        self.config = config
        self.vmap = vmap
        self.silence_s = silence_s
        self.path = str(config.options.get("port") or "")
        self.instance = config.instance  # -1 until assigned (a port without ``instance``)
        self.framer = TextFramer()
        self.reader = SerialReader(self.path, SerialSettings(baud=19200), self._data)
        self.product: VeProduct | None = None
        self.connected = False
        self.refused = 0
        self.identified = asyncio.Event()
        self._published: set[str] = set()
        self._last_block = 0.0
        self._bad_seen = 0
        self._throttle = Throttle(log)
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"vedirect {self.path}"

    def start(self, path: str | None = None) -> None:
        """Open the port (``path``: where the config's ``link`` resolved to) and read it."""
        if path:
            self.path = self.reader.path = path
        self.reader.start()
        self._task = asyncio.create_task(self._watch(), name=f"watch {self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        await self.reader.stop()
        if self.product is not None:
            self.store.remove_device(self.product.service, self.instance)

    # --- bytes in ------------------------------------------------------------------------
    def _data(self, data: bytes) -> None:
        for block in self.framer.feed(data):
            self._block(block)
        self.framer.take_hex()  # async HEX frames: nothing published from them yet
        bad = self.framer.bad_checksum + self.framer.garbage
        if bad != self._bad_seen:
            self._bad_seen = bad
            self._throttle.log(
                "bad", logging.WARNING, "%s: %d blocks dropped (bad checksum or garbage)", self.name, bad
            )

    def _block(self, block: Mapping[str, str]) -> None:
        pid_text = block.get("PID")
        if pid_text is not None:
            pid = parse_pid(pid_text)
            product = self.vmap.products.get(pid) if pid is not None else None
            if product is None:
                self._throttle.log(
                    "pid",
                    logging.WARNING,
                    "%s: product id %s is not in mappings/vedirect (nothing published)",
                    self.name,
                    pid_text,
                )
                return
            if (self.product is None or product.pid != self.product.pid) and not self._adopt(product):
                return
        if self.product is None:
            return  # a block without PID (a BMV's history half) before we know the device
        values, refused = self.vmap.decode(self.product.service, block)
        if refused:
            self.refused += refused
            self._throttle.log(
                "range", logging.WARNING, "%s: %d values refused (out of range)", self.name, self.refused
            )
        values.update(self._identity(block))
        self._published.update(values)
        values["/Connected"] = 1
        self._last_block = asyncio.get_running_loop().time()
        self.store.publish(self.product.service, self.instance, values)
        if not self.connected:
            self.connected = True
            log.info("%s: %s, %s %d", self.name, self.product.name, self.product.service, self.instance)
        self.identified.set()

    def _identity(self, block: Mapping[str, str]) -> dict[str, Scalar]:
        found: dict[str, Scalar] = {}
        if "SER#" in block:
            found["/Serial"] = block["SER#"]
        if "FW" in block:
            found["/FirmwareVersion"] = block["FW"]
        return found

    def _adopt(self, product: VeProduct) -> bool:
        """First sight of the product (or another one on this port): its Store device."""
        instance = self.instance
        if self.product is not None:
            self.store.remove_device(self.product.service, instance)
            self._published.clear()
        values: dict[str, Scalar] = {
            "/ProductId": product.pid,
            "/ProductName": product.name,
            "/Mgmt/Connection": f"VE.Direct {self.path}",
            "/Connected": 0,
            **self.config.config_values(product.service),
        }
        try:
            self.store.add_device(product.service, instance, owner=self, values=values)
        except ValueError:
            self._throttle.log(
                "clash",
                logging.ERROR,
                "%s: %s instance %d is taken by another device",
                self.name,
                product.service,
                instance,
            )
            self.product = None
            return False
        self.product = product
        return True

    # --- silence -------------------------------------------------------------------------
    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            if self.connected and loop.time() - self._last_block > self.silence_s:
                self._lost(f"no valid block for {self.silence_s:g} s")

    def _lost(self, why: str) -> None:
        self.connected = False
        assert self.product is not None
        values: dict[str, Scalar] = dict.fromkeys(self._published)
        values["/Connected"] = 0
        self.store.publish(self.product.service, self.instance, values)
        log.warning("%s: disconnected (%s)", self.name, why)

    # --- Owner ---------------------------------------------------------------------------
    async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
        if set(changes) <= {"/CustomName"}:
            self.store.publish(device.service, device.instance, changes)
            return
        raise WriteRejected(f"{self.name}: VE.Direct values are read-only here")


class VeDirectPorts:
    """All ``vedirect`` devices: one port each."""

    def __init__(self, store: Store, devices: Sequence[DeviceConfig], context: SourceContext) -> None:
        vmap = vedirect_map(context.cmap)
        self.context = context
        self.ports = [VeDirectPort(store, d, vmap) for d in devices]

    async def start(self) -> None:
        paths = {port: _path(port.config, self.context) for port in self.ports}
        unnumbered = [p for p in self.ports if p.instance < 0]
        if unnumbered:
            taken = [p.instance for p in self.ports if p.instance >= 0]
            book = assign(self.context.state_dir, [paths[p] for p in unnumbered], taken)
            for p in unnumbered:
                p.instance = book[paths[p]]
        for port in self.ports:
            port.start(paths[port])
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(IDENTIFY_S):
                await asyncio.gather(*(p.identified.wait() for p in self.ports))
        for port in self.ports:
            if not port.identified.is_set():
                log.info("%s: no VE.Direct block yet (%s); it joins when it sends", port.name, port.reader.reason)

    async def stop(self) -> None:
        for port in reversed(self.ports):
            await port.stop()


def _path(d: DeviceConfig, context: SourceContext) -> str:
    link = d.options.get("link")
    return context.endpoints.address(str(link))[0] if link else str(d.option("port"))


def one_per_port(devices: Sequence[DeviceConfig]) -> None:
    port_or_link("port")(devices)
    seen: dict[str, DeviceConfig] = {}
    for d in devices:
        if d.options.get("port") is None:
            continue
        first = seen.setdefault(str(d.option("port")), d)
        if first is not d:
            raise ConfigError(f"{d.where}.port: {d.option('port')} is already {first.where}'s (one device per port)")


SPEC: Final = DriverSpec(
    name="vedirect",
    doc="a Victron device on a VE.Direct port (MPPT, BMV, SmartShunt); the product id picks its service",
    keys=(SERIAL_PORT, LINK),
    service=lambda d: "vedirect",  # known from the product id at run time; instances unique among VE.Direct ports
    build=VeDirectPorts,
    rules=one_per_port,
    auto_instance=True,
)
