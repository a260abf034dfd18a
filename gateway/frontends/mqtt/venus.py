"""What a GX's broker plugin does, on the Store: notifications, keep-alive, R/ reads, W/ writes.

Transport-free: messages go to an ``Outbox`` (latest value per topic wins, never blocking the
Store) and incoming ones arrive through ``handle``; connection.py moves both over MQTT.

- ``N/<portal>/<service>/<instance>/<path>`` carries ``{"value": v}`` (null when invalid), not
  retained; a device that goes leaves an empty payload on each of its topics. Only
  ``N/<portal>/system/0/Serial`` is retained, so ``N/+/system/0/Serial`` finds the portal id.
- Changes are sent while a keep-alive (``R/<portal>/keepalive``, legacy
  ``R/<portal>/system/0/Serial``) came within ``keepalive_s``. A keep-alive publishes every
  topic, then ``full_publish_completed`` (``{"value": <unix time>}`` plus the client's
  ``full-publish-completed-echo``, which Home Assistant's library waits for), unless it asks
  ``suppress-republish``. Full publishes run at most three a second; a keep-alive in between is
  served by the next one, its echo included.
- ``W/`` goes through the one write gate as ``Writer("mqtt", <broker>)``; a refusal changes
  nothing, is logged rate-limited, and the current value is published again so a client that
  showed its wish sees the truth.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from gateway.core.loglimit import Throttle
from gateway.core.store import Device, Store
from gateway.core.writes import Refusal, WriteGate, Writer, WriteRefused
from gateway.frontends.mqtt.ha_discovery import Discovery
from gateway.frontends.mqtt.outbox import Outbox
from gateway.frontends.mqtt.topics import (
    EMPTY,
    BadPayload,
    Request,
    Topics,
    parse_keepalive,
    parse_write,
    value_payload,
)
from registers.model import CompiledMap
from registers.values import Scalar

log = logging.getLogger(__name__)

FULL_PUBLISH_INTERVAL_S: Final = 1 / 3  # at most three full publishes a second, as Venus
MAX_PENDING_WRITES: Final = 64  # W/ being carried out at once; more are refused (a flood)
# What every device shows, as on Venus (Home Assistant's library reads them to build devices).
IDENTITY_PATHS: Final = (
    "/ProductId",
    "/ProductName",
    "/DeviceInstance",
    "/CustomName",
    "/Connected",
    "/Mgmt/Connection",
)


class Venus:
    def __init__(
        self,
        store: Store,
        cmap: CompiledMap,
        gate: WriteGate,
        topics: Topics,
        outbox: Outbox,
        *,
        writes: bool = False,
        keepalive_s: float = 60.0,
        discovery: Discovery | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.paths = cmap.paths
        self.gate = gate
        self.topics = topics
        self.outbox = outbox
        self.writes = writes
        self.keepalive_s = keepalive_s
        self.discovery = discovery  # Home Assistant's: it sends no keep-alive, so changes always flow
        self.clock = clock
        self.writer = Writer("mqtt")
        self.throttle = Throttle(log)
        self.last_keepalive: float | None = None  # monotonic
        self.last_keepalive_wall: float | None = None
        self.full_publishes = 0
        self.refused = 0
        self._last_full = -FULL_PUBLISH_INTERVAL_S
        self._echoes: list[str | None] = []  # keep-alives waiting for the next full publish
        self._full_timer: asyncio.TimerHandle | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    # --- lifecycle -----------------------------------------------------------------------
    def start(self, peer: str) -> None:
        self.writer = Writer("mqtt", peer)
        self._unsubscribe = self.store.subscribe(self)
        self.connected()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._full_timer is not None:
            self._full_timer.cancel()
        for task in list(self._writes):
            task.cancel()
        await asyncio.gather(*self._writes, return_exceptions=True)

    @property
    def alive(self) -> bool:
        """A keep-alive came recently enough: changes are sent."""
        if self.discovery is not None:
            return True
        return self.last_keepalive is not None and self.clock() - self.last_keepalive < self.keepalive_s

    def publish_serial(self) -> None:
        """The retained one: clients find the portal id with ``N/+/system/0/Serial``."""
        self.outbox.put(self.topics.serial, value_payload(self.topics.portal), retain=True)

    def connected(self) -> None:
        """A (new) connection: the retained topics again, as a restarted broker lost them."""
        self.publish_serial()
        if self.discovery is not None:
            self.discovery.forget()
            for device in self.store.devices():
                self._announce(device, device.values)

    def _announce(self, device: Device, paths: Iterable[str]) -> None:
        if self.discovery is not None:
            for topic, document in self.discovery.new_documents(device, paths):
                self.outbox.put(topic, document, retain=True)

    # --- the Store's listener --------------------------------------------------------------
    def device_added(self, device: Device) -> None:
        self._announce(device, device.values)
        if self.alive:
            self._send_device(device)

    def device_removed(self, device: Device) -> None:
        for path in self._device_paths(device):
            self.outbox.put(self.topics.notify(device.service, device.instance, path), EMPTY)
        if self.discovery is not None:
            for topic, empty in self.discovery.removals(device):
                self.outbox.put(topic, empty, retain=True)

    def values_changed(self, device: Device, paths: Iterable[str]) -> None:
        if self.discovery is not None:
            self._announce(device, paths)
        if self.alive:
            for path in paths:
                self._send(device, path)

    # --- incoming --------------------------------------------------------------------------
    def handle(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """One message from the broker on the gateway's R/ or W/ tree."""
        request = self.topics.parse(topic)
        if request is None:
            self.throttle.log("topic", logging.INFO, "MQTT: ignored %s (not an R/ or W/ topic of this portal)", topic)
        elif request.kind == "W":
            self._write(request, payload, retain)
        elif (request.instance is None and request.service == "keepalive") or (
            request.service == "system" and request.instance == 0 and request.path == "/Serial"
        ):
            self._keepalive(payload)
        elif request.instance is not None:
            self._read(request)

    def _keepalive(self, payload: bytes) -> None:
        try:
            options = parse_keepalive(payload)
        except BadPayload as e:
            self.throttle.log("keepalive", logging.WARNING, "MQTT: keep-alive with a bad payload (%s); renewed", e)
            options = parse_keepalive(b"")
        self.last_keepalive = self.clock()
        self.last_keepalive_wall = time.time()
        if options.suppress_republish:
            if options.echo is not None:  # nothing to wait for: answer at once
                self._completed([options.echo])
            return
        self._echoes.append(options.echo)
        wait = self._last_full + FULL_PUBLISH_INTERVAL_S - self.clock()
        if wait <= 0:
            self._full_publish()
        elif self._full_timer is None:
            self._full_timer = asyncio.get_running_loop().call_later(wait, self._full_publish)

    def _full_publish(self) -> None:
        self._full_timer = None
        self._last_full = self.clock()
        self.full_publishes += 1
        self.publish_serial()
        for device in self.store.devices():
            self._send_device(device)
        echoes, self._echoes = self._echoes, []
        self._completed(echoes)

    def _completed(self, echoes: list[str | None]) -> None:
        for echo in dict.fromkeys(echoes):
            extra = {"full-publish-completed-echo": echo} if echo is not None else None
            # Keyed by echo: two clients' keep-alives in one window each get their own answer.
            key = f"{self.topics.completed}\0{echo}"
            self.outbox.put(self.topics.completed, value_payload(int(time.time()), extra=extra), key=key)

    def _read(self, request: Request) -> None:
        assert request.instance is not None
        device = self.store.device(request.service, request.instance)
        if device is None:
            self.throttle.log(
                "read", logging.INFO, "MQTT: R/ for %s %s: no such device", request.service, request.instance
            )
            return
        below = request.path + "/"
        for path in self._device_paths(device):
            if not request.path or path == request.path or path.startswith(below):
                self._send(device, path)

    def _write(self, request: Request, payload: bytes, retain: bool) -> None:
        where = f"{request.service}/{request.instance}{request.path}"
        if retain:  # Venus asks clients never to retain writes: an old one must not replay
            self._refused("retained", "MQTT: ignored a retained W/ %s (writes are never retained)", where)
            return
        if request.instance is None or not request.path:
            self._refused("topic", "MQTT: W/ %s names no device path", where)
            return
        try:
            value = parse_write(payload)
        except BadPayload as e:
            self._refused("payload", "MQTT: W/ %s refused: %s", where, e)
            return
        changes = {request.path: value}
        if not self.writes:
            off = WriteRefused(Refusal.FORBIDDEN, "MQTT writes are off ([mqtt] writes = false)")
            self.gate.refuse(self.writer, request.service, request.instance, changes, off)
            self._refused("off", "MQTT: W/ %s refused: %s", where, off.reason)
            return
        if len(self._writes) >= MAX_PENDING_WRITES:
            self._refused("flood", "MQTT: W/ %s dropped: %d writes already pending", where, len(self._writes))
            return
        task = asyncio.get_running_loop().create_task(self._carry_out(request.service, request.instance, changes))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _carry_out(self, service: str, instance: int, changes: dict[str, Scalar]) -> None:
        try:
            await self.gate.write(service, instance, changes, self.writer)
        except WriteRefused as e:
            self._refused(
                e.refusal.name, "MQTT: W/ %s/%s refused (%s): %s", service, instance, e.refusal.value, e.reason
            )
            device = self.store.device(service, instance)
            if device is not None:
                for path in changes:
                    if path in device.values:
                        self._send(device, path)

    def _refused(self, kind: str, msg: str, *args: object) -> None:
        self.refused += 1
        self.throttle.log(f"write-{kind}", logging.WARNING, msg, *args)

    # --- outgoing --------------------------------------------------------------------------
    def _device_paths(self, device: Device) -> Iterator[str]:
        yield from device.values
        if device.service != "settings":  # Venus's settings service is no device (and HA's library agrees)
            yield from (p for p in IDENTITY_PATHS if p not in device.values)

    def _send_device(self, device: Device) -> None:
        for path in self._device_paths(device):
            self._send(device, path)

    def _send(self, device: Device, path: str) -> None:
        reading = device.values.get(path)
        if reading is not None:
            payload = value_payload(reading.value, reading.valid, self._limits(device.service, path))
        else:
            payload = value_payload(_identity_default(device, path))
        self.outbox.put(self.topics.notify(device.service, device.instance, path), payload)

    def _limits(self, service: str, path: str) -> dict[str, Any] | None:
        """Settings carry their range beside the value, as Venus does."""
        if service != "settings":
            return None
        spec = self.paths.get(service, {}).get(path)
        if spec is None or (spec.minimum is None and spec.maximum is None):
            return None
        return {"max": spec.maximum, "min": spec.minimum}


def _identity_default(device: Device, path: str) -> Scalar:
    """What a device that does not publish an identity path shows for it."""
    defaults: dict[str, Scalar] = {
        "/ProductId": 0,
        "/ProductName": device.service,
        "/DeviceInstance": device.instance,
        "/CustomName": "",
        "/Connected": 1,
        "/Mgmt/Connection": "gx-gateway",
    }
    return defaults.get(path)
