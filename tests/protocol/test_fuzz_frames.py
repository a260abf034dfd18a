"""Fuzz at a running server (issue 11): hypothesis-driven streams of valid, invalid and random
MBAP frames over a real socket; a well-behaved client on its own persistent connection keeps
getting correct answers throughout, and the server logs no unhandled error."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.modbus_rig import adu, read_pdu
from tests.protocol.test_stream_robustness import ThreadedServer, connect, recv_all

UNITS = st.sampled_from([0, 100, 225, 227, 9, 255])
ADDRESSES = st.one_of(st.sampled_from([3, 33, 259, 266, 1336, 2700, 2901]), st.integers(0, 65535))


@st.composite
def valid_frame(draw: st.DrawFn) -> bytes:
    fc = draw(st.sampled_from([3, 4, 6, 16, 23]))
    unit, addr = draw(UNITS), draw(ADDRESSES)
    if fc in (3, 4):
        pdu = read_pdu(addr, draw(st.integers(0, 130)), fc)
    elif fc == 6:
        pdu = struct.pack(">BHH", 6, addr, draw(st.integers(0, 0xFFFF)))
    else:
        values = draw(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=4))
        data = struct.pack(f">{len(values)}H", *values)
        if fc == 16:
            pdu = struct.pack(">BHHB", 16, addr, len(values), len(data)) + data
        else:
            pdu = struct.pack(">BHHHHB", 23, draw(ADDRESSES), draw(st.integers(0, 10)), addr, len(values), len(data))
            pdu += data
    return adu(draw(st.integers(0, 0xFFFF)), unit, pdu)


@st.composite
def invalid_frame(draw: st.DrawFn) -> bytes:
    tid, unit = draw(st.integers(0, 0xFFFF)), draw(UNITS)
    pdu = draw(st.binary(min_size=0, max_size=260))
    protocol = draw(st.sampled_from([0, 0, 1, 0xFFFF]))
    length = draw(st.one_of(st.just(len(pdu) + 1), st.integers(0, 0xFFFF)))
    return struct.pack(">HHHB", tid, protocol, length, unit) + pdu


STREAMS = st.lists(st.one_of(valid_frame(), invalid_frame(), st.binary(min_size=1, max_size=40)), max_size=12)


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    s = ThreadedServer()
    yield s
    s.stop()
    assert not s.errors, s.errors


@pytest.fixture(scope="module")
def bystander(server: ThreadedServer) -> Iterator[socket.socket]:
    sock = connect(server.server.port)
    yield sock
    sock.close()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=STREAMS)
def test_fuzzed_streams_never_disturb_a_well_behaved_client(
    server: ThreadedServer, bystander: socket.socket, stream: list[bytes]
) -> None:
    victim = connect(server.server.port)
    try:
        victim.sendall(b"".join(stream))
        victim.settimeout(0.05)
        while victim.recv(65536):
            pass
    except (TimeoutError, ConnectionResetError, BrokenPipeError):
        pass
    finally:
        victim.close()
    bystander.sendall(adu(77, 225, read_pdu(266, 1)))  # battery /Soc, x10
    assert recv_all(bystander, 11) == struct.pack(">HHHBBBH", 77, 0, 5, 225, 3, 2, 815)
    assert not server.errors, server.errors
