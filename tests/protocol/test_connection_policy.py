"""The connection policy and back-pressure over real sockets: no client can lock out, starve
or disconnect the well-behaved (issue 11, findings 1, 2, 4, 8 and 10)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time

import pytest

from gateway.frontends.modbus import server as modbus_server
from tests.modbus_rig import MakeRig, RawClient, adu, read_pdu, words

BATTERY_UNIT = 225


async def connect_from(port: int, host: str) -> RawClient:
    """A client whose source address is ``host`` (any 127.x.y.z is loopback on Linux)."""
    r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(host, 0))
    return RawClient(r, w)


async def poll_ok(c: RawClient) -> bool:
    try:
        return words(await c.request(BATTERY_UNIT, read_pdu(259, 1))) == [5231]
    except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
        return False


# --- finding 1: trickled half-frames held every slot; now stalled ones make room -----------------
async def test_trickling_half_frames_cannot_lock_out_new_clients(make_rig: MakeRig) -> None:
    rig = await make_rig(max_connections=4)
    tricklers = [await RawClient.connect(rig.port) for _ in range(4)]
    frame = adu(1, BATTERY_UNIT, read_pdu(259, 1))
    for t in tricklers:
        await t.send(frame[:1])  # a frame started, never finished
    await asyncio.sleep(0.05)
    newcomer = await RawClient.connect(rig.port)
    assert await poll_ok(newcomer)  # one stalled connection made room
    closed = [await t.closed(timeout=0.2) for t in tricklers]
    assert sum(closed) == 1
    for c in (*tricklers, newcomer):
        await c.close()


async def test_a_started_frame_must_be_completed_within_frame_timeout(make_rig: MakeRig) -> None:
    rig = await make_rig(frame_timeout_s=0.4, idle_timeout_s=60.0)
    c = await RawClient.connect(rig.port)
    frame = adu(1, BATTERY_UNIT, read_pdu(259, 1))
    t0 = time.monotonic()
    for b in frame[:-1]:  # a byte every 0.1 s: never idle, never complete
        await c.send(bytes((b,)))
        if await c.closed(timeout=0.1):
            break
    assert await c.closed(timeout=1.0)
    assert 0.35 <= time.monotonic() - t0 < 1.5
    assert rig.server.policy.counts["closed: frame not completed in time"] == 1
    await c.close()


# --- finding 4: a regular poller is never closed to make room -----------------------------------
async def test_a_regular_poller_survives_an_idle_connection_flood(make_rig: MakeRig) -> None:
    rig = await make_rig(max_connections=8)
    poller = await RawClient.connect(rig.port)
    assert await poll_ok(poller) and await poll_ok(poller)
    flood: list[RawClient] = []
    answered = 0

    async def poll() -> None:
        nonlocal answered
        for _ in range(6):
            await asyncio.sleep(0.3)
            assert await poll_ok(poller), "the regular poller was closed"
            answered += 1

    async def open_idle() -> None:
        for _ in range(150):  # one every 10 ms, never used
            flood.append(await RawClient.connect(rig.port))
            await asyncio.sleep(0.01)

    await asyncio.gather(poll(), open_idle())
    assert answered == 6
    assert rig.server.policy.counts["closed to make room: never used"] >= 140
    for c in (poller, *flood):
        await c.close()


async def test_per_address_cap_and_the_address_holding_most_loses(make_rig: MakeRig) -> None:
    rig = await make_rig(max_connections=4, max_per_address=3)
    hog = [await connect_from(rig.port, "127.0.0.2") for _ in range(3)]
    other = await connect_from(rig.port, "127.0.0.3")
    await asyncio.sleep(0.05)
    newcomer = await connect_from(rig.port, "127.0.0.3")  # total cap: the hog's address loses one
    assert await poll_ok(newcomer)
    assert [await h.closed(timeout=0.2) for h in hog].count(True) == 1
    assert not await other.closed(timeout=0.05)
    for c in (*hog, other, newcomer):
        await c.close()
    # Per address: at its cap, one of the address's own connections makes room, never used first.
    rig = await make_rig(max_connections=100, max_per_address=2)
    unused = await RawClient.connect(rig.port)
    used = await RawClient.connect(rig.port)
    assert await poll_ok(used)
    third = await RawClient.connect(rig.port)
    assert await poll_ok(third)
    assert await unused.closed()
    assert await poll_ok(used)
    assert rig.server.policy.counts["closed to make room: never used"] == 1
    for c in (unused, used, third):
        await c.close()


async def test_newcomer_refused_when_every_rival_polls_regularly(make_rig: MakeRig) -> None:
    rig = await make_rig(max_connections=10, max_per_address=2)
    pollers = [await RawClient.connect(rig.port) for _ in range(2)]
    for p in pollers:
        assert await poll_ok(p) and await poll_ok(p)
    late = await RawClient.connect(rig.port)
    assert await late.closed()
    assert all([await poll_ok(p) for p in pollers])
    assert rig.server.refused == 1
    for c in (*pollers, late):
        await c.close()


# --- finding 2: a client that never reads its replies costs bounded memory ----------------------
async def test_a_client_that_never_reads_is_paused_then_closed(make_rig: MakeRig) -> None:
    rig = await make_rig(send_timeout_s=1.0)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # read nothing, buffer little
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", rig.port))
    burst = adu(1, 227, read_pdu(3, 125)) * 4096  # 49 kB of requests -> 1 MB of replies
    sent, most_buffered = 0, 0
    well_behaved = await RawClient.connect(rig.port)
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline and sent < 40_000_000:
        try:
            await asyncio.wait_for(loop.sock_sendall(sock, burst), 0.3)
        except TimeoutError:
            break  # the server stopped reading: back-pressure reached the sender
        except OSError:
            break  # already closed for not reading
        sent += len(burst)
        conns: list[modbus_server.Connection] = list(rig.server.connections)
        for conn in conns:
            if conn.transport is not None and not conn.transport.is_closing():
                most_buffered = max(most_buffered, conn.transport.get_write_buffer_size() + len(conn.buf))
        # The server's own buffers stay near the high-water mark, however much is offered.
        bound = 64 * 1024 + 256 * 259 + 256 * 1024  # high-water mark + one flush + one read
        assert most_buffered <= bound
        assert await poll_ok(well_behaved)
    assert sent < 40_000_000, "the server kept reading from a client that never reads"
    for _ in range(40):  # closed within send_timeout_s (+ a sweep)
        if rig.server.policy.counts["closed: not reading its replies"]:
            break
        await asyncio.sleep(0.1)
    assert rig.server.policy.counts["closed: not reading its replies"] == 1
    assert await poll_ok(well_behaved)
    sock.close()
    await well_behaved.close()


# --- finding 8: a 7-byte header with length 0 or 1 is judged at once ---------------------------
@pytest.mark.parametrize("length", [0, 1])
async def test_header_with_length_below_2_closes_without_an_eighth_byte(make_rig: MakeRig, length: int) -> None:
    rig = await make_rig(idle_timeout_s=30.0)
    c = await RawClient.connect(rig.port)
    await c.send(struct.pack(">HHHB", 1, 0, length, BATTERY_UNIT))
    assert await c.closed(timeout=1.0)
    await c.close()


# --- finding 10: a flood of bad clients writes a bounded amount of log --------------------------
async def test_a_thousand_bad_clients_log_a_few_lines(make_rig: MakeRig, caplog: pytest.LogCaptureFixture) -> None:
    rig = await make_rig(allow=["10.0.0.0/8"])
    bad = await make_rig(max_per_address=100)
    caplog.set_level(logging.DEBUG, logger="gateway")

    async def one(port: int, payload: bytes) -> None:
        c = await RawClient.connect(port)
        with contextlib.suppress(ConnectionError):
            await c.send(payload)
        await c.closed(timeout=2.0)
        await c.close()

    for _ in range(20):  # 1000 connections: 500 refused by the allow-list, 500 malformed headers
        await asyncio.gather(*(one(rig.port, b"") for _ in range(25)))
        await asyncio.gather(*(one(bad.port, b"\x00\x01\x00\x07\x00\x00\x01\x03") for _ in range(25)))
    lines = [r for r in caplog.records if r.name.startswith("gateway.frontends.modbus")]
    assert len(lines) <= 4, [r.getMessage() for r in lines]
    assert sum(len(r.getMessage()) for r in lines) < 1000
    assert rig.server.policy.counts["refused: not in the allow-list"] == 500
    assert bad.server.policy.counts["closed: malformed MBAP header"] == 500
