"""The Bluetooth LE drivers' component: each configured sensor as a Store device.

A device is added at start with ``/Connected`` 0 and subscribes, by MAC address, to its
source's scanner (one per source for the whole gateway: ``ScannerPool`` in
``context.shared``). Each advertisement is decoded (``ble_decode``) and published; the first
one sets ``/Connected`` 1. A sensor not heard for 3 of its advertising intervals (2 s at
least, 9 s at most, so within 10 s with the 0.5 s check) goes ``/Connected`` 0 with its values
invalid. A fault (wrong key, corrupt payload, another manufacturer's advert at its address)
publishes nothing, is counted and logged once per kind and device, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from gateway.core.components import cancel_and_wait
from gateway.core.store import Store
from gateway.sources.ble_decode import BleFault, MopekaDecoder, RuuviDecoder, VictronDecoder
from gateway.sources.registry import DeviceConfig, SourceContext
from gateway.transports.ble_advert import Advert
from gateway.transports.ble_scan import Scanner, ScannerPool
from registers.ble import BleMap, ble_map
from registers.values import Scalar

log = logging.getLogger(__name__)

MIN_TIMEOUT_S: Final = 2.0
MAX_TIMEOUT_S: Final = 9.0
CHECK_S: Final = 0.5
PRODUCTS: Final = {"victron-ble": "Victron Bluetooth", "mopeka": "Mopeka Pro Check", "ruuvi": "RuuviTag"}


class Decoder(Protocol):
    def decode(self, advert: Advert) -> dict[str, Scalar]: ...


def decoder_for(kind: str, device: DeviceConfig, bmap: BleMap) -> Decoder:
    if kind == "victron-ble":
        return VictronDecoder(device.option("key"), device.option("service"), bmap)
    if kind == "mopeka":
        o = device.option
        return MopekaDecoder(o("fluid"), o("tank_height_mm"), o("capacity_m3"), o("curve"), bmap)
    return RuuviDecoder(bmap)


@dataclass
class Sensor:
    config: DeviceConfig
    service: str
    address: str
    source: str
    decoder: Decoder
    connected: bool = False
    last_seen: float = 0.0
    interval_s: float = 0.0  # smoothed gap between adverts
    paths: set[str] = field(default_factory=set)
    faults: set[str] = field(default_factory=set)  # kinds already logged
    rssi: int | None = None

    @property
    def timeout_s(self) -> float:
        return min(MAX_TIMEOUT_S, max(MIN_TIMEOUT_S, 3 * self.interval_s)) if self.interval_s else MAX_TIMEOUT_S


class BleDevices:
    label = "Bluetooth"

    def __init__(
        self,
        store: Store,
        devices: Sequence[DeviceConfig],
        context: SourceContext,
        kind: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.kind, self.clock = store, kind, clock
        pool = context.shared.setdefault("ble", ScannerPool())
        assert isinstance(pool, ScannerPool)
        self.pool = pool
        service = {"mopeka": "tank", "ruuvi": "temperature"}
        bmap = ble_map(context.cmap)  # mappings/ble: which library value goes to which path
        self.sensors = [
            Sensor(d, service.get(kind) or str(d.option("service")), d.option("address"), d.option("source"),
                   decoder_for(kind, d, bmap))
            for d in devices
        ]  # fmt: skip
        self.counts: Counter[str] = Counter()
        self._scanners: dict[str, Scanner] = {}
        self._listeners: dict[int, Callable[[Advert], None]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for s in self.sensors:
            fixed: dict[str, Scalar] = {
                "/Connected": 0,
                "/ProductName": PRODUCTS[self.kind],
                "/Mgmt/Connection": f"Bluetooth {s.address}",
                "/Mgmt/ProcessName": f"ble-{self.kind}",
                **s.config.config_values(s.service),
            }
            self.store.add_device(s.service, s.config.instance, values=fixed)
            self._scanners[s.source] = self.pool.subscribe(s.source, s.address, self._listener(s))
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        for s in self.sensors:
            await self.pool.unsubscribe(s.source, s.address, self._listeners.pop(id(s), _none))
            self.store.remove_device(s.service, s.config.instance)

    def health(self) -> str | None:
        problems = [f"{spec}: {sc.problem}" for spec, sc in self._scanners.items() if sc.problem]
        return "; ".join(problems) or None

    def stats(self) -> dict[str, Any]:
        return {
            "sensors": {s.address: {"connected": s.connected, "rssi": s.rssi} for s in self.sensors},
            "counts": dict(self.counts),
        }

    def _listener(self, sensor: Sensor) -> Callable[[Advert], None]:
        def heard(advert: Advert) -> None:
            self.on_advert(sensor, advert)

        self._listeners[id(sensor)] = heard
        return heard

    def on_advert(self, s: Sensor, advert: Advert) -> None:
        self.counts["adverts"] += 1
        try:
            values = s.decoder.decode(advert)
        except BleFault as fault:
            self.counts[fault.reason] += 1
            quiet = fault.reason == "other_manufacturer"  # e.g. a phone that took the address: counted only
            if not quiet and fault.reason not in s.faults:  # once per kind and sensor: not a flood
                s.faults.add(fault.reason)
                log.warning("%s %s (%s): %s; no values taken", self.label, s.address, self.kind, fault)
            return
        self.counts["decoded"] += 1
        now = self.clock()
        if s.last_seen and now > s.last_seen:
            gap = now - s.last_seen
            s.interval_s = gap if not s.interval_s else 0.7 * s.interval_s + 0.3 * gap
        s.last_seen, s.rssi = now, advert.rssi
        s.paths.update(values)
        if not s.connected:
            s.connected = True
            values["/Connected"] = 1
            log.info("%s %s: %s instance %d heard", self.label, s.address, s.service, s.config.instance)
        self.store.publish(s.service, s.config.instance, values)

    def check_timeouts(self) -> None:
        now = self.clock()
        for s in self.sensors:
            if s.connected and now - s.last_seen > s.timeout_s:
                s.connected = False
                self.counts["timeouts"] += 1
                self.store.publish(s.service, s.config.instance, {"/Connected": 0, **dict.fromkeys(s.paths)})
                log.info("%s %s: silent for %.0f s; /Connected 0", self.label, s.address, now - s.last_seen)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(CHECK_S)
            self.check_timeouts()


def _none(advert: Advert) -> None:
    return None
