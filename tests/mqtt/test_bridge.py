"""A fleet: each site's Mosquitto bridges N/ out and R/, W/ in to a central Mosquitto (the
bridge of docs/mqtt.md), and one client on the central broker sees both gateways' portal ids,
reads both and writes to one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.core.store import Store
from gateway.core.writes import WriteGate
from gateway.frontends.mqtt.component import MqttFrontend
from gateway.frontends.mqtt.options import MqttConfig
from registers.model import CompiledMap
from tests.modbus_rig import VEBUS, RecordingOwner
from tests.mqtt.rig import Mosquitto, eventually, peer

pytestmark = pytest.mark.interop


def bridge(name: str, central: Mosquitto) -> str:
    """The site broker's bridge section, as docs/mqtt.md shows it."""
    return (
        f"connection {name}\naddress 127.0.0.1:{central.port}\n"
        "topic N/# out 0\ntopic R/# in 0\ntopic W/# in 0\n"
        "cleansession true\nrestart_timeout 1\n"
    )


@pytest.fixture
async def brokers() -> AsyncIterator[list[Mosquitto]]:
    central = Mosquitto()
    sites = [Mosquitto(bridge(f"site{i}", central)) for i in (1, 2)]
    started = []
    try:
        for b in (central, *sites):
            await b.start()
            started.append(b)
        yield [central, *sites]
    finally:
        for b in reversed(started):
            await b.stop()


async def test_a_central_broker_sees_two_gateways_through_bridges(cmap: CompiledMap, brokers: list[Mosquitto]) -> None:
    central, *sites = brokers
    portals = ["a1a1a1a1a1a1", "b2b2b2b2b2b2"]
    frontends, stores = [], []
    for site, portal in zip(sites, portals, strict=True):
        store = Store()
        store.add_device("vebus", 276, RecordingOwner(store), VEBUS)
        config = MqttConfig(broker=site.url, portal_id=portal, writes=True)
        frontend = MqttFrontend(store, cmap, WriteGate(store, cmap), config, lambda: "unused")
        await frontend.start()
        frontends.append(frontend)
        stores.append(store)
    try:
        for f in frontends:
            await eventually(lambda f=f: f.status()["connected"])  # type: ignore[misc]
        async with peer(central, "N/+/system/0/Serial", "N/+/vebus/276/Mode") as p:
            for portal in portals:  # the bridges may come up after the retained serial: ask
                await p.publish(f"R/{portal}/keepalive")

            def seen() -> set[str]:
                return {t.split("/")[1] for t in p.values() if t.endswith("/system/0/Serial")}

            await p.wait_for(lambda: seen() == set(portals), timeout=10)
            await p.wait_for(lambda: all(p.values().get(f"N/{x}/vebus/276/Mode") == 3 for x in portals))
            await p.publish(f"W/{portals[1]}/vebus/276/Mode", '{"value": 4}')
            await eventually(lambda: stores[1].get("vebus", 276, "/Mode") == 4)
            assert stores[0].get("vebus", 276, "/Mode") == 3  # the other site is untouched
    finally:
        for f in frontends:
            await f.stop()
