"""Settings: debounced atomic saves, nothing lost on a bad file, derived paths read-only."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.core.settings import DEFAULTS, Settings
from gateway.core.store import Store, WriteRejected
from tests.unit.stall import StallFirstSave

MIN_SOC = "/Settings/CGwacs/BatteryLife/MinimumSocLimit"
SOC_LIMIT = "/Settings/CGwacs/BatteryLife/SocLimit"
SETPOINT = "/Settings/CGwacs/AcPowerSetPoint"


def started(state_dir: Path | None, save_delay_s: float = 1.0) -> tuple[Store, Settings]:
    store = Store()
    settings = Settings(store, state_dir, save_delay_s=save_delay_s)
    settings.start()
    return store, settings


def saved(state_dir: Path) -> object:
    return json.loads((state_dir / "settings.json").read_text())


async def test_a_burst_of_writes_is_one_save_within_the_delay(tmp_path: Path) -> None:
    store, settings = started(tmp_path, save_delay_s=0.05)
    assert settings.file is not None
    for watts in range(10):
        await store.write("settings", 0, {SETPOINT: watts * 100})
    assert not (tmp_path / "settings.json").exists()
    await settings.file.settle()
    assert settings.file.saves == 1
    assert saved(tmp_path) == {SETPOINT: 900}  # only what differs from the defaults
    assert not list(tmp_path.glob("*.tmp"))
    # A new instance starts from what was saved.
    again, _ = started(tmp_path)
    assert again.get("settings", 0, SETPOINT) == 900


async def test_identical_writes_are_not_saved_again(tmp_path: Path) -> None:
    store, settings = started(tmp_path, save_delay_s=0)
    assert settings.file is not None
    await store.write("settings", 0, {SETPOINT: 100})
    await settings.file.settle()
    for _ in range(5):
        await store.write("settings", 0, {SETPOINT: 100})
        await settings.file.settle()
    assert settings.file.saves == 1


async def test_followers_track_and_refuse_writes(tmp_path: Path) -> None:
    store, _ = started(None)
    await store.write("settings", 0, {MIN_SOC: 35})
    assert store.get("settings", 0, SOC_LIMIT) == 35
    with pytest.raises(WriteRejected):
        await store.write("settings", 0, {SOC_LIMIT: 50})


async def test_a_write_during_a_save_is_saved_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stall = StallFirstSave(monkeypatch, tmp_path / "settings.json")
    store, settings = started(tmp_path, save_delay_s=0)
    assert settings.file is not None
    await store.write("settings", 0, {SETPOINT: 100})
    await stall.wait_stalled()  # the first save is under way in its thread
    await store.write("settings", 0, {SETPOINT: 200})
    stall.release.set()
    await settings.file.settle()
    assert stall.landed == [{SETPOINT: 100}, {SETPOINT: 200}]
    assert saved(tmp_path) == {SETPOINT: 200}


async def test_flush_at_shutdown_waits_for_a_save_under_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The old race: flush abandoned the save in its thread, whose rename then landed last."""
    stall = StallFirstSave(monkeypatch, tmp_path / "settings.json")
    store, settings = started(tmp_path, save_delay_s=0)
    await store.write("settings", 0, {SETPOINT: 100})
    await stall.wait_stalled()
    await store.write("settings", 0, {SETPOINT: 200})
    flush = asyncio.create_task(settings.flush())
    for _ in range(50):
        await asyncio.sleep(0)  # let flush go as far as it can
    assert not flush.done()
    stall.release.set()
    await flush
    assert stall.landed[-1] == {SETPOINT: 200}
    assert saved(tmp_path) == {SETPOINT: 200}


async def test_flush_saves_a_pending_write_at_once(tmp_path: Path) -> None:
    store, settings = started(tmp_path, save_delay_s=3600)
    await store.write("settings", 0, {MIN_SOC: 30})
    await settings.flush()
    assert saved(tmp_path) == {MIN_SOC: 30}


def test_a_corrupt_file_is_kept_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "settings.json").write_text("{not json", encoding="utf-8")
    store, settings = started(tmp_path)
    assert store.get("settings", 0, MIN_SOC) == 20  # the default
    [aside] = tmp_path.glob("settings.json.corrupt-*")
    assert aside.read_text() == "{not json"
    assert "settings.json is corrupt" in caplog.text
    assert settings.load_report is not None and settings.load_report.source == "none"
    assert not settings.load_report.ok


def test_a_wrongly_shaped_file_is_corrupt(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text(json.dumps({MIN_SOC: [30]}), encoding="utf-8")
    store, _ = started(tmp_path)
    assert store.get("settings", 0, MIN_SOC) == 20
    assert len(list(tmp_path.glob("settings.json.corrupt-*"))) == 1


def test_paths_that_are_not_settings_are_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    content = {MIN_SOC: 30, "/Settings/Nonsense": 5, SOC_LIMIT: 99}
    (tmp_path / "settings.json").write_text(json.dumps(content), encoding="utf-8")
    store, settings = started(tmp_path)
    assert store.get("settings", 0, MIN_SOC) == 30
    assert store.get("settings", 0, SOC_LIMIT) == 30  # derived, not read from the file
    device = store.device("settings", 0)
    assert device is not None and "/Settings/Nonsense" not in device.values
    assert "/Settings/Nonsense" in caplog.text and "ignoring" in caplog.text
    assert settings.values.keys() == DEFAULTS.keys()


async def test_a_failing_save_is_logged_and_values_stay(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, settings = started(tmp_path / "state", save_delay_s=0)
    (tmp_path / "state").rename(tmp_path / "gone")
    (tmp_path / "state").write_text("now a file", encoding="utf-8")  # the folder is gone for good
    await store.write("settings", 0, {MIN_SOC: 40})
    await settings.flush()
    assert "cannot save" in caplog.text and "settings.json" in caplog.text
    assert store.get("settings", 0, MIN_SOC) == 40


def test_start_fails_when_state_dir_is_not_writable(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file, not a folder", encoding="utf-8")
    with pytest.raises(OSError):
        Settings(Store(), tmp_path / "state").start()
