"""Any split of a request stream gives the right replies; garbage never kills the server.

The segmentation property drives the server's protocol object directly (the split points are
then exactly what the server receives, with no timing involved) and checks the replies against
a reference decoder written here. The garbage property uses the real server over sockets.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.store import Store
from gateway.frontends.modbus.server import Connection, ModbusServer
from registers import load_default
from tests.modbus_rig import BATTERY, VEBUS, RecordingOwner, adu, read_pdu


class ThreadedServer:
    """The real server on its own event loop thread, so blocking clients can drive it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda _loop, ctx: self.errors.append(ctx))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)

    async def _start(self) -> ModbusServer:
        store = Store()
        owner = RecordingOwner(store)
        store.add_device("battery", 512, owner, BATTERY)
        store.add_device("vebus", 276, owner, VEBUS)
        server = ModbusServer(load_default(), store, idle_timeout_s=2.0)
        await server.start("127.0.0.1", 0)
        return server

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    s = ThreadedServer()
    yield s
    s.stop()
    assert not s.errors, s.errors


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_all(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


# --- any segmentation: the server's framing against a reference decoder -------------------------
# The stream is fed straight into Connection.data_received, one call per piece, through a
# recording transport (the test's side of the socket), so the split points hypothesis picks
# are exactly the segments the server sees. Each reply is checked against a reply computed
# here, independently of the server, from the request bytes and a hand-written model of the
# rig's registers.


class RecordingTransport(asyncio.Transport):
    """The test's end of a connection: records what the server writes and how it closes."""

    def __init__(self) -> None:
        super().__init__({"peername": ("127.0.0.1", 50000)})
        self.sent = bytearray()
        self.closed = False
        self.paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        self.sent += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass  # everything written is recorded at once: never above a high-water mark


def words_of(text: str, n: int) -> list[int]:
    raw = text.encode("latin-1").ljust(2 * n, b"\x00")
    return list(struct.unpack(f">{n}H", raw))


def initial_model() -> dict[int, dict[int, int]]:
    """unit -> register -> word, as the rig's values must read (worked out by hand)."""
    battery = {  # unit 225 -> battery 512 (tests/modbus_rig.py BATTERY)
        256: 0xFFFF, 257: (-654) & 0xFFFF,  # /Dc/0/Power int32
        258: (-654) & 0xFFFF,  # /Dc/0/Power int16
        259: 5231,  # 52.31 V x100
        260: 0xFFFF,  # /Dc/1/Voltage absent: "not available"
        261: (-125) & 0xFFFF,  # -12.5 A x10
        266: 815,  # SOC 81.5 % x10
    }  # fmt: skip
    battery.update(zip(range(1336, 1344), words_of("House bank", 8), strict=True))  # string[8]
    vebus = {31: 9, 33: 3, 37: 0}  # unit 227 -> vebus 276: /State, /Mode, /Hub4/L1/AcPowerSetpoint
    return {225: battery, 227: vebus}


CMAP = load_default()
MAPPED = {*range(256, 262), 266, *range(1336, 1344), 31, 33, 37}  # mapped for some service type
WRITABLE = {33: range(1, 5), 37: range(-32768, 32767)}  # /Mode enum 1..4; int16 (0x7FFF = n/a)


def reference_reply(frame: bytes, model: dict[int, dict[int, int]]) -> bytes:
    """The reply to one request frame; a write updates ``model`` as the server must."""
    tid, pid, length, unit = struct.unpack_from(">HHHB", frame)
    assert pid == 0 and length == len(frame) - 6
    pdu = frame[7:]
    fc = pdu[0]

    def answer(body: bytes) -> bytes:
        return struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body

    def exception(code: int) -> bytes:
        return answer(bytes((fc | 0x80, code)))

    if fc in (3, 4):
        start, count = struct.unpack(">HH", pdu[1:])
        span = range(start, start + count)
        if not 1 <= count <= 125:
            return exception(0x03)
        if any(a not in MAPPED for a in span):
            return exception(0x02)
        regs = model.get(unit, {})
        if any(a not in regs for a in span):
            return exception(0x0A)
        return answer(struct.pack(f">BB{count}H", fc, 2 * count, *(regs[a] for a in span)))
    if fc in (6, 16):
        if fc == 6:
            start, value = struct.unpack(">HH", pdu[1:])
            values, echo = [value], pdu
        else:
            start, count, nbytes = struct.unpack_from(">HHB", pdu, 1)
            assert nbytes == 2 * count == len(pdu) - 6
            values, echo = list(struct.unpack_from(f">{count}H", pdu, 6)), pdu[:5]
        span = range(start, start + len(values))
        if any(a not in WRITABLE for a in span):
            return exception(0x02)
        regs = model.get(unit, {})
        if any(a not in regs for a in span):
            return exception(0x0A)
        for a, v in zip(span, values, strict=True):
            signed = v - 0x10000 if a == 37 and v >= 0x8000 else v
            if signed not in WRITABLE[a]:
                return exception(0x03)  # all or nothing: nothing written
        regs.update(zip(span, values, strict=True))
        return answer(echo)
    return exception(0x01)


def fc6(address: int, value: int) -> bytes:
    return struct.pack(">BHH", 6, address, value & 0xFFFF)


def fc16(address: int, values: list[int]) -> bytes:
    return struct.pack(f">BHHB{len(values)}H", 16, address, len(values), 2 * len(values), *(v & 0xFFFF for v in values))


# (unit, PDU): reads of numbers, an int32 and a string, writes that succeed and that fail, errors.
MENU: list[tuple[int, bytes]] = [
    (225, read_pdu(258, 4)),
    (225, read_pdu(256, 2, fc=4)),
    (225, read_pdu(266, 1)),
    (225, read_pdu(1336, 8)),
    (227, read_pdu(31, 1, fc=4)),
    (227, read_pdu(33, 1)),
    (227, read_pdu(37, 1)),
    *((227, fc6(33, mode)) for mode in (1, 2, 3, 4)),
    (227, fc6(33, 9)),  # not a /Mode: 03
    (227, fc16(37, [-1500])),
    (227, fc16(37, [250])),
    (225, read_pdu(0, 1)),  # unmapped: 02
    (225, read_pdu(259, 0)),  # count 0: 03
    (9, read_pdu(259, 1)),  # no device at unit 9: 0A
    (227, read_pdu(259, 1)),  # a battery register at the vebus: 0A
    (225, fc6(259, 1)),  # read-only: 02
    (225, bytes((43, 14, 1, 0))),  # unsupported function: 01
]


@st.composite
def segmented_streams(draw: st.DrawFn) -> tuple[list[bytes], list[bytes], list[bool]]:
    """Request frames, the stream cut into pieces, and whether to yield to the loop after each."""
    picks = draw(st.lists(st.sampled_from(MENU), min_size=1, max_size=12))
    first_tid = draw(st.integers(0, 0xFFFF))
    frames = [adu((first_tid + i) & 0xFFFF, unit, pdu) for i, (unit, pdu) in enumerate(picks)]
    stream = b"".join(frames)
    cuts = draw(st.lists(st.integers(1, len(stream) - 1), max_size=20, unique=True)) if len(stream) > 1 else []
    bounds = [0, *sorted(cuts), len(stream)]
    pieces = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    yields = draw(st.lists(st.booleans(), min_size=len(pieces), max_size=len(pieces)))
    return frames, pieces, yields


async def serve_pieces(pieces: list[bytes], yields: list[bool]) -> RecordingTransport:
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    store = Store()
    owner = RecordingOwner(store)
    store.add_device("battery", 512, owner, BATTERY)
    store.add_device("vebus", 276, owner, VEBUS)
    server = ModbusServer(CMAP, store)  # never listens: the test is the socket
    conn = Connection(server)
    transport = RecordingTransport()
    conn.connection_made(transport)
    for piece, pause in zip(pieces, yields, strict=True):
        conn.data_received(piece)
        if pause:  # let a pending write finish between pieces, or not
            await asyncio.sleep(0)
    for _ in range(1000):  # writes answered by the owner complete on the loop
        if conn.waiting is None:
            break
        await asyncio.sleep(0)
    assert conn.waiting is None and not conn.buf, "requests left unanswered"
    conn.connection_lost(None)
    assert not errors, errors
    return transport


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


@pytest.mark.parametrize("loop", LOOPS)
@settings(max_examples=150, deadline=None)
@given(case=segmented_streams())
def test_any_segmentation_gives_the_reference_replies(
    loop: str, case: tuple[list[bytes], list[bytes], list[bool]]
) -> None:
    frames, pieces, yields = case
    model = initial_model()
    expected = b"".join(reference_reply(f, model) for f in frames)
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        transport = runner.run(serve_pieces(pieces, yields))
    assert not transport.closed
    assert bytes(transport.sent) == expected


def test_reference_decoder_agrees_on_a_known_exchange() -> None:
    """The reference itself, checked on bytes worked out by hand."""
    model = initial_model()
    assert reference_reply(adu(7, 225, read_pdu(259, 1)), model) == bytes.fromhex("0007 0000 0005 e1 03 02 146f")
    assert reference_reply(adu(8, 227, fc6(33, 4)), model) == bytes.fromhex("0008 0000 0006 e3 06 0021 0004")
    assert reference_reply(adu(9, 227, read_pdu(33, 1, fc=4)), model) == bytes.fromhex("0009 0000 0005 e3 04 02 0004")
    assert reference_reply(adu(10, 9, read_pdu(259, 1)), model) == bytes.fromhex("000a 0000 0003 09 83 0a")


def test_one_byte_at_a_time() -> None:
    frames = [adu(tid, unit, pdu) for tid, (unit, pdu) in enumerate(MENU, start=1)]
    stream = b"".join(frames)
    model = initial_model()
    expected = b"".join(reference_reply(f, model) for f in frames)
    pieces = [stream[i : i + 1] for i in range(len(stream))]
    transport = asyncio.run(serve_pieces(pieces, [False] * len(pieces)))
    assert bytes(transport.sent) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(min_size=1, max_size=600))
def test_garbage_never_kills_the_server(server: ThreadedServer, garbage: bytes) -> None:
    port = server.server.port
    bystander = connect(port)
    victim = connect(port)
    victim.sendall(garbage)
    victim.settimeout(0.05)
    try:
        while victim.recv(4096):  # replies or EOF, either is fine
            pass
    except (TimeoutError, ConnectionResetError):
        pass
    victim.close()
    bystander.sendall(adu(77, 225, read_pdu(259, 1)))
    assert recv_all(bystander, 11) == struct.pack(">HHHBBBH", 77, 0, 5, 225, 3, 2, 5231)
    bystander.close()
    assert not server.errors, server.errors
