"""`gx-gateway export` against a running demo: the Home Assistant YAML round trip and the tags.

Every exported sensor must be a row of the compiled map (unit id, address, data type, count,
scale), and reading it as Home Assistant would (pymodbus, FC 3, the sensor's data type, times
its scale) must give the JSON API's value, taken between two equal reads of the registers.
"""

from __future__ import annotations

import csv
import io
import json
import struct
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymodbus.client import ModbusTcpClient

from gateway.cli.main import main
from registers import CompiledMap, load_default
from registers.model import ModbusRegister
from tests.demo_process import DemoProcess

HA_TYPES = {"int16": (1, ">h"), "uint16": (1, ">H"), "int32": (2, ">i"), "uint32": (2, ">I"), "uint64": (4, ">Q")}


@pytest.fixture(scope="module")
def cmap_() -> CompiledMap:
    return load_default()


def export(demo: DemoProcess, fmt: str, tmp_path: Path, *extra: str) -> str:
    out = tmp_path / f"export.{fmt}"
    assert main(["export", fmt, "--url", demo.url, "--output", str(out), *extra]) == 0
    return out.read_text(encoding="utf-8")


def compiled_row(cmap: CompiledMap, address: int) -> ModbusRegister:
    run = cmap.modbus.by_address[address]
    assert run.register.address == address, f"{address} is inside {run.register.path}, not its start"
    return run.register


def decode(sensor: dict[str, Any], registers: list[int]) -> float | str:
    data = struct.pack(f">{len(registers)}H", *registers)
    if sensor["data_type"] == "string":
        return data.split(b"\x00", 1)[0].decode("latin-1")
    raw: int = struct.unpack(HA_TYPES[sensor["data_type"]][1], data)[0]
    return raw * sensor["scale"]


def test_home_assistant_export_round_trip(demo: DemoProcess, tmp_path: Path, cmap_: CompiledMap) -> None:
    config = yaml.safe_load(export(demo, "homeassistant", tmp_path))
    (hub,) = config["modbus"]
    assert (hub["type"], hub["host"], hub["port"]) == ("tcp", "127.0.0.1", demo.port)
    sensors = hub["sensors"]
    present = {(d["type"], d["unit_id"]): d["instance"] for d in demo.json("/api/v1/devices")["devices"]}
    assert len({s["name"] for s in sensors}) == len(sensors) == len({s["unique_id"] for s in sensors})

    by_device: dict[tuple[str, int], list[tuple[dict[str, Any], ModbusRegister]]] = defaultdict(list)
    for s in sensors:
        r = compiled_row(cmap_, s["address"])
        assert s["input_type"] == "holding"
        if r.codec.form == "string":
            assert (s["data_type"], s["count"]) == ("string", r.codec.width), s
        else:
            assert s["data_type"] == r.codec.name and "count" not in s, s  # HA knows the width of its types
            assert HA_TYPES[s["data_type"]][0] == r.codec.width
            assert s["scale"] * r.scale == pytest.approx(1.0), (s, r.scale)
        instance = present[(r.service, s["device_address"])]  # a device of that service at that unit id
        by_device[(r.service, instance)].append((s, r))
    assert {k for k in by_device} == {(t, i) for (t, _), i in present.items()}

    compared = nonzero = 0
    client = ModbusTcpClient("127.0.0.1", port=demo.port, timeout=3, retries=0)
    assert client.connect()
    try:

        def read_all(rows: list[tuple[dict[str, Any], ModbusRegister]]) -> list[list[int]]:
            out = []
            for s, r in rows:
                rr = client.read_holding_registers(s["address"], count=r.codec.width, device_id=s["device_address"])
                assert not rr.isError(), (s, rr)
                out.append(rr.registers)
            return out

        for (service, instance), rows in sorted(by_device.items()):
            first = read_all(rows)
            values = demo.json(f"/api/v1/devices/{service}/{instance}")["values"]
            second = read_all(rows)
            for (s, r), a, b in zip(rows, first, second, strict=True):
                if a != b or r.derive is not None:  # moved meanwhile, or computed by the server
                    continue
                api = values.get(r.path, {"value": None})["value"]
                got = decode(s, a)
                if api is None:  # invalid or absent: reads as 0, as on a GX
                    assert got in (0, ""), (s, got)
                elif isinstance(api, str):
                    assert got == api[: 2 * r.codec.width], (s, got, api)
                else:
                    spec = r.spec  # a legacy 16-bit register clamps what it cannot carry (as a GX does)
                    if spec is not None and spec.carry_min is not None and spec.carry_max is not None:
                        api = min(max(api, spec.carry_min), spec.carry_max)
                    assert abs(got - api) <= 0.5 / abs(r.scale) + 1e-9, (s["name"], got, api)
                    nonzero += got != 0
                compared += 1
    finally:
        client.close()
    assert compared >= 0.8 * len(sensors), (compared, len(sensors))
    assert nonzero >= 50, nonzero  # the round trip compared real values, not only zeros


def test_csv_and_json_tags_are_the_compiled_map(demo: DemoProcess, tmp_path: Path, cmap_: CompiledMap) -> None:
    rows = list(csv.DictReader(io.StringIO(export(demo, "csv", tmp_path))))
    doc = json.loads(export(demo, "json", tmp_path))
    assert doc["modbus"] == {"host": "127.0.0.1", "port": demo.port}
    assert len(rows) == len(doc["tags"]) > 400
    for row, tag in zip(rows, doc["tags"], strict=True):
        assert {k: str(v) for k, v in tag.items()} == row
        r = compiled_row(cmap_, tag["address"])
        assert (tag["service"], tag["path"], tag["type"], tag["count"]) == (
            r.service,
            r.path,
            r.codec.name,
            r.codec.width,
        )
        assert tag["scale"] == r.scale and tag["access"] == ("W" if r.writable else "R")
        assert r.spec is not None and tag["unit"] == r.spec.unit
    units = {(t["service"], t["unit_id"]) for t in doc["tags"]}
    assert ("battery", 225) in units and ("vebus", 227) in units and ("system", 100) in units


def test_export_from_no_gateway_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "csv", "--host", "127.0.0.1", "--port", "1", "--output", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach the gateway at http://127.0.0.1:1" in err
    assert not (tmp_path / "x").exists()
