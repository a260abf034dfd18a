"""The MQTT rig: Debian's Mosquitto on an ephemeral loopback port, a Store with a battery, a
MultiPlus and the settings, the frontend connected to that broker, and a real client (aiomqtt,
i.e. paho) to talk to it as Node-RED or Home Assistant would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from gateway.core.store import Store
from gateway.core.writes import AuditRecord, WriteGate
from gateway.frontends.mqtt.component import MqttFrontend
from gateway.frontends.mqtt.options import MqttConfig
from registers.model import CompiledMap
from tests.helpers import need_interop
from tests.modbus_rig import BATTERY, SETTINGS, VEBUS, RecordingOwner

PORTAL = "c0ffee000001"


async def eventually(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds (a state to look at: the Store, a status), or fail."""
    async with asyncio.timeout(timeout):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.02)


def mosquitto_binary() -> str:
    exe = shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto")
    need_interop(exe is not None, "Debian's mosquitto broker not installed (apt-get install mosquitto)")
    assert exe is not None
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """A broker process of our own (not the frontend's): it can be stopped and started again on
    the same port, as a broker restarts."""

    def __init__(self, extra: str = "") -> None:
        self.port = free_port()
        self.folder = tempfile.TemporaryDirectory(prefix="mqtt-rig-")
        self.conf = Path(self.folder.name) / "mosquitto.conf"
        base = f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        self.conf.write_text(base + extra)
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            mosquitto_binary(), "-c", str(self.conf), stderr=asyncio.subprocess.DEVNULL
        )
        for _ in range(100):
            with contextlib.suppress(OSError):
                _, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                return
            await asyncio.sleep(0.05)
        raise AssertionError("mosquitto did not start")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        self.process = None


@dataclass
class MqttRig:
    broker: Mosquitto
    store: Store
    gate: WriteGate
    owner: RecordingOwner
    frontend: MqttFrontend
    audit: list[AuditRecord] = field(default_factory=list)

    async def connected(self, timeout: float = 5.0) -> None:
        await eventually(lambda: self.frontend.status()["connected"], timeout)


MakeMqttRig = Callable[..., Awaitable[MqttRig]]


@pytest.fixture
async def mosquitto() -> AsyncIterator[Mosquitto]:
    broker = Mosquitto()
    await broker.start()
    yield broker
    await broker.stop()
    broker.folder.cleanup()


@pytest.fixture
async def make_mqtt_rig(cmap: CompiledMap, mosquitto: Mosquitto) -> AsyncIterator[MakeMqttRig]:
    frontends: list[MqttFrontend] = []

    async def make(**options: Any) -> MqttRig:
        store = Store()
        owner = RecordingOwner(store)
        store.add_device("battery", 512, owner, {**BATTERY, "/ProductId": 0xA3E5, "/Connected": 1})
        store.add_device("vebus", 276, owner, VEBUS)
        store.add_device("settings", 0, owner, SETTINGS)
        gate = WriteGate(store, cmap)
        config = MqttConfig(**{"broker": mosquitto.url, "portal_id": PORTAL, "writes": True, **options})
        frontend = MqttFrontend(store, cmap, gate, config, lambda: "000000000000")
        rig = MqttRig(mosquitto, store, gate, owner, frontend)
        gate.record_hooks.append(rig.audit.append)
        await frontend.start()
        frontends.append(frontend)
        await rig.connected()
        return rig

    yield make
    for f in frontends:
        await f.stop()


@pytest.fixture
async def mqtt_rig(make_mqtt_rig: MakeMqttRig) -> MqttRig:
    return await make_mqtt_rig()


class Peer:
    """A client of the broker, collecting what it receives (topic -> payloads, in order)."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.received: list[tuple[str, bytes, bool]] = []
        self._new = asyncio.Event()

    async def _collect(self) -> None:
        async for m in self.client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            self.received.append((m.topic.value, payload, bool(m.retain)))
            self._new.set()

    def values(self) -> dict[str, Any]:
        """The latest decoded value of every topic received (None for an empty payload)."""
        out: dict[str, Any] = {}
        for topic, payload, _ in self.received:
            out[topic] = json.loads(payload).get("value") if payload else None
        return out

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():  # a message, or a look every 50 ms (the Store may change alone)
                self._new.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new.wait(), 0.05)

    async def completed(self, echo: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        """The payload of the next full_publish_completed (with this echo)."""
        topic = f"N/{PORTAL}/full_publish_completed"

        def found() -> dict[str, Any] | None:
            for t, p, _ in self.received:
                body = json.loads(p) if t.endswith(topic) else None
                if body is not None and (echo is None or body.get("full-publish-completed-echo") == echo):
                    return dict(body)
            return None

        await self.wait_for(lambda: found() is not None, timeout)
        result = found()
        assert result is not None
        return result

    async def publish(self, topic: str, payload: str | bytes = b"", retain: bool = False) -> None:
        await self.client.publish(topic, payload, retain=retain)


@contextlib.asynccontextmanager
async def peer(broker: Mosquitto, *topics: str) -> AsyncIterator[Peer]:
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        for t in topics:
            await client.subscribe(t)
        p = Peer(client)
        task = asyncio.get_running_loop().create_task(p._collect())
        try:
            yield p
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
