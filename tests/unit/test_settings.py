"""Settings: debounced atomic saves, nothing lost on a bad file, derived paths read-only."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from gateway.settings import Settings
from gateway.store import Store, WriteRejected

MIN_SOC = "/Settings/CGwacs/BatteryLife/MinimumSocLimit"
SETPOINT = "/Settings/CGwacs/AcPowerSetPoint"


async def test_a_burst_of_writes_is_one_save_within_the_delay(tmp_path: Path) -> None:
    store = Store()
    settings = Settings(store, tmp_path, save_delay_s=0.2)
    settings.start()
    saves = 0
    real_write = settings._write_file

    def counting_write(changed: dict) -> None:
        nonlocal saves
        saves += 1
        real_write(changed)

    settings._write_file = counting_write  # type: ignore[method-assign]
    for watts in range(10):
        await store.write("settings", 0, {SETPOINT: watts * 100})
    assert not (tmp_path / "settings.json").exists()
    await asyncio.sleep(0.4)
    assert saves == 1
    saved = json.loads((tmp_path / "settings.json").read_text())
    assert saved == {SETPOINT: 900}  # only what differs from the defaults
    assert not list(tmp_path.glob("*.tmp"))
    # A new instance starts from what was saved.
    again = Store()
    Settings(again, tmp_path).start()
    assert again.get("settings", 0, SETPOINT) == 900


async def test_followers_track_and_refuse_writes(tmp_path: Path) -> None:
    store = Store()
    Settings(store, None).start()
    await store.write("settings", 0, {MIN_SOC: 35})
    assert store.get("settings", 0, "/Settings/CGwacs/BatteryLife/SocLimit") == 35
    with pytest.raises(WriteRejected):
        await store.write("settings", 0, {"/Settings/CGwacs/BatteryLife/SocLimit": 50})


async def test_a_write_during_a_save_is_saved_too(tmp_path: Path) -> None:
    store = Store()
    settings = Settings(store, tmp_path, save_delay_s=0.05)
    settings.start()
    real_write = settings._write_file

    def slow_write(changed: dict) -> None:
        real_write(changed)
        time.sleep(0.1)  # in the save thread: a write lands meanwhile

    settings._write_file = slow_write  # type: ignore[method-assign]
    await store.write("settings", 0, {SETPOINT: 100})
    await asyncio.sleep(0.08)  # the first save is under way
    await store.write("settings", 0, {SETPOINT: 200})
    await asyncio.sleep(0.4)
    assert json.loads((tmp_path / "settings.json").read_text()) == {SETPOINT: 200}


def test_a_corrupt_file_is_kept_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "settings.json").write_text("{not json", encoding="utf-8")
    store = Store()
    Settings(store, tmp_path).start()
    assert store.get("settings", 0, MIN_SOC) == 20  # the default
    assert (tmp_path / "settings.json.bad").read_text() == "{not json"
    assert "unreadable" in caplog.text


async def test_a_failing_save_is_logged_and_values_stay(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store()
    settings = Settings(store, tmp_path / "state", save_delay_s=0.05)
    settings.start()
    (tmp_path / "state").rename(tmp_path / "gone")
    (tmp_path / "state").write_text("now a file", encoding="utf-8")  # the folder is gone for good
    await store.write("settings", 0, {MIN_SOC: 40})
    await asyncio.sleep(0.2)
    assert "cannot save settings" in caplog.text
    assert store.get("settings", 0, MIN_SOC) == 40
