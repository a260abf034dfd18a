"""/ws over a real socket: snapshot, changes, filters, and a client that stops reading.

The slow client is a raw TCP socket that completes the WebSocket handshake and then never
reads; the test floods changes (bounded in count) and checks that the gateway's memory stays
bounded, the reader is dropped, and a healthy client still gets every latest value.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import tracemalloc
from typing import Any

import aiohttp

from registers import CompiledMap
from tests.web.openapi_check import check_component
from tests.web.rig import web_rig


async def _next(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 3.0) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        body: dict[str, Any] = json.loads(msg.data)
        check_component({"snapshot": "Snapshot", "changes": "Changes", "error": "WsError"}[body["type"]], body)
        if body["type"] == kind:
            return body


async def test_snapshot_then_changes_then_filtered(cmap: CompiledMap) -> None:
    async with web_rig(cmap) as rig, aiohttp.ClientSession() as s, s.ws_connect(rig.base + "/ws") as ws:
        snap = await _next(ws, "snapshot")
        assert snap["values"]["battery/512"]["/Soc"] == rig.store.get("battery", 512, "/Soc")
        assert set(snap["values"]) == {f"{d.service}/{d.instance}" for d in rig.store.devices()}
        rig.store.publish("battery", 512, {"/Soc": 42.5, "/Dc/0/Temperature": None})
        changes = await _next(ws, "changes")
        assert changes["values"]["battery/512"] == {"/Soc": 42.5, "/Dc/0/Temperature": None}
        assert changes["values"]["system/0"]["/Dc/Battery/Soc"] == 42.5  # derived in the same loop turn: one message
        assert changes["removed"] == []

        await ws.send_str(json.dumps({"filter": {"services": ["com.victronenergy.battery"], "paths": ["/Soc"]}}))
        snap = await _next(ws, "snapshot")
        assert snap["values"] == {"battery/512": {"/Soc": 42.5}}
        rig.store.publish("vebus", 276, {"/Soc": 43.0})
        rig.store.publish("battery", 512, {"/Soc": 43.5, "/Dc/0/Voltage": 51.0})
        changes = await _next(ws, "changes")
        assert changes["values"] == {"battery/512": {"/Soc": 43.5}}

        await ws.send_str('{"filter": "battery"}')
        error = await _next(ws, "error")
        assert "services and/or paths" in error["error"]
        await ws.send_str(json.dumps({"filter": None}))
        snap = await _next(ws, "snapshot")
        assert "vebus/276" in snap["values"]
        rig.store.remove_device("digitalinput", 30)
        changes = await _next(ws, "changes")
        assert changes["removed"] == ["digitalinput/30"]


def _raw_websocket(port: int) -> socket.socket:
    """A client that shakes hands and then never reads (a tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_a_client_that_stops_reading_is_dropped_and_memory_stays_bounded(cmap: CompiledMap) -> None:
    paths = [f"/Flood/{i}" for i in range(100)]
    rounds, size = 400, 1000  # 40 MB of changes if they were all buffered for the slow client
    async with web_rig(cmap, ws_send_timeout_s=0.5) as rig, aiohttp.ClientSession() as s:
        rig.store.add_device("battery", 900, None, {p: "" for p in paths})
        slow = await asyncio.to_thread(_raw_websocket, rig.http.sockets[0][1])
        latest: dict[str, Any] = {}

        async with s.ws_connect(rig.base + "/ws") as healthy:

            async def read() -> None:
                async for msg in healthy:
                    body = json.loads(msg.data)
                    latest.update(body["values"].get("battery/900", {}))

            reader = asyncio.create_task(read())
            await asyncio.sleep(0.1)
            assert len(rig.http.hub.clients) == 2
            tracemalloc.start()
            base, _ = tracemalloc.get_traced_memory()
            backlog = 0
            try:
                for n in range(rounds):
                    rig.store.publish("battery", 900, {p: f"{n:06d}" + "x" * size for p in paths})
                    await asyncio.sleep(0.002)
                    for c in rig.http.hub.clients:
                        backlog = max(backlog, sum(len(v or {}) for v in c.pending.values()))
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert backlog <= len(paths)  # one entry per path at most: intermediate values skipped
            assert peak - base < 12_000_000, f"grew by {(peak - base) / 1e6:.1f} MB"
            for _ in range(100):
                if rig.http.hub.dropped:
                    break
                await asyncio.sleep(0.05)
            assert rig.http.hub.dropped == 1 and len(rig.http.hub.clients) == 1
            last = f"{rounds - 1:06d}"
            for _ in range(100):
                if all(str(latest.get(p, "")).startswith(last) for p in paths):
                    break
                await asyncio.sleep(0.02)
            assert all(str(latest[p]).startswith(last) for p in paths)
            reader.cancel()
        slow.close()
