"""/healthz, /metrics and /api/v1/status scraped from a running demo, as Prometheus and a
container health check would; metrics parsed with prometheus-client's own text parser."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families
from pymodbus.client import ModbusTcpClient

from tests.demo_process import DemoProcess

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(demo: DemoProcess) -> Samples:
    status, body = demo.get("/metrics")
    assert status == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def test_healthz_is_ok_with_every_part_named(demo: DemoProcess) -> None:
    status, body = demo.get("/healthz")
    assert status == 200, body
    health = json.loads(body)
    assert health["status"] == "ok" and health["problems"] == []
    assert health["checks"] == {
        "store": "ok",
        "modbus": "ok",
        "SimulatedSource": "ok",
        "bluetooth": "ok",  # the demo's replayed SmartShunt and Mopeka tank
        "nmea 2000 in": "ok",  # its replayed tank senders and thermometer
    }


def test_modbus_request_counter_grows_by_exactly_the_requests_sent(demo: DemoProcess) -> None:
    before = scrape(demo)
    client = ModbusTcpClient("127.0.0.1", port=demo.port, timeout=3, retries=0)
    assert client.connect()
    try:
        for _ in range(10):
            assert not client.read_holding_registers(840, count=4, device_id=100).isError()
        for _ in range(5):
            assert not client.read_input_registers(259, count=3, device_id=225).isError()
        for _ in range(3):  # no device at unit 17: exception 0A
            assert client.read_holding_registers(840, count=1, device_id=17).isError()
        assert not client.write_register(33, 3, device_id=227).isError()  # vebus /Mode = on
        bad = client.write_register(33, 9, device_id=227)  # not a /Mode value: exception 03
        assert bad.isError()
        during = scrape(demo)
    finally:
        client.close()
    after = scrape(demo)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew("gxgw_modbus_requests_total") == 20
    assert grew("gxgw_modbus_requests_total", function="3", unit_id="100") == 10
    assert grew("gxgw_modbus_requests_total", function="4", unit_id="225") == 5
    assert grew("gxgw_modbus_requests_total", function="3", unit_id="17") == 3
    assert grew("gxgw_modbus_requests_total", function="6", unit_id="227") == 2
    assert grew("gxgw_modbus_exceptions_total") == 4
    assert grew("gxgw_modbus_exceptions_total", function="3", unit_id="17", code="0x0A") == 3
    assert grew("gxgw_modbus_exceptions_total", function="6", unit_id="227", code="0x03") == 1
    assert grew("gxgw_writes_accepted_total", frontend="modbus") == 1
    assert grew("gxgw_writes_refused_total", frontend="modbus", reason="bad value") == 1
    assert total(during, "gxgw_modbus_connections") >= 1
    assert total(after, "process_resident_memory_bytes") > 1e6
    assert total(after, "process_cpu_seconds_total") > 0
    online = {dict(ls)["unit_id"]: v for (n, ls), v in after.items() if n == "gxgw_device_online"}
    assert online["225"] == 1 and online["227"] == 1, online


def test_status_api_lists_devices_with_unit_ids(demo: DemoProcess) -> None:
    status = demo.json("/api/v1/status")
    devices = {(d["service"], d["instance"]): d for d in status["devices"]}
    assert devices[("battery", 512)]["unit_id"] == 225
    assert devices[("battery", 512)]["name"] == "House bank"
    assert devices[("vebus", 276)]["unit_id"] == 227
    assert all(d["online"] for d in devices.values())
    assert status["modbus"]["listen"] == [["127.0.0.1", demo.port]]
    assert status["uptime_s"] >= 0 and status["health"]["modbus"] == "ok"
    # Where each [[device]] is polled (simulators resolved to their ports), for `scan --gateway`.
    sources = {(s["service"], s["instance"]): s for s in status["sources"]}
    assert sources[("pvinverter", 33)]["driver"] == "sunspec" and sources[("pvinverter", 33)]["position"] == "ac-in-1"
    assert sources[("grid", 34)]["driver"] == "meter" and "position" not in sources[("grid", 34)]
    allowed = {"driver", "host", "port", "unit", "role", "position", "model", "meter", "service", "instance", "online"}
    for s in status["sources"]:
        assert s["host"] == "127.0.0.1" and s["port"] > 0 and set(s) <= allowed, s
        assert (s["service"], s["instance"]) in devices
