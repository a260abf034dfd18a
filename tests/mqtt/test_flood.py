"""10,000 W/ messages a second from one client (Debian's mosquitto_pub): the writes carried out
stay within ``write_rate``, the rest are refused and counted, and a Modbus poller of the same
Store keeps its answers coming."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time

import pytest
from pymodbus.client import ModbusTcpClient

from gateway.frontends.modbus.server import ModbusServer
from registers.model import CompiledMap
from tests.helpers import need_tool
from tests.mqtt.rig import PORTAL, MakeMqttRig, MqttRig, eventually

pytestmark = pytest.mark.interop

FLOOD = 10_000


class Poller(threading.Thread):
    """FC3 reads back to back from its own thread, as a SCADA beside the flood would."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        with ModbusTcpClient("127.0.0.1", port=self.port, timeout=2) as client:
            while not self.stop.is_set() and len(self.latencies) < 100_000:
                t0 = time.perf_counter()
                rr = client.read_holding_registers(3, count=10, device_id=227)  # vebus 276
                self.latencies.append(time.perf_counter() - t0)
                if rr.isError():
                    self.errors.append(str(rr))
                time.sleep(0.002)


async def test_ten_thousand_writes_a_second_are_rate_limited_and_modbus_is_unaffected(
    make_mqtt_rig: MakeMqttRig, cmap: CompiledMap
) -> None:
    pub = need_tool("mosquitto_pub")
    rig: MqttRig = await make_mqtt_rig(write_rate=50.0)
    server = ModbusServer(cmap, rig.store)
    await server.start("127.0.0.1", 0)
    poller = Poller(server.port)
    try:
        poller.start()
        await asyncio.sleep(0.3)
        before = len(poller.latencies)
        with tempfile.TemporaryFile("w+") as lines:
            lines.writelines(f'{{"value": {i % 100}}}\n' for i in range(FLOOD))
            lines.flush()
            lines.seek(0)
            t0 = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                pub,
                "-p",
                str(rig.broker.port),
                "-t",
                f"W/{PORTAL}/vebus/276/Hub4/L1/AcPowerSetpoint",
                "-l",
                stdin=lines,
            )
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            sent_s = time.monotonic() - t0
        venus = rig.frontend.venus
        assert venus is not None
        await eventually(lambda: venus.refused + len(rig.owner.writes) >= FLOOD, timeout=20)
        elapsed = time.monotonic() - t0
        carried = len(rig.owner.writes)
        assert sent_s < 2.0, f"mosquitto_pub took {sent_s:.2f} s for {FLOOD} messages: not a flood"
        assert venus.refused + carried == FLOOD  # every message either carried out or refused
        assert 1 <= carried <= 50.0 * elapsed + 50 + 5  # the rate and its one-second burst
        poller.stop.set()
        await asyncio.to_thread(poller.join, 5)
        during = poller.latencies[before:]
        assert not poller.errors
        assert len(during) > 50, "the poller stalled during the flood"
        print(
            f"flood: {FLOOD} W/ in {sent_s:.2f} s, carried {carried}, refused {venus.refused}, {len(during)} Modbus reads, max {1000 * max(during):.1f} ms"
        )
        assert max(during) < 1.0, f"a Modbus read took {max(during):.2f} s during the flood"
    finally:
        poller.stop.set()
        await server.stop()
