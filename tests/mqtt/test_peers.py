"""Real peers: Debian's mosquitto_sub and mosquitto_pub, and Home Assistant's own Victron
library (victron-mqtt), which must find the installation and its devices and write through us."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.helpers import need_tool
from tests.mqtt.rig import PORTAL, MqttRig, eventually

pytestmark = pytest.mark.interop


async def run(*argv: str, timeout: float = 10.0) -> str:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return out.decode()


async def test_mosquitto_sub_sees_a_full_publish_and_mosquitto_pub_writes(mqtt_rig: MqttRig) -> None:
    sub, pub = need_tool("mosquitto_sub"), need_tool("mosquitto_pub")
    port = str(mqtt_rig.broker.port)
    # The battery's 11 topics (8 it has, 3 identity paths it lacks) and the completed message.
    topics = ("-t", f"N/{PORTAL}/battery/#", "-t", f"N/{PORTAL}/full_publish_completed")
    watch = asyncio.ensure_future(run(sub, "-p", port, "-v", *topics, "-W", "8", "-C", "12"))
    await asyncio.sleep(0.3)
    await run(pub, "-p", port, "-t", f"R/{PORTAL}/keepalive", "-n")
    lines = dict(line.split(" ", 1) for line in (await watch).splitlines() if " " in line)
    assert json.loads(lines[f"N/{PORTAL}/battery/512/Soc"]) == {"value": 81.5}
    assert f"N/{PORTAL}/full_publish_completed" in lines
    await run(pub, "-p", port, "-t", f"W/{PORTAL}/vebus/276/Mode", "-m", '{"value": 4}')
    await eventually(lambda: mqtt_rig.store.get("vebus", 276, "/Mode") == 4, timeout=2)


async def test_home_assistants_victron_library_finds_the_devices_and_writes(mqtt_rig: MqttRig) -> None:
    victron_mqtt = pytest.importorskip("victron_mqtt", reason="victron-mqtt (a test dependency) not installed")
    from victron_mqtt.writable_metric import WritableMetric

    hub = victron_mqtt.Hub(host="127.0.0.1", port=mqtt_rig.broker.port, username=None, password=None, use_ssl=False)
    await asyncio.wait_for(hub.connect(), 20)
    try:
        await asyncio.wait_for(hub.wait_for_first_refresh(), 20)
        assert hub.installation_id == PORTAL
        devices = {d.unique_id: d for d in hub.devices.values()}
        assert {"battery_512", "vebus_276"} <= set(devices)
        soc = next(m for m in devices["battery_512"].metrics if m.short_id == "battery_soc")
        assert soc.value == 81.5
        mode = next(m for m in devices["vebus_276"].metrics if m.short_id == "vebus_inverter_mode")
        assert isinstance(mode, WritableMetric)
        mode.set(victron_mqtt.InverterMode.OFF)
        await eventually(lambda: mqtt_rig.store.get("vebus", 276, "/Mode") == 4, timeout=2)
    finally:
        await hub.disconnect()
