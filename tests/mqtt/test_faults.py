"""Faults: a broker that is not there at start, goes away and comes back; a slow broker (the
queue stays bounded and counts its drops); the embedded broker and its start-up errors."""

from __future__ import annotations

import asyncio
import socket

import pytest

from gateway.core.components import StartupError
from gateway.core.store import Store
from gateway.core.writes import WriteGate
from gateway.frontends.mqtt.component import MqttFrontend
from gateway.frontends.mqtt.options import MqttConfig
from gateway.frontends.mqtt.outbox import Outbox
from registers.model import CompiledMap
from tests.mqtt.rig import PORTAL, Mosquitto, MqttRig, eventually, mosquitto_binary, peer

N = f"N/{PORTAL}"


async def test_broker_restart_reconnects_and_the_next_keepalive_brings_everything(mqtt_rig: MqttRig) -> None:
    await mqtt_rig.broker.stop()
    await eventually(lambda: not mqtt_rig.frontend.status()["connected"])
    mqtt_rig.store.publish("battery", 512, {"/Soc": 42.0})  # changes while the broker is away
    assert mqtt_rig.frontend.status()["last_error"]
    await mqtt_rig.broker.start()
    await mqtt_rig.connected(timeout=10)  # back-off: retried within seconds
    async with peer(mqtt_rig.broker, f"{N}/#") as p:
        await p.publish(f"R/{PORTAL}/keepalive")
        await p.completed()
        assert p.values()[f"{N}/battery/512/Soc"] == 42.0
        assert p.values()[f"{N}/system/0/Serial"] == PORTAL
    assert mqtt_rig.frontend.connection is not None and mqtt_rig.frontend.connection.connects == 2


async def test_a_broker_missing_at_start_is_no_startup_failure(cmap: CompiledMap) -> None:
    broker = Mosquitto()  # its port is free: nothing listens yet
    store = Store()
    frontend = MqttFrontend(store, cmap, WriteGate(store, cmap), MqttConfig(broker=broker.url), lambda: PORTAL)
    await frontend.start()
    try:
        await asyncio.sleep(0.3)
        status = frontend.status()
        assert not status["connected"] and status["last_error"] and status["portal_id"] == PORTAL
        await broker.start()
        await eventually(lambda: frontend.status()["connected"], timeout=10)
    finally:
        await frontend.stop()
        await broker.stop()


def test_the_outbox_is_bounded_and_the_latest_value_wins() -> None:
    box = Outbox(limit=100)
    for i in range(300):  # a slow broker: nothing is taken meanwhile
        box.put(f"N/x/battery/512/Path{i}", b"first")
    assert len(box) == 100 and box.dropped == 200  # the oldest 200 pushed out, counted
    for i in range(10_000):  # the kept topics keep changing: each waits once, with its latest value
        box.put(f"N/x/battery/512/Path{200 + i % 100}", str(i).encode())
    assert len(box) == 100 and box.dropped == 200 and box.replaced == 10_000
    first = box.take(1)[0]
    assert (first.topic, first.payload) == ("N/x/battery/512/Path200", b"9900")
    box.give_back([first])  # a send that failed: first in line again
    assert box.take(1)[0] == first


async def test_embedded_broker_serves_clients(cmap: CompiledMap) -> None:
    mosquitto_binary()
    store = Store()
    store.add_device("battery", 512, None, {"/Soc": 55.0})
    config = MqttConfig(listen=("127.0.0.1", 0), portal_id=PORTAL)
    frontend = MqttFrontend(store, cmap, WriteGate(store, cmap), config, lambda: "unused")
    await frontend.start()
    try:
        assert frontend.broker is not None and frontend.address is not None
        probe = Mosquitto()
        probe.port = frontend.address.port
        await eventually(lambda: frontend.status()["connected"], timeout=10)  # subscribed
        async with peer(probe, f"{N}/#") as p:
            await p.publish(f"R/{PORTAL}/keepalive")
            await p.completed()
            assert p.values()[f"{N}/battery/512/Soc"] == 55.0
    finally:
        await frontend.stop()
    assert frontend.broker.process is None  # the child is gone


async def test_embedded_broker_on_a_busy_port_is_one_line(cmap: CompiledMap) -> None:
    mosquitto_binary()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        store = Store()
        config = MqttConfig(listen=("127.0.0.1", port))
        frontend = MqttFrontend(store, cmap, WriteGate(store, cmap), config, lambda: PORTAL)
        with pytest.raises(StartupError, match=f"127.0.0.1:{port}"):
            await frontend.start()
