"""The one loop every polled device runs: probe, poll, publish, invalidate, own the writes.

A driver supplies the device-specific parts (``DeviceDriver``: probe + poll plan + decode +
write hooks); this module supplies what every device needs the same way:

- the device is in the Store from the start with ``/Connected`` 0 (its unit id answers 0x0A
  until it is found), then every ``poll_interval_s`` one probe or poll;
- after ``MISSES_BEFORE_OFFLINE`` failed polls in a row its values are invalidated (never left
  stale) and ``/Connected`` is 0; it is probed again each interval (the link's jittered
  back-off keeps that cheap) and comes back by itself;
- it is the device's owner: writes come here, only valid ones (the write gate checked them),
  and are carried out by the driver while the device is online.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from collections.abc import Iterator, Mapping
from typing import Protocol

from gateway.core.components import cancel_and_wait
from gateway.core.store import Device, Store, WriteRejected
from gateway.sources.device_state import DeviceState, Phase
from gateway.transports.tcp import ModbusError
from registers.values import Scalar

log = logging.getLogger(__name__)


class ProbeFailed(ModbusError):
    """The device answers but is not what the driver looks for ("SunS" missing ...)."""


class DeviceDriver(Protocol):
    """The device-specific half of a polled device."""

    service: str  # the Store service type it publishes as

    def fixed_values(self) -> Mapping[str, Scalar]:
        """Values from the config (/Position, /CustomName): published once, never invalidated."""

    async def probe(self) -> Mapping[str, Scalar]:
        """Find and identify the device (raise ModbusError/ProbeFailed); its identity values."""

    async def poll(self) -> Mapping[str, Scalar]:
        """One poll: the values read (None = not available). Raise ModbusError when it failed."""

    async def write(self, changes: Mapping[str, Scalar]) -> Mapping[str, Scalar]:
        """Carry out checked changes (raise WriteRejected to refuse); the values to publish."""

    def lost(self) -> None:
        """The device went offline: forget what the probe found (it may come back different)."""


class DevicePoller:
    """Runs one device: a task that probes and polls, and the device's owner for writes."""

    def __init__(
        self, store: Store, instance: int, driver: DeviceDriver, interval_s: float, state: DeviceState
    ) -> None:
        self.store = store
        self.instance = instance
        self.driver = driver
        self.interval_s = interval_s
        self.state = state
        self.latencies: collections.deque[float] = collections.deque(maxlen=2048)  # seconds per poll
        self._published: set[str] = set()
        self._probed = False
        self._task: asyncio.Task[None] | None = None

    @property
    def service(self) -> str:
        return self.driver.service

    async def start(self) -> None:
        fixed = dict(self.driver.fixed_values())
        self.store.add_device(self.service, self.instance, owner=self, values={**fixed, "/Connected": 0})
        self._task = asyncio.create_task(self.run(), name=f"poll {self.state.name}")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        self.store.remove_device(self.service, self.instance)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        await self.step()  # the first probe at once, then polls at a random phase of the interval,
        next_at = loop.time() + random.uniform(0, self.interval_s)  # so 100 devices do not poll in lockstep
        while True:
            now = loop.time()
            if next_at > now:
                await asyncio.sleep(next_at - now)
            await self.step()
            next_at += self.interval_s
            if next_at < loop.time():  # a slow poll: start again from now, never a burst to catch up
                next_at = loop.time()

    async def step(self) -> None:
        """One probe or poll, and what follows from its outcome."""
        started = time.perf_counter()
        try:
            if not self._probed:
                values = dict(await self.driver.probe())
                self._probed = True
                values.update(await self.driver.poll())
            else:
                values = dict(await self.driver.poll())
        except ModbusError as e:
            self._missed(str(e))
            return
        self.latencies.append(time.perf_counter() - started)
        came_back = self.state.answered()
        self._published.update(values)
        values["/Connected"] = 1
        self.store.publish(self.service, self.instance, values)
        if came_back:
            log.info("%s: online", self.state.name)

    def _missed(self, error: str) -> None:
        if self.state.missed_poll(error):
            log.warning("%s: offline after %d missed polls: %s", self.state.name, self.state.missed, error)
        if self.state.phase is Phase.OFFLINE and (
            self._probed or self.store.get(self.service, self.instance, "/Connected")
        ):
            self._probed = False
            self.driver.lost()
            values: dict[str, Scalar] = dict.fromkeys(self._published)
            values["/Connected"] = 0
            self.store.publish(self.service, self.instance, values)

    # --- Owner ---------------------------------------------------------------------------
    async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
        if self.state.phase is not Phase.ONLINE or not self._probed:
            raise WriteRejected(f"{self.state.name} is {self.state.phase.value}")
        try:
            published = await self.driver.write(changes)
        except ModbusError as e:
            raise WriteRejected(f"{self.state.name}: {e}") from None
        if published:
            self.store.publish(self.service, self.instance, published)


class PollerGroup:
    """The pollers of one driver's component: started one by one, stopped last first."""

    def __init__(self) -> None:
        self.pollers: list[DevicePoller] = []

    def __getitem__(self, index: int) -> DevicePoller:
        return self.pollers[index]

    def __iter__(self) -> Iterator[DevicePoller]:
        return iter(self.pollers)

    def __len__(self) -> int:
        return len(self.pollers)

    async def start(self, poller: DevicePoller) -> None:
        await poller.start()
        self.pollers.append(poller)

    async def stop(self) -> None:
        for poller in reversed(self.pollers):
            await poller.stop()
        self.pollers.clear()
