"""Devices the control room serves itself: hub4 (the ESS loop's status and the scheduling
override 2716) and generator (startstop0, 3500-3512), as a GX's hub4control and generator
start/stop services publish them.

Writes reach ``write`` after the write gate checked path, access and range; a device-specific
refusal (``check``, e.g. a manual start while the generator is in error) says why. A volatile
path (the hub4 override) falls back to its safe value when it is not written again in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from gateway.core.store import Device, Store, WriteRejected
from registers.values import Scalar

Check = Callable[[Mapping[str, Scalar]], "str | None"]


class OwnedDevice:
    def __init__(
        self,
        store: Store,
        service: str,
        instance: int,
        values: Mapping[str, Scalar],
        writable: frozenset[str],
        *,
        volatile: Mapping[str, tuple[float, Scalar]] | None = None,
        check: Check | None = None,
    ) -> None:
        self.store, self.service, self.instance = store, service, instance
        self.values = dict(values)
        self.writable = writable
        self.volatile = dict(volatile or {})  # path -> (seconds, safe value)
        self.check = check
        self._expiry: dict[str, asyncio.TimerHandle] = {}

    def start(self) -> None:
        self.store.add_device(self.service, self.instance, owner=self, values=self.values)

    def stop(self) -> None:
        for handle in self._expiry.values():
            handle.cancel()
        self.store.remove_device(self.service, self.instance)

    def publish(self, values: Mapping[str, Scalar]) -> None:
        self.values.update(values)
        self.store.publish(self.service, self.instance, values)

    async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
        refused = [p for p in changes if p not in self.writable]
        if refused:
            raise WriteRejected(f"{self.service} does not take {', '.join(refused)}")
        why = self.check(changes) if self.check is not None else None
        if why is not None:
            raise WriteRejected(why)
        self.publish(changes)
        loop = asyncio.get_running_loop()
        for path in changes:
            if path in self.volatile:
                if path in self._expiry:
                    self._expiry.pop(path).cancel()
                seconds, safe = self.volatile[path]
                if seconds > 0 and changes[path] != safe:
                    self._expiry[path] = loop.call_later(seconds, self.publish, {path: safe})
