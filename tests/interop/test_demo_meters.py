"""The demo's EM24 grid meter and Solar-API Fronius, and the scan command its banner prints:
run as a user would (processes, mbpoll, the printed command), the issue's "Done when"."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.test_demo import GX, Demo, read


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    d = Demo()
    yield d
    d.stop()


@pytest.mark.interop
def test_em24_is_the_grid_and_the_solar_api_fronius_is_on_ac_output(demo: Demo) -> None:
    assert "grid 34 (Grid meter (EM24))" in demo.banner
    assert "pvinverter 35 (Fronius garage (Solar API))" in demo.banner
    deadline = time.monotonic() + 10
    while demo.api("grid", 34, "/Ac/L1/Power") is None and time.monotonic() < deadline:
        time.sleep(0.2)
    for _ in range(20):  # a moment where the system's grid equals the meter's registers
        grid, meter = read(demo.port, 100, 820, 3), read(demo.port, 34, 2600, 3)
        if grid == meter:
            break
    assert grid == meter  # the system's grid is the EM24 (one grid)
    assert demo.api("pvinverter", 35, "/Position") == 1  # AC output
    power = demo.valid(35, 1053, 1, "pvinverter", 35, "/Ac/Power")  # int32: low register
    assert power > 0  # the simulated day starts at 10:00


@pytest.mark.interop
def test_the_banner_scan_command_finds_the_simulators_and_its_output_runs(demo: Demo, tmp_path: Path) -> None:
    m = re.search(r"^\s+(gx-gateway scan --hosts \S+ --ports \S+ --gateway http://\S+)$", demo.banner, re.M)
    assert m, demo.banner
    argv = [*GX, *shlex.split(m.group(1))[1:]]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    second = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout  # the same on repeated runs
    devices = tomllib.loads(first.stdout)["device"]
    # Every simulated device, the SolarEdge included: it takes one client and the demo polls
    # it, so the scan recognises it through the demo's API. Each keeps the demo's instance.
    found = sorted((d["driver"], d["instance"], d.get("role", "pvinverter"), d.get("position")) for d in devices)
    assert found == [
        ("fronius", 35, "pvinverter", "ac-out"),
        # the datamanager's Smart Meter: new, so the lowest free instance (40-42 are the demo's
        # NMEA 2000 senders), not a second grid meter
        ("fronius", 43, "acload", None),
        ("meter", 34, "grid", None),
        ("sunspec", 32, "pvinverter", "ac-in-1"),
        ("sunspec", 33, "pvinverter", "ac-in-1"),
    ]
    assert "# SolarEdge carport at 127.0.0.1:" in first.stdout
    assert "it accepts one Modbus-TCP client" in first.stdout
    assert "found 2 fronius, 1 meter, 2 sunspec (4 already polled by the gateway)" in first.stderr
    # Without --gateway the SolarEdge is only "busy", with the reason and the way out.
    alone = subprocess.run(argv[: argv.index("--gateway")], capture_output=True, text=True, timeout=60)
    drivers = sorted(d["driver"] for d in tomllib.loads(alone.stdout)["device"])
    assert drivers == ["fronius", "fronius", "meter", "sunspec"]
    assert "busy: it closed the connection at once" in alone.stdout and "--gateway URL" in alone.stdout

    config = tmp_path / "found.toml"
    config.write_text('[modbus]\nlisten = "127.0.0.1:0"\n\n' + first.stdout, encoding="utf-8")
    run = subprocess.Popen(
        [*GX, "run", "--config", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        seen = ""
        deadline = time.monotonic() + 20
        assert run.stdout is not None
        while (seen.count(": online") < 4 or "before its first answer" not in seen) and time.monotonic() < deadline:
            seen += run.stdout.readline()
        assert seen.count(": online") == 4, seen  # the SolarEdge stays the demo's: it says why
        assert "(pvinverter 33): offline after 3 missed polls" in seen and "takes one client (SolarEdge)" in seen, seen
        assert run.poll() is None  # a busy device is no reason to stop
    finally:
        run.terminate()
        run.wait(5)
