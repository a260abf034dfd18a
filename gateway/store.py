"""The Store: the one live model of every device, ``(service type, instance) -> {path: Value}``.

Sources publish into it; frontends read it and subscribe to changes. Writes from frontends
are routed to the device's owner (a driver, the simulator, the settings service) and awaited
with a timeout. Nothing else holds device state.

Listeners are called synchronously on the event loop, inside ``publish``; they must be quick
(the Modbus frontend re-encodes a few bytes of a register image).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from registers.types import Value as Scalar

DeviceKey = tuple[str, int]  # (service type, device instance), e.g. ("battery", 512)


@dataclass(frozen=True, slots=True)
class Value:
    """A published value: the number or string, whether it is valid, and when it was set."""

    value: Scalar
    valid: bool
    timestamp: float


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
    values: dict[str, Value] = field(default_factory=dict)

    @property
    def key(self) -> DeviceKey:
        return (self.service, self.instance)

    def get(self, path: str) -> Scalar:
        """The value at a path, or None when absent or invalid."""
        v = self.values.get(path)
        return v.value if v is not None and v.valid else None


class Store:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._devices: dict[DeviceKey, Device] = {}
        self._listeners: list[Listener] = []
        self._clock = clock

    # --- devices -------------------------------------------------------------------------
    def add_device(
        self, service: str, instance: int, owner: Owner | None = None, values: Mapping[str, Scalar] | None = None
    ) -> Device:
        key = (service, instance)
        if key in self._devices:
            raise ValueError(f"device {service} instance {instance} already exists")
        device = Device(service, instance, owner)
        now = self._clock()
        for path, v in (values or {}).items():
            device.values[path] = Value(v, _is_valid(v), now)
        self._devices[key] = device
        for listener in self._listeners:
            listener.device_added(device)
        return device

    def remove_device(self, service: str, instance: int) -> None:
        device = self._devices.pop((service, instance), None)
        if device is not None:
            for listener in self._listeners:
                listener.device_removed(device)

    def device(self, service: str, instance: int) -> Device | None:
        return self._devices.get((service, instance))

    def devices(self, service: str | None = None) -> list[Device]:
        return [d for d in self._devices.values() if service is None or d.service == service]

    # --- values --------------------------------------------------------------------------
    def publish(self, service: str, instance: int, values: Mapping[str, Scalar]) -> None:
        """Set values (None = invalid); listeners hear only about paths whose value changed."""
        device = self._devices.get((service, instance))
        if device is None:
            raise NoDevice(f"no device {service} instance {instance}")
        now = self._clock()
        changed = []
        current = device.values
        for path, v in values.items():
            valid = _is_valid(v)
            old = current.get(path)
            if old is not None and old.valid == valid and old.value == v and type(old.value) is type(v):
                continue
            current[path] = Value(v, valid, now)
            changed.append(path)
        if changed:
            for listener in self._listeners:
                listener.values_changed(device, changed)

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
            listener.device_added(device)
        return lambda: self._listeners.remove(listener)

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


def _is_valid(v: Scalar) -> bool:
    return v is not None and v == v  # NaN is invalid


def as_number(v: Scalar) -> float | None:
    """A valid number as float; None for absent, NaN, text and booleans."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:
        return float(v)
    return None
