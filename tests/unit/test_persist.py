"""persist.JsonFile: atomic and durable saves, debounced, never back in time; bad files kept aside."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import select
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.core.persist import JsonFile
from tests.unit.persist_child import parse_counter
from tests.unit.stall import StallFirstSave

Doc = dict[str, object]


def parse_doc(data: object) -> Doc:
    if not isinstance(data, dict):
        raise ValueError(f"expected an object, not {type(data).__name__}")
    return data


def make(path: Path, delay_s: float = 1.0) -> JsonFile[Doc]:
    return JsonFile(path, parse_doc, delay_s=delay_s)


def corrupt_copies(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".corrupt-*"))


# --- saving ------------------------------------------------------------------------------
def test_a_saved_file_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert make(path).save_now({"a": 1, "b": "two", "c": None})
    again = make(path)
    assert again.load() == {"a": 1, "b": "two", "c": None}
    assert again.load_report is not None and again.load_report.source == "file" and again.load_report.ok
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temporary left behind


def test_the_previous_file_is_the_backup(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    f = make(path)
    f.save_now({"v": 1})
    f.save_now({"v": 2})
    assert json.loads(path.read_text()) == {"v": 2}
    assert json.loads((tmp_path / "state.json.bak").read_text()) == {"v": 1}


def test_a_missing_file_is_no_problem(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = make(tmp_path / "nothing-yet" / "state.json")
    assert f.load() is None
    assert f.load_report is not None and f.load_report.source == "none" and f.load_report.ok
    assert not caplog.records


async def test_a_burst_of_changes_is_one_save(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    f = make(path, delay_s=0.05)
    for n in range(10):
        f.request_save({"n": n})
    assert f.saves == 0 and not path.exists()  # nothing written on the event loop
    await f.settle()
    assert f.saves == 1
    assert json.loads(path.read_text()) == {"n": 9}


async def test_the_snapshot_is_taken_when_requested(tmp_path: Path) -> None:
    f = make(tmp_path / "state.json", delay_s=0)
    data: Doc = {"n": 1}
    f.request_save(data)
    data["n"] = 2  # the owner goes on changing its dict; the save holds what was asked for
    await f.settle()
    assert make(tmp_path / "state.json").load() == {"n": 1}


async def test_unchanged_content_is_not_saved_again(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert make(path).save_now({"n": 1})
    f = make(path, delay_s=0)
    assert f.load() == {"n": 1}
    f.request_save({"n": 1})  # what is on disk already
    await f.settle()
    assert f.saves == 0
    f.request_save({"n": 2})
    f.request_save({"n": 1})  # changed and back within one delay: still the same on disk
    await f.settle()
    assert f.saves == 0
    assert not f.save_now({"n": 1})
    assert f.save_now({"n": 3}) and f.saves == 1


def test_the_content_and_then_the_folder_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    path = tmp_path / "state.json"

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            events.append("fsync folder" if st.st_ino == tmp_path.stat().st_ino else "fsync other folder")
        else:
            events.append("fsync file")
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        real_replace(src, dst)
        events.append(f"rename to {Path(dst).name}")  # those that happened

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    f = make(path)
    f.save_now({"n": 1})
    assert events == ["fsync file", "rename to state.json", "fsync folder"]
    events.clear()
    f.save_now({"n": 2})
    assert events == ["fsync file", "rename to state.json.bak", "rename to state.json", "fsync folder"]


async def test_a_failed_save_is_logged_and_the_next_one_retries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    f = make(state / "state.json", delay_s=0)
    f.save_now({"n": 1})
    state.rename(tmp_path / "gone")
    state.write_text("a file where the folder was")
    f.request_save({"n": 2})
    await f.settle()
    assert "cannot save" in caplog.text and "state.json" in caplog.text
    assert f.last_error is not None
    state.unlink()
    f.request_save({"n": 2})  # the same content as failed: it is not on disk, so it is written
    await f.settle()
    assert make(state / "state.json").load() == {"n": 2}
    assert f.last_error is None


# --- bad files ---------------------------------------------------------------------------
def test_a_corrupt_file_is_kept_aside_and_the_backup_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.json"
    writer = make(path)
    writer.save_now({"v": 1})
    writer.save_now({"v": 2})  # {"v": 1} is now the backup
    path.write_text('{"v": 2', encoding="utf-8")  # damaged after the fact
    f = make(path)
    assert f.load() == {"v": 1}
    [aside] = corrupt_copies(path)
    assert aside.read_text() == '{"v": 2'
    assert f.load_report is not None and f.load_report.source == "backup"
    assert f.load_report.set_aside == (aside,) and not f.load_report.ok
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("state.json" in m and "corrupt" in m for m in errors)
    assert json.loads(path.read_text()) == {"v": 1}  # the file is put back from the backup


def test_wrong_shape_is_corrupt_and_without_backup_defaults_are_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    path.write_text("[1, 2, 3]", encoding="utf-8")
    f = make(path)
    assert f.load() is None
    assert f.load_report is not None and f.load_report.source == "none"
    assert "expected an object" in f.load_report.problems[0]
    assert len(corrupt_copies(path)) == 1 and not path.exists()
    assert "no usable copy" in caplog.text


def test_two_corruptions_keep_both_copies(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    for text in ("{bad one", "{bad two"):
        path.write_text(text, encoding="utf-8")
        assert make(path).load() is None
    assert sorted(p.read_text() for p in corrupt_copies(path)) == ["{bad one", "{bad two"]


def test_corrupt_copies_are_bounded_and_the_newest_kept(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    for n in range(7):
        path.write_text(f"{{bad {n}", encoding="utf-8")
        assert JsonFile(path, parse_doc, keep_corrupt=3).load() is None
    assert sorted(p.read_text() for p in corrupt_copies(path)) == ["{bad 4", "{bad 5", "{bad 6"]


def test_a_deeply_nested_file_is_corrupt_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("[" * 100_000, encoding="utf-8")
    f = make(path)
    assert f.load() is None
    assert f.load_report is not None and len(f.load_report.set_aside) == 1


def test_a_file_over_the_size_cap_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"big": "x" * 200}), encoding="utf-8")
    f = JsonFile(path, parse_doc, max_bytes=100)
    assert f.load() is None
    assert f.load_report is not None and "larger than 100 bytes" in f.load_report.problems[0]


def test_a_missing_file_with_a_backup_uses_the_backup(tmp_path: Path) -> None:
    """What a crash between a save's two renames leaves."""
    path = tmp_path / "state.json"
    (tmp_path / "state.json.bak").write_text('{"v": 1}', encoding="utf-8")
    f = make(path)
    assert f.load() == {"v": 1}
    assert f.load_report is not None and f.load_report.source == "backup"
    assert not corrupt_copies(path)


def test_temporaries_of_a_killed_save_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".state.json.abc123.tmp").write_text("{half", encoding="utf-8")
    (tmp_path / ".other.json.abc123.tmp").write_text("{not ours", encoding="utf-8")
    make(tmp_path / "state.json").load()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.abc123.tmp"]


# --- never back in time ------------------------------------------------------------------
async def test_flush_waits_for_a_save_in_flight_then_writes_the_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    stall = StallFirstSave(monkeypatch, path)
    f = make(path, delay_s=0)
    f.request_save({"n": 1})
    await stall.wait_stalled()  # {"n": 1} is in its thread, not yet renamed
    f.request_save({"n": 2})
    flush = asyncio.create_task(f.flush())
    for _ in range(50):
        await asyncio.sleep(0)  # let flush run as far as it can
    assert not flush.done() and stall.landed == []  # it waits for the stalled save
    stall.release.set()
    await flush
    # Both saves have landed by the time flush returns, oldest first: none can come later.
    assert stall.landed == [{"n": 1}, {"n": 2}]
    assert json.loads(path.read_text()) == {"n": 2}


async def test_an_older_save_never_overwrites_a_newer_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    stall = StallFirstSave(monkeypatch, path)
    f = make(path, delay_s=0)
    f.request_save({"n": 1})
    await stall.wait_stalled()
    assert f.save_now({"n": 2})  # newer, written while the older one is stalled in its thread
    stall.release.set()
    await f.settle()
    assert stall.landed == [{"n": 2}]  # the older generation was dropped, not renamed over it
    assert json.loads(path.read_text()) == {"n": 2}
    assert f.saves == 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_process_killed_while_saving_leaves_a_good_file(tmp_path: Path) -> None:
    """SIGKILL at a random moment: the file always loads, holding at least the last
    acknowledged counter. 10 rounds on the same file, each bounded in time."""
    path = tmp_path / "counter.json"
    child = Path(__file__).with_name("persist_child.py")
    rng = random.Random()
    acked = 0
    started = time.monotonic()
    for _ in range(10):
        proc = subprocess.Popen([sys.executable, str(child), str(path)], stdout=subprocess.PIPE)
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 10)
            assert ready, "the child did not acknowledge a save within 10 s"
            time.sleep(rng.uniform(0, 0.03))  # the random moment of the kill, not a synchronisation
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            out, _ = proc.communicate(timeout=10)
        lines = out.split(b"\n")[:-1]  # a last line without its newline was not acknowledged
        assert lines, "the child acknowledged nothing"
        acked = int(lines[-1])
        f = JsonFile(path, parse_counter)
        value = f.load()
        assert f.load_report is not None and f.load_report.source in ("file", "backup"), f.load_report
        assert value is not None and value >= acked
    assert time.monotonic() - started < 30


def test_parse_errors_of_all_kinds_are_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    cases: list[tuple[bytes, Callable[[object], object]]] = [
        (b"\xff\xfe not utf-8", parse_doc),
        (b"", parse_doc),
        (b'{"n": "x"}', parse_counter),
        (b"NaN", parse_doc),
    ]
    for raw, parse in cases:
        path.write_bytes(raw)
        f = JsonFile(path, parse)
        assert f.load() is None, raw
        assert f.load_report is not None and f.load_report.problems, raw


async def test_a_cancelled_flush_stays_cancelled(tmp_path: Path) -> None:
    """flush cancels its own save task; a caller's timeout around flush must still fire."""
    f = make(tmp_path / "state.json", delay_s=3600)
    f.request_save({"n": 1})
    await asyncio.sleep(0)  # the save task is in its debounce wait
    flush = asyncio.create_task(f.flush())
    await asyncio.sleep(0)  # flush has cancelled the task and waits for it
    flush.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flush
