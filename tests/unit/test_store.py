"""gateway/core/store.py: what publishers, listeners and writers can rely on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pytest

from gateway.core.store import Device, NoDevice, Store, WriteRejected, WriteTimeout
from registers.values import Scalar


@dataclass
class FakeClock:
    """A clock the test moves by hand."""

    now: float

    def __call__(self) -> float:
        return self.now


@dataclass
class Recorder:
    """A Store listener that writes down what it hears."""

    events: list[tuple[str, str, int, tuple[str, ...]]] = field(default_factory=list)

    def device_added(self, device: Device) -> None:
        self.events.append(("added", device.service, device.instance, ()))

    def device_removed(self, device: Device) -> None:
        self.events.append(("removed", device.service, device.instance, ()))

    def values_changed(self, device: Device, paths: Iterable[str]) -> None:
        self.events.append(("changed", device.service, device.instance, tuple(paths)))

    def changes(self) -> list[tuple[str, ...]]:
        return [paths for kind, _, _, paths in self.events if kind == "changed"]


class Broken(Recorder):
    """A listener with a bug: it raises on every event (after recording it)."""

    def device_added(self, device: Device) -> None:
        super().device_added(device)
        raise RuntimeError("listener bug on add")

    def values_changed(self, device: Device, paths: Iterable[str]) -> None:
        super().values_changed(device, paths)
        raise RuntimeError("listener bug on change")


@dataclass
class ApplyingOwner:
    """An owner that applies every write and remembers it."""

    store: Store
    writes: list[tuple[Device, dict[str, Scalar]]] = field(default_factory=list)

    async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
        self.writes.append((device, dict(changes)))
        self.store.publish(device.service, device.instance, changes)


@dataclass
class SilentOwner:
    """An owner that never answers: it waits for an event nobody sets."""

    never: asyncio.Event = field(default_factory=asyncio.Event)
    started: int = 0

    async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
        self.started += 1
        await self.never.wait()


@pytest.fixture
def clocks() -> tuple[FakeClock, FakeClock]:
    return FakeClock(1_700_000_000.0), FakeClock(100.0)


@pytest.fixture
def store(clocks: tuple[FakeClock, FakeClock]) -> Store:
    wall, mono = clocks
    s = Store(clock=wall, monotonic=mono)
    s.add_device("battery", 512, None, {"/Soc": 80, "/Dc/0/Voltage": 52.0})
    return s


# --- publish and changes -------------------------------------------------------------------------
def test_listeners_hear_only_real_changes(store: Store) -> None:
    rec = Recorder()
    store.subscribe(rec)
    assert rec.events == [("added", "battery", 512, ())]  # existing devices are announced at once
    store.publish("battery", 512, {"/Soc": 80, "/Dc/0/Voltage": 52.0})  # same values
    assert rec.changes() == []
    store.publish("battery", 512, {"/Soc": 81, "/Dc/0/Voltage": 52.0})
    assert rec.changes() == [("/Soc",)]
    store.publish("battery", 512, {"/Dc/0/Current": 3.5})  # a new path is a change
    assert rec.changes()[-1] == ("/Dc/0/Current",)


def test_int_to_float_of_equal_value_is_a_change(store: Store) -> None:
    rec = Recorder()
    store.subscribe(rec)
    store.publish("battery", 512, {"/Soc": 80.0})  # was int 80
    assert rec.changes() == [("/Soc",)]
    assert type(store.get("battery", 512, "/Soc")) is float
    store.publish("battery", 512, {"/Soc": 80.0})
    assert rec.changes() == [("/Soc",)]  # and then unchanged again


def test_valid_to_invalid_and_back_are_changes_but_invalid_to_invalid_is_not(store: Store) -> None:
    rec = Recorder()
    store.subscribe(rec)
    store.publish("battery", 512, {"/Soc": None})
    store.publish("battery", 512, {"/Soc": float("nan")})  # still not available: no change
    store.publish("battery", 512, {"/Soc": 79})
    assert rec.changes() == [("/Soc",), ("/Soc",)]


def test_last_seen_refreshed_by_every_publish_changed_only_by_a_change(
    store: Store, clocks: tuple[FakeClock, FakeClock]
) -> None:
    wall, mono = clocks
    device = store.device("battery", 512)
    assert device is not None
    first = device.values["/Soc"]
    assert (first.changed, first.last_seen) == (1_700_000_000.0, 100.0)

    wall.now, mono.now = 1_700_000_010.0, 110.0
    store.publish("battery", 512, {"/Soc": 80})  # unchanged
    reading = device.values["/Soc"]
    assert reading.last_seen == 110.0
    assert reading.changed == 1_700_000_000.0

    wall.now, mono.now = 1_700_000_020.0, 120.0
    store.publish("battery", 512, {"/Soc": 81})
    reading = device.values["/Soc"]
    assert (reading.value, reading.changed, reading.last_seen) == (81, 1_700_000_020.0, 120.0)
    # A path not in the publish keeps its own times.
    assert device.values["/Dc/0/Voltage"].last_seen == 100.0


@pytest.mark.parametrize("bad", [None, float("nan"), float("inf"), float("-inf")])
def test_none_nan_and_infinities_are_invalid(store: Store, bad: Scalar) -> None:
    store.publish("battery", 512, {"/Dc/0/Voltage": bad})
    device = store.device("battery", 512)
    assert device is not None
    reading = device.values["/Dc/0/Voltage"]
    assert reading.valid is False
    assert reading.value is None
    assert device.get("/Dc/0/Voltage") is None
    assert store.get("battery", 512, "/Dc/0/Voltage") is None


def test_invalid_values_given_at_add_device_are_invalid_too() -> None:
    s = Store()
    device = s.add_device("tank", 20, None, {"/Level": float("nan"), "/Capacity": 0.2})
    assert device.get("/Level") is None and device.values["/Level"].valid is False
    assert device.get("/Capacity") == 0.2


def test_publish_to_an_unknown_device_raises_nodevice(store: Store) -> None:
    with pytest.raises(NoDevice):
        store.publish("battery", 513, {"/Soc": 1})


# --- listener isolation --------------------------------------------------------------------------
def test_a_raising_listener_is_logged_and_isolated(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    before, broken, after = Recorder(), Broken(), Recorder()
    with caplog.at_level(logging.ERROR, logger="gateway.core.store"):
        for listener in (before, broken, after):
            store.subscribe(listener)
        assert store.listener_errors == 1  # its device_added for the existing battery
        store.publish("battery", 512, {"/Soc": 50})  # the publisher sees no exception
    assert store.listener_errors == 2
    for rec in (before, broken, after):
        assert rec.changes() == [("/Soc",)]  # everyone heard it, the broken one included
    assert "listener bug on change" in caplog.text
    assert "Broken" in caplog.text  # the log names the failing listener
    assert store.get("battery", 512, "/Soc") == 50


def test_a_raising_listener_does_not_stop_add_device(store: Store) -> None:
    rec = Recorder()
    store.subscribe(Broken())
    store.subscribe(rec)
    errors = store.listener_errors
    store.add_device("tank", 20)
    assert store.listener_errors == errors + 1
    assert rec.events[-1] == ("added", "tank", 20, ())
    assert store.device("tank", 20) is not None


# --- writes --------------------------------------------------------------------------------------
async def test_write_goes_to_the_owner() -> None:
    s = Store()
    owner = ApplyingOwner(s)
    device = s.add_device("vebus", 276, owner, {"/Mode": 3})
    await s.write("vebus", 276, {"/Mode": 4})
    assert owner.writes == [(device, {"/Mode": 4})]
    assert s.get("vebus", 276, "/Mode") == 4


async def test_write_to_an_unknown_device_raises_nodevice() -> None:
    s = Store()
    s.add_device("vebus", 276, ApplyingOwner(s))
    with pytest.raises(NoDevice):
        await s.write("vebus", 277, {"/Mode": 4})


async def test_write_to_a_device_without_owner_is_rejected() -> None:
    s = Store()
    s.add_device("battery", 512, None, {"/Relay/0/State": 0})
    with pytest.raises(WriteRejected):
        await s.write("battery", 512, {"/Relay/0/State": 1})
    assert s.get("battery", 512, "/Relay/0/State") == 0


async def test_owner_that_never_answers_times_out() -> None:
    s = Store()
    owner = SilentOwner()
    s.add_device("vebus", 276, owner, {"/Mode": 3})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(WriteTimeout):
        await s.write("vebus", 276, {"/Mode": 4}, timeout=0.05)
    assert owner.started == 1
    assert loop.time() - t0 < 1.0
    assert s.get("vebus", 276, "/Mode") == 3
