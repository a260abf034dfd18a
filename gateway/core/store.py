"""The Store: the one live model of every device, ``(service type, instance) -> {path: Value}``.

Sources publish into it; frontends read it and subscribe to changes. Writes from frontends
are routed to the device's owner (a driver, the simulator, the settings service) and awaited
with a timeout. Nothing else holds device state.

Listeners are called synchronously on the event loop, inside ``publish``; they must be quick
(the Modbus frontend re-encodes a few bytes of a register image). A listener that raises is
logged and skipped: it never breaks the publisher (a driver's poll loop) or the other listeners.

Every reading knows its age twice over: ``changed`` (wall clock, when the value last changed)
and ``last_seen`` (monotonic, refreshed by every publish even of an unchanged value), so a
driver can tell a quiet device and the NMEA 2000 frontend can stop stale PGNs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from registers.values import Scalar, as_number, is_valid

__all__ = ["Device", "DeviceKey", "NoDevice", "Owner", "Reading", "Store", "WriteRejected", "WriteTimeout", "as_number"]

log = logging.getLogger(__name__)

DeviceKey = tuple[str, int]  # (service type, device instance), e.g. ("battery", 512)


@dataclass(slots=True)
class Reading:
    """A published value: the number or string, whether it is valid, when it changed (wall
    clock) and when it was last published (monotonic; refreshed even when unchanged)."""

    value: Scalar
    valid: bool
    changed: float
    last_seen: float


class WriteRejected(Exception):
    """The owner refused the write (the message says why)."""


class WriteTimeout(Exception):
    """The owner did not answer in time."""


class NoDevice(LookupError):
    """No device of that service type and instance."""


class Owner(Protocol):
    """Carries out writes for the devices it publishes (a driver, simulator or settings)."""

    async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
        """Apply all changes or none; publish the new values; raise WriteRejected to refuse."""


class Listener(Protocol):
    def device_added(self, device: Device) -> None: ...

    def device_removed(self, device: Device) -> None: ...

    def values_changed(self, device: Device, paths: Iterable[str]) -> None: ...


@dataclass(eq=False)
class Device:
    service: str
    instance: int
    owner: Owner | None = None
    values: dict[str, Reading] = field(default_factory=dict)

    @property
    def key(self) -> DeviceKey:
        return (self.service, self.instance)

    def get(self, path: str) -> Scalar:
        """The value at a path, or None when absent or invalid."""
        v = self.values.get(path)
        return v.value if v is not None and v.valid else None


class Store:
    def __init__(self, clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._devices: dict[DeviceKey, Device] = {}
        self._listeners: list[Listener] = []
        self._clock = clock
        self._monotonic = monotonic
        self.listener_errors = 0  # listeners that raised (diagnostics, tests)

    # --- devices -------------------------------------------------------------------------
    def add_device(
        self, service: str, instance: int, owner: Owner | None = None, values: Mapping[str, Scalar] | None = None
    ) -> Device:
        key = (service, instance)
        if key in self._devices:
            raise ValueError(f"device {service} instance {instance} already exists")
        device = Device(service, instance, owner)
        now, seen = self._clock(), self._monotonic()
        for path, v in (values or {}).items():
            device.values[path] = Reading(v, is_valid(v), now, seen)
        self._devices[key] = device
        for listener in list(self._listeners):
            self._notify(listener, "device_added", device)
        return device

    def remove_device(self, service: str, instance: int) -> None:
        device = self._devices.pop((service, instance), None)
        if device is not None:
            for listener in list(self._listeners):
                self._notify(listener, "device_removed", device)

    def device(self, service: str, instance: int) -> Device | None:
        return self._devices.get((service, instance))

    def devices(self, service: str | None = None) -> list[Device]:
        return [d for d in self._devices.values() if service is None or d.service == service]

    # --- values --------------------------------------------------------------------------
    def publish(self, service: str, instance: int, values: Mapping[str, Scalar]) -> None:
        """Set values (None, NaN, inf = invalid); every path's last-seen is refreshed, and
        listeners hear only about paths whose value changed."""
        device = self._devices.get((service, instance))
        if device is None:
            raise NoDevice(f"no device {service} instance {instance}")
        now, seen = self._clock(), self._monotonic()
        changed = []
        current = device.values
        for path, v in values.items():
            valid = is_valid(v)
            old = current.get(path)
            if old is not None and old.valid == valid and (not valid or _same(old.value, v)):
                old.last_seen = seen
                continue
            current[path] = Reading(v if valid else None, valid, now, seen)
            changed.append(path)
        if changed:
            for listener in list(self._listeners):
                self._notify(listener, "values_changed", device, changed)

    def invalidate(self, service: str, instance: int, paths: Iterable[str] | None = None) -> None:
        """Mark values invalid (a device went quiet): never leave stale numbers readable."""
        device = self._devices.get((service, instance))
        if device is None:
            return
        self.publish(service, instance, {p: None for p in (paths if paths is not None else list(device.values))})

    def get(self, service: str, instance: int, path: str) -> Scalar:
        device = self._devices.get((service, instance))
        return device.get(path) if device is not None else None

    # --- subscriptions -------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Listen to devices and changes; existing devices are announced at once."""
        self._listeners.append(listener)
        for device in list(self._devices.values()):
            self._notify(listener, "device_added", device)
        return lambda: self._listeners.remove(listener)

    def _notify(self, listener: Listener, event: str, *args: object) -> None:
        try:
            getattr(listener, event)(*args)
        except Exception:
            self.listener_errors += 1
            log.exception("store listener %s failed in %s; the others still run", type(listener).__name__, event)

    # --- writes --------------------------------------------------------------------------
    async def write(self, service: str, instance: int, changes: Mapping[str, Scalar], timeout: float = 2.0) -> None:
        """Route a validated write to the device's owner and wait for it (all or nothing)."""
        device = self._devices.get((service, instance))
        if device is None:
            raise NoDevice(f"no device {service} instance {instance}")
        if device.owner is None:
            raise WriteRejected(f"{service} instance {instance} takes no writes")
        try:
            async with asyncio.timeout(timeout):
                await device.owner.write(device, changes)
        except TimeoutError:
            raise WriteTimeout(f"{service} instance {instance} did not answer within {timeout:g} s") from None


def _same(a: Scalar, b: Scalar) -> bool:
    """Equal and of the same type (1 and 1.0 differ: a driver switching types is a change)."""
    return a == b and type(a) is type(b)
