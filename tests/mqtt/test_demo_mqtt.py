"""`gx-gateway demo --mqtt-listen` served to Home Assistant's Victron library: it finds the
installation and every demo device, its values equal Modbus reads of the same moment, and a
write through it shows on Modbus within a second; an out-of-range W/ changes nothing."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import pytest

from tests.demo_process import DemoProcess
from tests.helpers import need_tool, parse_mbpoll, run_mbpoll
from tests.mqtt.rig import free_port, mosquitto_binary

pytestmark = pytest.mark.interop


class MqttDemo(DemoProcess):
    """The demo with its embedded broker; the banner gives the portal id and the devices."""

    def __init__(self) -> None:
        mosquitto_binary()
        self.mqtt_port = free_port()
        super().__init__(demo_options=("--mqtt-listen", f"127.0.0.1:{self.mqtt_port}"))
        p = re.search(r"portal id ([0-9a-f]{12})", self.banner)
        if p is None:
            self.stop()
            raise AssertionError(f"no portal id in the banner:\n{self.banner}")
        self.modbus_port = self.port
        self.portal = p.group(1)
        self.devices = set(re.findall(r"unit +[\d-]+ +([a-z]+ \d+)", self.banner))


@pytest.fixture(scope="module")
def demo() -> Iterator[MqttDemo]:
    d = MqttDemo()
    yield d
    d.stop()


def test_banner_prints_a_mosquitto_sub_line(demo: MqttDemo) -> None:
    assert f"mosquitto_sub -h 127.0.0.1 -p {demo.mqtt_port} -v -t 'N/{demo.portal}/#'" in demo.banner


async def modbus(demo: MqttDemo, unit: int, register: int) -> int:
    rc, out = await run_mbpoll(demo.modbus_port, "-a", str(unit), "-r", str(register), "-t", "4", "127.0.0.1")
    assert rc == 0, out
    return parse_mbpoll(out)[register]


async def test_home_assistants_library_against_the_demo(demo: MqttDemo) -> None:
    victron_mqtt = pytest.importorskip("victron_mqtt", reason="victron-mqtt (a test dependency) not installed")
    need_tool("mbpoll")
    hub = victron_mqtt.Hub(host="127.0.0.1", port=demo.mqtt_port, username=None, password=None, use_ssl=False)
    await asyncio.wait_for(hub.connect(), 20)
    try:
        await asyncio.wait_for(hub.wait_for_first_refresh(), 20)
        assert hub.installation_id == demo.portal
        found = {d.unique_id.replace("_", " ") for d in hub.devices.values()}
        assert demo.devices - {"settings 0"} <= found  # every demo device
        devices = {d.unique_id: d for d in hub.devices.values()}
        # The battery's SOC (%, x10 on Modbus unit 225 register 266) at the same moment.
        soc = next(m for m in devices["battery_512"].metrics if m.short_id == "battery_soc")
        assert soc.value is not None
        assert abs(await modbus(demo, 225, 266) / 10 - float(soc.value)) <= 0.2
        # A write through the library shows on Modbus within a second.
        mode = next(m for m in devices["vebus_276"].metrics if m.short_id == "vebus_inverter_mode")
        mode.set(victron_mqtt.InverterMode.OFF)
        deadline = time.monotonic() + 1.0
        while await modbus(demo, 227, 33) != 4:
            assert time.monotonic() < deadline, "the MQTT write did not reach Modbus within a second"
        # An out-of-range W/ changes nothing.
        pub = need_tool("mosquitto_pub")
        topic = f"W/{demo.portal}/vebus/276/Mode"
        proc = await asyncio.create_subprocess_exec(pub, "-p", str(demo.mqtt_port), "-t", topic, "-m", '{"value": 9}')
        await proc.wait()
        await asyncio.sleep(0.3)
        assert await modbus(demo, 227, 33) == 4
        mode.set(victron_mqtt.InverterMode.ON)
    finally:
        await hub.disconnect()
