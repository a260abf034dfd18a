"""The serial transport over real ptys: bytes arrive, a vanished port is one line and is
retried until it is back, a port another reader holds is "in use", a bad path says so."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from gateway.transports.serial import SerialReader, SerialSettings, describe_open_error, pty_pair
from tests.sources.test_vedirect_driver import until


async def test_bytes_arrive_and_a_held_port_is_in_use(caplog: pytest.LogCaptureFixture) -> None:
    got: list[bytes] = []
    with pty_pair() as (master, path):
        first = SerialReader(path, SerialSettings(), got.append)
        second = SerialReader(path, SerialSettings(), got.append)
        first.start()
        try:
            await until(lambda: first.up, 3)
            os.write(master, b"\r\nV\t12800")
            await until(lambda: b"".join(got) == b"\r\nV\t12800", 3)
            with caplog.at_level(logging.WARNING, "gateway.transports.serial"):
                second.start()
                await until(lambda: "in use by another process" in second.reason, 3)
            assert not second.up and first.bytes_read == 9
            assert sum("in use" in r.getMessage() for r in caplog.records) == 1  # once per state, not per retry
        finally:
            await second.stop()
            await first.stop()


async def test_a_missing_port_is_retried_until_it_appears(tmp_path: Path) -> None:
    link = tmp_path / "usb-cable-if00"
    states: list[bool] = []
    reader = SerialReader(str(link), SerialSettings(), lambda b: None, states.append)
    reader.start()
    try:
        await until(lambda: "does not exist" in reader.reason, 3)
        with pty_pair() as (_master, path):
            link.symlink_to(path)  # plugged in: udev makes the by-id link
            await until(lambda: reader.up, 5)
            assert states == [False, True]
        await until(lambda: not reader.up, 3)  # the pty is gone: lost, back to retrying
        assert "lost" in reader.reason
    finally:
        await reader.stop()
    await asyncio.sleep(0)


def test_open_errors_are_one_line_in_the_users_terms() -> None:
    assert "permission denied (add the gateway's user to the dialout group)" in describe_open_error(
        "/dev/ttyUSB0", PermissionError(13, "[Errno 13] Permission denied: '/dev/ttyUSB0'")
    )
    assert "use /dev/serial/by-id/" in describe_open_error(
        "/dev/ttyUSB0", OSError("could not open port /dev/ttyUSB0: [Errno 2] No such file or directory")
    )
