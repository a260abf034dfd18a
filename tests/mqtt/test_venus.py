"""The Venus OS MQTT behaviour through Debian's Mosquitto, with a paho client as the peer:
keep-alive and full publish, change notifications, R/ reads, W/ writes through the write gate."""

from __future__ import annotations

import asyncio
import json

from tests.mqtt.rig import PORTAL, MqttRig, peer

N = f"N/{PORTAL}"


async def test_keepalive_publishes_everything_then_completed_with_the_echo(mqtt_rig: MqttRig) -> None:
    async with peer(mqtt_rig.broker, f"{N}/#") as p:
        keepalive = '{"keepalive-options": [{"full-publish-completed-echo": "ha-1"}]}'
        await p.publish(f"R/{PORTAL}/keepalive", keepalive)
        done = await p.completed("ha-1")
        assert isinstance(done["value"], int) and done["value"] > 1_700_000_000
        values = p.values()
        assert values[f"{N}/battery/512/Dc/0/Voltage"] == 52.31
        assert values[f"{N}/battery/512/ProductId"] == 0xA3E5
        assert values[f"{N}/battery/512/DeviceInstance"] == 512  # an identity path the driver lacks
        assert values[f"{N}/vebus/276/Mode"] == 3
        assert values[f"{N}/system/0/Serial"] == PORTAL
        # The completed message comes after every value, and only the serial is retained.
        topics = [t for t, _, _ in p.received]
        assert topics.index(f"{N}/full_publish_completed") > topics.index(f"{N}/vebus/276/Mode")
        assert {t for t, _, retained in p.received if retained} <= {f"{N}/system/0/Serial"}
        settings = next(json.loads(b) for t, b, _ in p.received if t.endswith("/Settings/CGwacs/AcPowerSetPoint"))
        assert settings["value"] == 50 and "min" in settings and "max" in settings


async def test_the_serial_is_retained_for_discovery(mqtt_rig: MqttRig) -> None:
    async with peer(mqtt_rig.broker, "N/+/system/0/Serial") as p:
        await p.wait_for(lambda: bool(p.received))
        topic, payload, retained = p.received[0]
        assert (topic, json.loads(payload), retained) == (f"{N}/system/0/Serial", {"value": PORTAL}, True)


async def test_changes_flow_only_while_a_keepalive_is_fresh(make_mqtt_rig: object) -> None:
    rig: MqttRig = await make_mqtt_rig(keepalive_s=1.0)  # type: ignore[operator]
    topic = f"{N}/battery/512/Soc"
    async with peer(rig.broker, f"{N}/battery/#") as p:
        rig.store.publish("battery", 512, {"/Soc": 70.0})
        await asyncio.sleep(0.3)
        assert topic not in p.values()  # nobody asked: nothing is sent
        await p.publish(f"R/{PORTAL}/keepalive", '{"keepalive-options": ["suppress-republish"]}')
        await asyncio.sleep(0.3)
        assert topic not in p.values()  # renewed, but no full publish
        rig.store.publish("battery", 512, {"/Soc": 71.0, "/Dc/0/Voltage": None})
        await p.wait_for(lambda: p.values().get(topic) == 71.0)
        await p.wait_for(lambda: f"{N}/battery/512/Dc/0/Voltage" in p.values())
        assert p.values()[f"{N}/battery/512/Dc/0/Voltage"] is None  # invalid = null
        await asyncio.sleep(1.1)  # the keep-alive runs out
        rig.store.publish("battery", 512, {"/Soc": 72.0})
        await asyncio.sleep(0.3)
        assert p.values()[topic] == 71.0


async def test_a_device_that_goes_leaves_empty_payloads(mqtt_rig: MqttRig) -> None:
    async with peer(mqtt_rig.broker, f"{N}/vebus/#", f"{N}/full_publish_completed") as p:
        await p.publish(f"R/{PORTAL}/keepalive")
        await p.completed()
        p.received.clear()
        mqtt_rig.store.remove_device("vebus", 276)
        await p.wait_for(lambda: f"{N}/vebus/276/Mgmt/Connection" in p.values())  # the last one
        assert all(payload == b"" for _, payload, _ in p.received)
        assert {f"{N}/vebus/276/Ac/Out/L1/P", f"{N}/vebus/276/ProductName"} <= set(p.values())


async def test_read_request_publishes_a_path_or_a_subtree(mqtt_rig: MqttRig) -> None:
    async with peer(mqtt_rig.broker, f"{N}/#") as p:
        await asyncio.sleep(0.2)
        p.received.clear()
        await p.publish(f"R/{PORTAL}/battery/512/Dc/0")
        await p.wait_for(lambda: f"{N}/battery/512/Dc/0/Power" in p.values())
        await asyncio.sleep(0.2)
        assert set(p.values()) == {f"{N}/battery/512/Dc/0/{x}" for x in ("Voltage", "Current", "Power")}
        await p.publish(f"R/{PORTAL}/battery/512/Soc")
        await p.wait_for(lambda: p.values().get(f"{N}/battery/512/Soc") == 81.5)


async def test_legacy_serial_keepalive_and_rate_limited_full_publishes(mqtt_rig: MqttRig) -> None:
    async with peer(mqtt_rig.broker, f"{N}/full_publish_completed") as p:
        for i in range(6):  # faster than three a second: coalesced, but every echo answered
            await p.publish(
                f"R/{PORTAL}/system/0/Serial", f'{{"keepalive-options": [{{"full-publish-completed-echo": "e{i}"}}]}}'
            )
        for i in range(6):
            await p.completed(f"e{i}")
        venus = mqtt_rig.frontend.venus
        assert venus is not None and 1 <= venus.full_publishes <= 3


async def test_a_write_goes_through_the_gate_as_the_mqtt_writer(mqtt_rig: MqttRig) -> None:
    async with peer(mqtt_rig.broker, f"{N}/vebus/276/Mode") as p:
        await p.publish(f"W/{PORTAL}/vebus/276/Mode", '{"value": 4}')
        await p.wait_for(lambda: mqtt_rig.store.get("vebus", 276, "/Mode") == 4)
        record = mqtt_rig.audit[-1]
        assert record.refusal is None and record.writer.frontend == "mqtt"
        assert record.writer.peer == f"127.0.0.1:{mqtt_rig.broker.port}"
        assert dict(record.changes) == {"/Mode": 4} and dict(record.old) == {"/Mode": 3}


async def test_bad_writes_change_nothing(mqtt_rig: MqttRig) -> None:
    before = {k: v.value for k, v in mqtt_rig.store.device("vebus", 276).values.items()}  # type: ignore[union-attr]
    async with peer(mqtt_rig.broker, f"{N}/#") as p:
        bad = [
            (f"W/{PORTAL}/vebus/276/Mode", "{not json", False),
            (f"W/{PORTAL}/vebus/276/Mode", '{"val": 4}', False),
            (f"W/{PORTAL}/vebus/276/Mode", '{"value": [4]}', False),
            (f"W/{PORTAL}/vebus/276/Mode", '{"value": 99}', False),  # out of the enum
            (f"W/{PORTAL}/vebus/276/Mode", '{"value": "on"}', False),  # wrong type
            (f"W/{PORTAL}/vebus/276/Mode", '{"value": 4}', True),  # retained: ignored
            (f"W/{PORTAL}/vebus/276/Ac/Out/L1/P", '{"value": 5}', False),  # read-only
            (f"W/{PORTAL}/vebus/276/No/Such/Path", '{"value": 5}', False),
            (f"W/{PORTAL}/nosuchservice/1/Mode", '{"value": 4}', False),
            (f"W/{PORTAL}/vebus/999/Mode", '{"value": 4}', False),  # no such device
            (f"W/{PORTAL}/vebus/abc/Mode", '{"value": 4}', False),
            (f"W/{PORTAL}/vebus/276/Modé", '{"value": 4}', False),  # unicode
        ]
        for topic, payload, retain in bad:
            await p.publish(topic, payload, retain=retain)
        venus = mqtt_rig.frontend.venus
        assert venus is not None
        await p.wait_for(lambda: venus.refused >= len(bad) - 1, timeout=5)
        await asyncio.sleep(0.2)
        after = {k: v.value for k, v in mqtt_rig.store.device("vebus", 276).values.items()}  # type: ignore[union-attr]
        assert after == before and mqtt_rig.owner.writes == []
        # A refused value is published again as it is, so a client that showed the wish snaps back.
        assert p.values().get(f"{N}/vebus/276/Mode") == 3
    await mqtt_rig.broker.stop()  # a retained W/ must not stay on the broker for the next test
    await mqtt_rig.broker.start()


async def test_writes_off_by_default_are_refused_and_audited(make_mqtt_rig: object) -> None:
    rig: MqttRig = await make_mqtt_rig(writes=False)  # type: ignore[operator]
    async with peer(rig.broker) as p:
        await p.publish(f"W/{PORTAL}/vebus/276/Mode", '{"value": 4}')
        await asyncio.sleep(0.3)
    assert rig.store.get("vebus", 276, "/Mode") == 3
    assert rig.audit and rig.audit[-1].refusal is not None and rig.audit[-1].refusal.refusal.name == "FORBIDDEN"


async def test_a_flood_of_writes_is_bounded(make_mqtt_rig: object) -> None:
    rig: MqttRig = await make_mqtt_rig()  # type: ignore[operator]
    rig.owner.delay_s = 0.5  # a slow device: writes pile up
    async with peer(rig.broker) as p:
        for i in range(2000):
            await p.publish(f"W/{PORTAL}/vebus/276/Hub4/L1/AcPowerSetpoint", f'{{"value": {i % 100}}}')
        venus = rig.frontend.venus
        assert venus is not None
        await p.wait_for(lambda: venus.refused > 1000, timeout=10)
    assert len(rig.owner.writes) <= 64
