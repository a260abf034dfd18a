"""Settings never unsafe at load, the setpoint watchdog, the audit trail, log rate limiting
and the start-up messages of config problems (issue 11, findings 6, 9, 10 and items 6, 8)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from pathlib import Path

import aiohttp
import pytest

from gateway.app import Gateway, StartupError
from gateway.config import parse_config
from gateway.core import audit
from gateway.core.loglimit import RepeatFilter, Throttle
from gateway.core.settings import Settings
from gateway.core.store import Store
from gateway.core.watchdog import SetpointWatchdog
from gateway.core.writes import WriteGate, Writer
from registers import CompiledMap
from tests.modbus_rig import RecordingOwner

MIN_SOC = "/Settings/CGwacs/BatteryLife/MinimumSocLimit"
HUB4_MODE = "/Settings/CGwacs/Hub4Mode"


# --- finding 6: out-of-range values in settings.json are never loaded ---------------------------
@pytest.mark.parametrize("bad", [{MIN_SOC: -50}, {HUB4_MODE: 77}, {MIN_SOC: 40, HUB4_MODE: 77}])
def test_out_of_range_settings_fall_back_to_the_backup_loudly(
    tmp_path: Path, cmap: CompiledMap, caplog: pytest.LogCaptureFixture, bad: dict[str, int]
) -> None:
    (tmp_path / "settings.json").write_text(json.dumps(bad))
    (tmp_path / "settings.json.bak").write_text(json.dumps({MIN_SOC: 40}))
    store = Store()
    settings = Settings(store, tmp_path, specs=cmap.paths["settings"])
    settings.start()
    assert store.get("settings", 0, MIN_SOC) == 40  # the backup's, not -50 and not the default 20
    assert store.get("settings", 0, HUB4_MODE) == 1
    report = settings.load_report
    assert report is not None and report.source == "backup" and "out of range" in report.problems[0]
    assert any(r.levelno >= logging.ERROR and "out of range" in r.getMessage() for r in caplog.records)
    assert len(list(tmp_path.glob("settings.json.corrupt-*"))) == 1  # kept, with a timestamp


def test_out_of_range_settings_without_backup_give_the_defaults(tmp_path: Path, cmap: CompiledMap) -> None:
    (tmp_path / "settings.json").write_text(json.dumps({MIN_SOC: -50}))
    store = Store()
    settings = Settings(store, tmp_path, specs=cmap.paths["settings"])
    settings.start()
    assert store.get("settings", 0, MIN_SOC) == 20
    assert settings.load_report is not None and settings.load_report.source == "none"


async def test_a_settings_fallback_is_on_the_health_page(tmp_path: Path, cmap: CompiledMap) -> None:
    (tmp_path / "settings.json").write_text("[" * 100_000)
    config = parse_config(
        {"state_dir": str(tmp_path), "modbus": {"listen": "127.0.0.1:0"}, "http": {"listen": "127.0.0.1:0"}}
    )
    gw = Gateway(cmap, config)
    await gw.start()
    try:
        assert gw.http is not None
        url = f"http://127.0.0.1:{gw.http.sockets[0][1]}/healthz"
        async with aiohttp.ClientSession() as s, s.get(url) as resp:
            body = await resp.json()
        assert resp.status == 200 and body["status"] == "ok"  # a warning, not a reason to restart
        warnings = body["warnings"]
        assert any("settings.json corrupt (nested too deeply)" in w for w in warnings), warnings
        assert "settings: loaded from the defaults" in warnings
        assert body["connections"]["modbus"]["open"] == 0
    finally:
        await gw.stop()


# --- item 6: the setpoint watchdog -------------------------------------------------------------
async def test_a_setpoint_not_refreshed_reverts_within_the_timeout(cmap: CompiledMap) -> None:
    store = Store()
    owner = RecordingOwner(store)
    store.add_device("vebus", 276, owner, {"/Hub4/L1/AcPowerSetpoint": 0, "/Mode": 3})
    store.add_device("pvinverter", 20, owner, {"/Ac/PowerLimit": 5000, "/Ac/MaxPower": 5000})
    gate = WriteGate(store, cmap)
    dog = SetpointWatchdog(store, gate, timeout_s=1.0)
    await dog.start()
    ems = Writer("modbus", "10.0.0.5:5000")
    try:
        await gate.write("vebus", 276, {"/Hub4/L1/AcPowerSetpoint": -2000}, ems)
        await gate.write("pvinverter", 20, {"/Ac/PowerLimit": 1000}, ems)
        await gate.write("vebus", 276, {"/Mode": 1}, ems)  # not a volatile setpoint
        for _ in range(3):  # refreshed in time: kept
            await asyncio.sleep(0.5)
            await gate.write("vebus", 276, {"/Hub4/L1/AcPowerSetpoint": -2000}, ems)
        assert store.get("vebus", 276, "/Hub4/L1/AcPowerSetpoint") == -2000
        assert store.get("pvinverter", 20, "/Ac/PowerLimit") == 5000  # 1.5 s without a refresh
        await asyncio.sleep(1.6)
        assert store.get("vebus", 276, "/Hub4/L1/AcPowerSetpoint") == 0
        assert store.get("vebus", 276, "/Mode") == 1
        status = dog.status()
        assert [(r["path"], r["old"], r["new"]) for r in status["reverts"]] == [  # type: ignore[index]
            ("/Ac/PowerLimit", 1000, 5000),
            ("/Hub4/L1/AcPowerSetpoint", -2000, 0),
        ]
        assert status["watched"] == []
    finally:
        await dog.stop()


# --- item 8: the audit trail ---------------------------------------------------------------------
async def test_every_write_decision_is_audited(cmap: CompiledMap, caplog: pytest.LogCaptureFixture) -> None:
    store = Store()
    store.add_device("vebus", 276, RecordingOwner(store), {"/Mode": 3})
    gate = WriteGate(store, cmap)
    audit.install(gate)
    gate.roles["operator"] = "read-write"
    caplog.set_level(logging.INFO, logger="gateway.audit")
    await gate.write("vebus", 276, {"/Mode": 4}, Writer("modbus-tls", "10.0.0.7:40000", "operator"))
    with pytest.raises(Exception, match="not one of"):
        await gate.write("vebus", 276, {"/Mode": 9}, Writer("modbus", "10.0.0.8:40001"))
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.audit"]
    assert lines == [
        "write accepted: modbus-tls 10.0.0.7:40000 role=operator vebus/276 /Mode: 3 -> 4",
        "write refused (bad value: /Mode: 9 is not one of 1=Charger Only;2=Inverter Only;3=On;4=Off): "
        "modbus 10.0.0.8:40001 role=- vebus/276 /Mode: 4 -> 9",
    ]


# --- finding 10: repeats collapse -------------------------------------------------------------
def test_repeat_filter_collapses_and_counts() -> None:
    now = [0.0]
    flt = RepeatFilter(window_s=60, burst=2, clock=lambda: now[0])
    rec = [logging.LogRecord("x", logging.INFO, "f", 1, "peer %s: bad", (i,), None) for i in range(535)]
    passed = [r for r in rec[:534] if flt.filter(r)]
    assert len(passed) == 2
    now[0] = 61.0
    assert flt.filter(rec[534])
    assert rec[534].getMessage() == "peer 534: bad (... 532 more in the last 60 s)"


def test_throttle_says_how_many_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    t = Throttle(logging.getLogger("gateway.test"), clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="gateway.test")
    for _ in range(533):
        t.log("refused", logging.WARNING, "refused %s", "x")
    now[0] = 60.0
    t.flush()
    assert [r.getMessage() for r in caplog.records] == ["refused x", "refused: ... 532 more in the last 60 s"]


# --- finding 9: an unresolvable host says so -----------------------------------------------------
async def test_an_unresolvable_listen_host_says_so(tmp_path: Path, cmap: CompiledMap) -> None:
    config = parse_config({"state_dir": str(tmp_path), "modbus": {"listen": "no-such-host.invalid:0"}})
    gw = Gateway(cmap, dataclasses.replace(config))
    with pytest.raises(StartupError) as info:
        await gw.start()
    assert "cannot resolve the host name" in str(info.value), str(info.value)
    assert "unknown error" not in str(info.value)
