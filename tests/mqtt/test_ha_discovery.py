"""Home Assistant MQTT discovery: retained documents a plain HA turns into devices, sensors and
controls, whose state topics are the Venus ones (published without a keep-alive)."""

from __future__ import annotations

import json
from typing import Any

from tests.mqtt.rig import PORTAL, MakeMqttRig, eventually, peer


async def test_discovery_documents_sensors_selects_and_availability(make_mqtt_rig: MakeMqttRig) -> None:
    rig = await make_mqtt_rig(homeassistant_discovery=True)
    async with peer(rig.broker, "homeassistant/#", f"N/{PORTAL}/battery/512/Soc") as p:
        node = f"gxgw_{PORTAL}"

        def doc(topic: str) -> dict[str, Any] | None:
            found = [json.loads(b) for t, b, _ in p.received if t == topic and b]
            return found[-1] if found else None

        soc_topic = f"homeassistant/sensor/{node}_battery_512/soc/config"
        mode_topic = f"homeassistant/select/{node}_vebus_276/mode/config"
        await p.wait_for(lambda: doc(soc_topic) is not None and doc(mode_topic) is not None)
        soc, mode = doc(soc_topic), doc(mode_topic)
        assert soc is not None and mode is not None
        assert soc["state_topic"] == f"N/{PORTAL}/battery/512/Soc"
        assert soc["availability_topic"] == f"N/{PORTAL}/battery/512/Connected"
        assert (soc["unit_of_measurement"], soc["state_class"]) == ("%", "measurement")
        assert soc["device"]["identifiers"] == [f"{node}_battery_512"] and soc["device"]["name"] == "House bank"
        voltage = doc(f"homeassistant/sensor/{node}_battery_512/dc_0_voltage/config")
        assert voltage is not None and voltage["device_class"] == "voltage"
        assert mode["options"] == ["Charger Only", "Inverter Only", "On", "Off"]
        assert mode["command_topic"] == f"W/{PORTAL}/vebus/276/Mode"
        assert not any("settings" in t for t, _, _ in p.received)  # settings are no HA device
        # No keep-alive from a plain HA: the values flow all the same.
        rig.store.publish("battery", 512, {"/Soc": 64.0})
        await p.wait_for(lambda: p.values().get(f"N/{PORTAL}/battery/512/Soc") == 64.0)
        # A command as HA renders it lands through the write gate.
        await p.publish(mode["command_topic"], '{"value": 4}')
        await eventually(lambda: rig.store.get("vebus", 276, "/Mode") == 4)
        async with peer(rig.broker, mode_topic) as later:  # a HA that starts later finds them retained
            await later.wait_for(lambda: bool(later.received))
            assert later.received[0][2] is True
        # A device that goes takes its entities along (empty retained documents).
        rig.store.remove_device("battery", 512)
        await p.wait_for(lambda: any(t == soc_topic and b == b"" for t, b, _ in p.received))
