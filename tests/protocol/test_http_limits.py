"""HTTP hardening over real sockets (issue 11, finding 5): half-sent requests are closed, the
connection count is capped, bodies and headers are bounded, and HTTP can never take the file
descriptors Modbus needs."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gateway.core.store import Store
from gateway.frontends.http.api import HttpServer
from gateway.frontends.http.limits import HttpLimits, http_budget, raise_nofile
from registers import CompiledMap
from tests.gateway_process import gateway_process, write_config
from tests.modbus_rig import RawClient, read_pdu

LIMITS = HttpLimits(max_connections=20, header_timeout_s=0.5, body_timeout_s=0.5, max_body_bytes=1024)


@pytest.fixture
async def http(cmap: CompiledMap) -> AsyncIterator[HttpServer]:
    store = Store()
    store.add_device("battery", 512, None, {"/Soc": 81.5})
    server = HttpServer(store, cmap, limits=LIMITS)
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()


def port(server: HttpServer) -> int:
    return server.sockets[0][1]


async def closed_within(reader: asyncio.StreamReader, timeout: float) -> bool:
    try:
        while await asyncio.wait_for(reader.read(4096), timeout):
            pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def test_half_sent_requests_are_closed_at_the_header_deadline(http: HttpServer) -> None:
    conns = [await asyncio.open_connection("127.0.0.1", port(http)) for _ in range(15)]
    for _, w in conns:
        w.write(b"GET /api/v1/devices HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    silent = await asyncio.open_connection("127.0.0.1", port(http))  # connects, sends nothing
    results = await asyncio.gather(*(closed_within(r, 3.0) for r, _ in [*conns, silent]))
    assert all(results)
    assert http.guard.counts["closed: request headers not received in time"] == 16
    for _, w in [*conns, silent]:
        w.close()


async def test_connection_cap_then_served_again(http: HttpServer) -> None:
    held = [await asyncio.open_connection("127.0.0.1", port(http)) for _ in range(LIMITS.max_connections)]
    await asyncio.sleep(0.05)
    r, w = await asyncio.open_connection("127.0.0.1", port(http))
    assert await closed_within(r, 1.0)
    assert http.guard.counts["refused: connection limit"] >= 1
    w.close()
    for _, hw in held:
        hw.close()
    await asyncio.sleep(0.1)
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port(http)}/api/v1/devices") as resp:
        assert resp.status == 200


async def test_body_and_header_limits(http: HttpServer) -> None:
    base = f"http://127.0.0.1:{port(http)}"
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/api/v1/devices", data=b"x" * 5000) as resp:
            assert resp.status == 413
        async with s.get(f"{base}/api/v1/devices", headers={"X-Big": "y" * 10000}) as resp:
            assert resp.status in (400, 431)
    r, w = await asyncio.open_connection("127.0.0.1", port(http))
    w.write(b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")  # body stalls
    assert await closed_within(r, 3.0)
    assert http.guard.counts["closed: body not received in time"] == 1
    w.close()


def test_fd_budget_keeps_modbus_share() -> None:
    soft = raise_nofile()
    assert soft <= resource.getrlimit(resource.RLIMIT_NOFILE)[1] or resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 0
    assert http_budget(HttpLimits(max_connections=128), 1024, 64).max_connections == 128
    tight = http_budget(HttpLimits(max_connections=128), 256, 64)
    assert tight.max_connections == (256 - 64 - 64) // 2  # the rest stays Modbus's


def test_http_cannot_starve_modbus_at_a_low_fd_limit(tmp_path: Path) -> None:
    """The issue's case: a few hundred half-sent HTTP requests under a 256-descriptor limit."""
    with gateway_process(write_config(tmp_path), nofile=256) as gw:
        held: list[socket.socket] = []
        try:
            for _ in range(300):
                s = socket.create_connection(("127.0.0.1", gw.http), timeout=2)
                with contextlib.suppress(OSError):
                    s.sendall(b"GET / HTTP/1.1\r\n")
                held.append(s)

            async def modbus_clients() -> list[bytes]:
                clients = [await RawClient.connect(gw.modbus) for _ in range(12)]  # < max_per_address
                replies = [await c.request(100, read_pdu(2700, 1)) for c in clients]
                for c in clients:
                    await c.close()
                return replies

            replies = asyncio.run(modbus_clients())
            assert all(r[:2] == bytes((3, 2)) and struct.unpack(">h", r[2:4])[0] == 50 for r in replies)
        finally:
            for s in held:
                s.close()
