"""Logging: one line per event (key=value or JSON), no traceback for a peer's doing."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import struct

import pytest

from gateway.ops.logs import RECENT, JsonFormatter, TextFormatter, setup_logging
from tests.demo_process import DemoProcess

TEXT_LINE = re.compile(r'^time=\S+Z level=(debug|info|warning|error|critical) logger=\S+ msg=("([^"\\]|\\.)*"|\S+)')


def record(exc: BaseException | None = None, msg: str = 'lost "x"\nline two') -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("gateway.test", logging.ERROR, __file__, 1, msg, (), info)


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as e:
        return e


def test_text_is_one_key_value_line_even_with_a_traceback() -> None:
    line = TextFormatter().format(record(raised(ValueError("boom"))))
    assert "\n" not in line
    assert TEXT_LINE.match(line), line
    assert 'msg="lost \\"x\\"\\nline two"' in line
    assert "exc=" in line and "Traceback" in line and "ValueError: boom" in line


def test_json_is_one_object_per_line() -> None:
    line = JsonFormatter().format(record(raised(KeyError("k"))))
    assert "\n" not in line
    event = json.loads(line)
    assert event["level"] == "error" and event["logger"] == "gateway.test" and event["msg"].startswith("lost")
    assert "KeyError" in event["exc"]


def test_a_peer_resetting_the_connection_gets_no_traceback() -> None:
    line = TextFormatter().format(record(raised(ConnectionResetError(104, "Connection reset by peer"))))
    assert "Traceback" not in line
    assert "ConnectionResetError" in line


def test_warnings_are_kept_for_status() -> None:
    stream = io.StringIO()
    setup_logging("warning", "text", stream)
    try:
        logging.getLogger("gateway.test").warning("device %s went quiet", "battery 512")
        logging.getLogger("gateway.test").info("not kept, not shown")
    finally:
        logging.getLogger().handlers.clear()
    assert RECENT.events[-1]["msg"] == "device battery 512 went quiet"
    assert stream.getvalue().count("\n") == 1


@pytest.fixture()
def json_demo() -> DemoProcess:
    return DemoProcess("--log-format", "json", "--log-level", "debug")


def test_a_demo_logs_expected_conditions_in_one_line_each(json_demo: DemoProcess) -> None:
    """Bad frames and clients that reset: JSON lines, none with a traceback."""
    try:
        with socket.create_connection(("127.0.0.1", json_demo.port), timeout=3) as s:
            s.sendall(struct.pack(">HHHBB", 1, 7, 6, 1, 3) + b"\x00\x00\x00\x01")  # protocol id 7
            assert s.recv(100) == b""  # closed by the server
        s = socket.create_connection(("127.0.0.1", json_demo.port), timeout=3)
        s.sendall(b"\x00\x01\x00\x00")  # half a header, then a reset
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        h = socket.create_connection(("127.0.0.1", int(json_demo.url.rsplit(":", 1)[1])), timeout=3)
        h.sendall(b"GET /api/v1/devices HTTP/1.1\r\nHost: x\r\n")  # and gone mid-request
        h.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.close()
        json_demo.json("/healthz")
    finally:
        rc, stderr = json_demo.stop()
    assert rc == 0, stderr
    lines = stderr.splitlines()
    assert lines, "the demo logged nothing"
    for line in lines:
        event = json.loads(line)  # every line is one JSON event
        assert {"time", "level", "logger", "msg"} <= set(event), line
    assert "Traceback" not in stderr
    assert any("malformed MBAP header" in json.loads(line)["msg"] for line in lines), stderr
