"""Raw CAN frames: candump -L lines in and out, a replay at its own pace, a python-can bus."""

import asyncio
import time
from pathlib import Path

import pytest

from gateway.transports.can_raw import (
    CandumpReplay,
    RawFrame,
    format_candump_line,
    parse_candump_line,
    parse_raw_bus,
)


def test_candump_lines_round_trip_for_standard_and_extended_ids() -> None:
    for frame in (RawFrame(1.5, 0x351, False, bytes([1, 2, 3])), RawFrame(2.25, 0x19F21423, True, b"")):
        assert parse_candump_line(format_candump_line(frame)) == frame
    assert parse_candump_line("(1763900000.123456) can0 35A#0102 R") == RawFrame(
        1763900000.123456, 0x35A, False, b"\1\2"
    )


@pytest.mark.parametrize("line", ["", "garbage", "(1.0) can0 351#0", "(1.0) can0 351#" + "00" * 9, "(x) can0 351#00"])
def test_a_malformed_line_is_no_frame(line: str) -> None:
    assert parse_candump_line(line) is None


async def test_a_replay_keeps_its_pace_and_counts_what_it_skips(tmp_path: Path) -> None:
    log = tmp_path / "bms.log"
    log.write_text("(100.000) can0 351#01\nnot a frame\n(100.200) can0 355#02\n(100.400) can0 356#03\n")
    replay = CandumpReplay(log)
    await replay.open()
    start = time.monotonic()
    ids = [(await replay.receive()).can_id for _ in range(3)]
    elapsed = time.monotonic() - start
    assert ids == [0x351, 0x355, 0x356]
    assert 0.35 <= elapsed < 2.0
    assert replay.malformed == 1
    with pytest.raises(EOFError):
        await replay.receive()
    replay.send(RawFrame(0, 1, False, b""))
    assert replay.unsent == 1


async def test_a_replay_of_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="no such file"):
        await CandumpReplay(tmp_path / "nope.log").open()


async def test_a_socketcan_interface_that_is_not_there_is_one_oserror_naming_it() -> None:
    with pytest.raises(OSError, match=r"^socketcan:gxnocan9: \S"):  # no such interface, or no SocketCAN at all
        await parse_raw_bus("t", "socketcan:gxnocan9").open()


async def test_a_virtual_bus_carries_frames_between_two_readers() -> None:
    a, b = parse_raw_bus("t", "virtual:raw-test"), parse_raw_bus("t", "virtual:raw-test")
    await a.open()
    await b.open()
    try:
        a.send(RawFrame(0, 0x35A, False, b"\x55"))
        got = await asyncio.wait_for(b.receive(), 2)
        assert (got.can_id, got.extended, got.data) == (0x35A, False, b"\x55")
    finally:
        await a.close()
        await b.close()


def test_a_bad_spec_is_one_line_naming_where() -> None:
    with pytest.raises(ValueError, match=r"^\[\[device\]\] 1: expected .*'bogus'"):
        parse_raw_bus("[[device]] 1", "bogus")


async def test_a_looped_replay_starts_again_and_its_unplug_file_withholds_frames(tmp_path: Path) -> None:
    log = tmp_path / "n2k.log"
    log.write_text("(100.000) can0 351#01\n(100.050) can0 355#02\n")
    replay = parse_raw_bus("t", f"candump-loop:{log}")
    assert isinstance(replay, CandumpReplay) and replay.label == f"candump-loop:{log}"
    await replay.open()
    ids = [(await replay.receive()).can_id for _ in range(5)]
    assert ids == [0x351, 0x355, 0x351, 0x355, 0x351] and replay.passes == 2  # no EOFError: it goes on
    control = tmp_path / "n2k.log.unplug"
    control.touch()
    await asyncio.sleep(0.3)  # the file is looked at every 0.25 s
    with pytest.raises(TimeoutError):  # the replay goes on, nothing comes through
        await asyncio.wait_for(replay.receive(), 0.5)
    assert replay.withheld >= 5
    control.unlink()
    await asyncio.sleep(0.3)
    assert (await asyncio.wait_for(replay.receive(), 1.0)).can_id in (0x351, 0x355)
