"""``gx-gateway scan`` on loopback: finds every simulated device, prints config that parses,
the same output on repeated runs, and a /24 of silent addresses in seconds."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import tomllib

from gateway.cli.scan_tables import render
from gateway.config import parse_config
from gateway.sim.protocols.fronius_sim import FroniusSimulator
from gateway.sim.protocols.meter_sim import MeterSimulator
from gateway.sim.protocols.sunspec_sim import SunSpecSim
from gateway.sources.network_scan import expand_hosts, scan
from registers import load_default
from registers.meters import meter_models

MODELS = meter_models(load_default())


async def test_scan_finds_every_simulated_device_and_prints_config_that_runs() -> None:
    em24, abb, sma = (
        MeterSimulator(MODELS["em24"]),
        MeterSimulator(MODELS["abb-b21"]),
        MeterSimulator(MODELS["sma-native"], unit=3),
    )
    unknown = MeterSimulator(MODELS["et340"])
    unknown.banks[4].put(0x000B, (7777).to_bytes(2, "big"))
    fronius, solaredge = FroniusSimulator(device_id=2), SunSpecSim("solaredge")
    sims = [em24, abb, sma, unknown, fronius, solaredge]
    for s in sims:
        await s.start()
    ports = sorted([em24.port, abb.port, sma.port, unknown.port, fronius.port, solaredge.address[1]])
    try:
        found = await scan(["127.0.0.1"], ports, MODELS, timeout=0.5)
        again = await scan(["127.0.0.1"], list(reversed(ports)), MODELS, timeout=0.5)
    finally:
        for s in sims:
            await s.stop()
    assert found == again  # deterministic
    by_port = {(f.port, f.driver, f.unit): f for f in found}
    assert by_port[(em24.port, "meter", 1)].options == (("model", "em24"),)
    assert by_port[(abb.port, "meter", 1)].options == (("model", "abb-b21"),)
    assert (sma.port, "sma", 3) in by_port
    assert (fronius.port, "fronius", 2) in by_port
    smart_meter = by_port[(fronius.port, "fronius", 0)]  # the datamanager's Smart Meter (Scope=System)
    assert (smart_meter.role, smart_meter.what) == ("grid", "Fronius Smart Meter 63A, Solar API meter 0")
    drivers = sorted((f.role, f.options) for f in found if f.port == solaredge.address[1])
    assert drivers == [("grid", (("meter", 1),)), ("pvinverter", ())]  # SolarEdge + its meter
    assert "unsupported" in by_port[(unknown.port, "meter", 1)].what
    text = render(found)
    assert "7777" in text  # the unsupported one is reported as a comment, not a device
    config = parse_config(tomllib.loads(text))
    assert len(config.devices) == 7
    assert len({d.instance for d in config.devices}) == 7
    roles = sorted(str(d.options.get("role")) for d in config.devices)
    assert roles.count("grid") == 1  # one grid; the other meters are suggested as acload
    assert render(again) == text


async def test_silent_slash_24_finishes_in_seconds() -> None:
    hosts = expand_hosts(None, "127.0.1.0/24")
    assert len(hosts) == 254
    t0 = time.perf_counter()
    found = await scan(hosts, [1502, 5502], MODELS, timeout=0.3)
    assert found == []
    assert time.perf_counter() - t0 < 5.0


def test_cli_refuses_bad_arguments_in_one_line() -> None:
    for args, message in (
        (["--subnet", "10.0.0.0/8"], "at most a /20"),
        (["--hosts", "127.0.0.1", "--ports", "0"], "--ports"),
        (["--hosts", "127.0.0.1", "--gateway", "http://127.0.0.1:9"], "--gateway: cannot reach the gateway"),
        (["--hosts", "127.0.0.1", "--gateway", "ftp://x"], "--gateway: --url: expected http://HOST:PORT"),
    ):
        res = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "scan", *args], capture_output=True, text=True, timeout=30
        )
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr


async def test_cli_prints_tables_to_stdout_and_summary_to_stderr() -> None:
    em24 = MeterSimulator(MODELS["em24"])
    await em24.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            "scan",
            "--hosts",
            "127.0.0.1",
            "--ports",
            str(em24.port),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await em24.stop()
    assert proc.returncode == 0
    assert 'driver = "meter"' in out.decode() and 'model = "em24"' in out.decode()
    assert "found 1 meter" in err.decode()
    assert tomllib.loads(out.decode())["device"][0]["port"] == em24.port
