"""`gx-gateway run` with ``candump-replay:`` of frames other people's devices sent: the raw
frames canboatjs keeps as its decoder's test data (a fuel tank sender and a battery at address
17, captured 2017-04-15; a battery monitor's DC Detailed Status at address 60, captured
2023-04-01), re-timed into a candump -L log that repeats them for a few seconds. The gateway
must publish their tanks and batteries, with the values canboat's own decoder reads."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymodbus.client import AsyncModbusTcpClient

from tests.gateway_process import gateway_process, write_config
from tests.n2k.test_canboatjs import analyzerjs

pytestmark = pytest.mark.interop

# (priority, PGN, source address, payload) exactly as captured; 127506 is a fast packet.
CAPTURED = [
    (6, 127505, 17, bytes.fromhex("00f236ea010000ff")),  # Fluid Level: fuel, 56.264 %, 49.0 L
    (6, 127508, 17, bytes.fromhex("01b605ff7fffff00")),  # Battery Status: instance 1, 14.62 V
    (2, 127506, 60, bytes.fromhex("ff03ff64ff1400ffffffff")),  # DC Detailed Status: 100 %, 20 min
]
SECONDS = 8.0


def can_frames(prio: int, pgn: int, src: int, data: bytes, seq: int) -> list[tuple[int, bytes]]:
    can_id = (prio << 26) | (pgn << 8) | src  # PDU2 PGNs: the PGN sits whole in the id
    if len(data) <= 8:
        return [(can_id, data)]
    head = bytes([(seq & 7) << 5, len(data)]) + data[:6]
    frames, rest, index = [(can_id, head)], data[6:], 1
    while rest:
        chunk = rest[:7]
        frames.append((can_id, bytes([((seq & 7) << 5) | index]) + chunk + b"\xff" * (7 - len(chunk))))
        rest, index = rest[7:], index + 1
    return frames


def write_capture(path: Path) -> None:
    t0, lines = 1_700_000_000.0, []
    for step in range(int(SECONDS / 0.5)):
        for prio, pgn, src, data in CAPTURED:
            for can_id, frame in can_frames(prio, pgn, src, data, step):
                lines.append(f"({t0 + step * 0.5:.6f}) can0 {can_id:08X}#{frame.hex().upper()}")
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


async def devices(http: int) -> dict[tuple[str, int], dict[str, Any]]:
    out: dict[tuple[str, int], dict[str, Any]] = {}
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{http}/api/v1/devices") as r:
            listed = (await r.json())["devices"]
        for d in listed:
            async with s.get(f"http://127.0.0.1:{http}/api/v1/devices/{d['type']}/{d['instance']}") as r:
                body = await r.json()
            out[(d["type"], d["instance"])] = body
    return out


def value(body: dict[str, Any], path: str) -> Any:
    return body["values"].get(path, {}).get("value")


async def test_a_real_capture_publishes_its_tank_and_batteries(tmp_path: Path) -> None:
    exe = analyzerjs()
    log = tmp_path / "capture.log"
    write_capture(log)
    proc = await asyncio.create_subprocess_exec(exe, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    stdout, _ = await asyncio.wait_for(proc.communicate(log.read_bytes()), 60)
    canboat = {(m["src"], m["pgn"]): m["fields"] for m in map(json.loads, stdout.decode().splitlines()) if "pgn" in m}

    config = write_config(tmp_path, f'[n2k]\ninterface = "off"\ninput = "candump-replay:{log}"\n')
    with gateway_process(config) as gw:
        deadline = time.monotonic() + SECONDS - 1
        found: dict[tuple[str, int], dict[str, Any]] = {}
        while time.monotonic() < deadline:
            found = await devices(gw.http)
            tanks = [b for (t, _), b in found.items() if t == "tank"]
            listed = [b for (t, _), b in found.items() if t == "battery"]
            if tanks and len(listed) >= 2 and all(value(b, "/Connected") == 1 for b in tanks + listed):
                break
            await asyncio.sleep(0.3)
        tanks = [b for (t, _), b in found.items() if t == "tank"]
        batteries = {value(b, "/Mgmt/Connection"): b for (t, _), b in found.items() if t == "battery"}
        assert len(tanks) == 1, found.keys()
        tank = tanks[0]
        fluid = canboat[(17, 127505)]
        assert fluid["Type"] == "Fuel" and value(tank, "/FluidType") == 0
        assert value(tank, "/Level") == pytest.approx(fluid["Level"], abs=0.01)  # 56.264 %
        assert value(tank, "/Capacity") == pytest.approx(fluid["Capacity"] / 1000, abs=1e-4)  # L -> m3
        by_address = {k: b for k, b in batteries.items() if k}
        assert len(by_address) == 2, batteries.keys()
        at17 = next(b for b in by_address.values() if value(b, "/Dc/0/Voltage") is not None)
        at60 = next(b for b in by_address.values() if b is not at17)
        assert value(at17, "/Dc/0/Voltage") == pytest.approx(canboat[(17, 127508)]["Voltage"], abs=0.005)  # 14.62
        assert value(at17, "/Dc/0/Current") is None  # "not available" in the capture: invalid, never 0
        detailed = canboat[(60, 127506)]
        assert value(at60, "/Soc") == pytest.approx(detailed["State of Charge"], abs=0.5)  # 100 %
        assert value(at60, "/TimeToGo") == pytest.approx(1200)  # 20 min, in seconds
        # and on Modbus (the GX list: 3001 /Capacity uint32 x10000, 3003 /FluidType, 3004 /Level x10)
        async with AsyncModbusTcpClient("127.0.0.1", port=gw.modbus) as client:
            rr = await client.read_holding_registers(3001, count=4, device_id=tank["unit_id"])
            assert not rr.isError(), rr
            assert rr.registers == [0, round(fluid["Capacity"] * 10), 0, round(fluid["Level"] * 10)]
