"""The whole gateway with `[n2k]` on python-can's virtual bus: GET /api/v1/n2k reports the bus
budget and the claimed devices as the OpenAPI document says; without `[n2k]` it is a 404."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import aiohttp

from gateway.app import Gateway
from gateway.config import parse_config
from registers import load_default
from tests.n2k.rig import Peer, wait_for
from tests.web.openapi_check import check


def config(tmp: Path, n2k: dict[str, Any] | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "state_dir": str(tmp),
        "modbus": {"listen": "127.0.0.1:0"},
        "http": {"listen": "127.0.0.1:0"},
        "device": [
            {"driver": "simulated", "service": "battery", "instance": 512},
            {"driver": "simulated", "service": "tank", "instance": 20},
        ],
    }
    if n2k is not None:
        data["n2k"] = n2k
    return data


async def test_n2k_status_in_the_json_api(tmp_path: Path) -> None:
    channel = f"gxgw-{uuid.uuid4().hex[:8]}"
    peer = Peer(channel)
    gateway = Gateway(load_default(), parse_config(config(tmp_path, {"interface": f"virtual:{channel}"})))
    await gateway.start()
    try:
        assert gateway.http is not None and gateway.n2k is not None
        url = f"http://127.0.0.1:{gateway.http.sockets[0][1]}/api/v1/n2k"
        async with aiohttp.ClientSession() as s:
            assert await wait_for(lambda: all(vd.address is not None for vd in gateway.n2k.virtual_devices()), 5.0)  # type: ignore[union-attr]
            assert await wait_for(lambda: any(m.pgn == 127505 for m in peer.decoded()), 5.0, step=0.5)
            async with s.get(url) as r:
                body = await r.json()
                check("/api/v1/n2k", "get", r.status, body)
        assert r.status == 200 and body["up"] is True and body["interface"] == f"virtual:{channel}"
        assert {d["key"] for d in body["devices"]} == {
            "gateway",
            "battery/512/battery",
            "tank/20/tank",
            "system/0/relays",
        }
        assert all(isinstance(d["address"], int) for d in body["devices"])
        assert body["pgns"] == 4 and body["frames_sent"] > 0 and 0 < body["planned_bus_load"] < body["max_bus_load"]
        async with aiohttp.ClientSession() as s, s.get(url.replace("/api/v1/n2k", "/healthz")) as r:
            health = await r.json()
        assert health["checks"]["nmea 2000"] == "ok", health
    finally:
        await gateway.stop()
        peer.close()


async def test_n2k_status_is_404_without_the_section(tmp_path: Path) -> None:
    gateway = Gateway(load_default(), parse_config(config(tmp_path, None)))
    await gateway.start()
    try:
        assert gateway.http is not None and gateway.n2k is None
        url = f"http://127.0.0.1:{gateway.http.sockets[0][1]}/api/v1/n2k"
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            body = await r.json()
            check("/api/v1/n2k", "get", r.status, body)
        assert r.status == 404 and body == {"error": "NMEA 2000 is off"}
    finally:
        await gateway.stop()


async def test_healthz_says_when_the_n2k_transport_is_down(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "n2k.log"
    gateway = Gateway(load_default(), parse_config(config(tmp_path, {"interface": f"candump:{missing}"})))
    await gateway.start()
    try:
        assert gateway.http is not None
        url = f"http://127.0.0.1:{gateway.http.sockets[0][1]}/healthz"
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            health = await r.json()
        assert r.status == 503
        assert health["checks"]["nmea 2000"].startswith(f"candump:{missing} is down: ")
        assert health["checks"]["modbus"] == "ok"  # the rest is up
    finally:
        await gateway.stop()
