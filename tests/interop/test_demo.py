"""`gx-gateway demo` as a user runs it: a process, real sockets, mbpoll as the client.

This is the issue's "Done when": plausible, changing values at unit 100 (840 battery
voltage, 843 SOC, 817 consumption) and at the vebus and battery unit ids; a write to vebus
/Mode takes effect; Ctrl-C/SIGTERM stop within a second; a port in use is one line.

Invalid values read as 0 by default (as on a GX), so a register reading 0 proves nothing by
itself: values are checked against the JSON API's value read at the same moment (between two
equal register reads), which also says whether the value is valid.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import mbpoll_argv, need_tool, parse_mbpoll

GX = [sys.executable, "-m", "gateway.cli"]


def mbpoll(port: int, *args: str) -> str:
    out = subprocess.run(mbpoll_argv(port, *args), capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def read(port: int, unit: int, register: int, count: int = 1) -> list[int]:
    """Input registers via mbpoll, signed where mbpoll shows a signed value."""
    found = parse_mbpoll(mbpoll(port, "-a", str(unit), "-r", str(register), "-c", str(count), "-t", "3", "127.0.0.1"))
    return [found[r] for r in range(register, register + count)]


class Demo:
    def __init__(self, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [*GX, "demo", "--modbus", "127.0.0.1:0", "--http", "127.0.0.1:0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.banner = ""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 20
        while "Ctrl-C" not in self.banner and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.banner += line
        m = re.search(r"Modbus-TCP\s+127\.0\.0\.1:(\d+)", self.banner)
        assert m, (
            f"no Modbus address in the banner:\n{self.banner}\n{self.proc.stderr.read() if self.proc.stderr else ''}"
        )
        self.port = int(m.group(1))
        h = re.search(r"http://127\.0\.0\.1:(\d+)/api/v1/devices", self.banner)
        self.http_port = int(h.group(1)) if h else None

    def api(self, service: str, instance: int, path: str) -> float | None:
        """The value the Store holds (None = invalid), from the JSON API."""
        url = f"http://127.0.0.1:{self.http_port}/api/v1/devices/{service}/{instance}{path}"
        with urllib.request.urlopen(url, timeout=5) as r:
            value = json.load(r)["value"]
        assert value is None or isinstance(value, (int, float)), value
        return value

    def same_moment(self, unit: int, register: int, service: str, instance: int, path: str) -> tuple[int, float | None]:
        """A register and the Store's value for it, taken between two equal reads of the register."""
        for _ in range(20):
            before = self.read(unit, register)[0]
            value = self.api(service, instance, path)
            if self.read(unit, register)[0] == before:
                return before, value
        pytest.fail(f"unit {unit} register {register} never held still")

    def valid(self, unit: int, register: int, scale: float, service: str, instance: int, path: str) -> float:
        """The value of a valid path, checked to be what the register carries (scaled, rounded)."""
        raw, value = self.same_moment(unit, register, service, instance, path)
        assert value is not None, f"{service} {instance} {path} is invalid (the register reads {raw})"
        assert abs(raw - value * scale) <= 0.5 + 1e-6, (service, instance, path, raw, value)
        return value

    def mbpoll(self, *args: str) -> str:
        return mbpoll(self.port, *args)

    def read(self, unit: int, register: int, count: int = 1) -> list[int]:
        return read(self.port, unit, register, count)

    def stop(self) -> tuple[int, float, str]:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = -9
        stderr = self.proc.stderr.read() if self.proc.stderr else ""
        return rc, time.monotonic() - t0, stderr


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    need_tool("mbpoll")
    d = Demo()
    yield d
    if d.proc.poll() is None:
        d.stop()


def test_banner_tells_where_to_connect(demo: Demo) -> None:
    assert f"mbpoll -0 -1 -p {demo.port} -a 100 -r 843 -t 3 127.0.0.1" in demo.banner
    assert "/api/v1/devices" in demo.banner
    assert "unit 227  vebus 276" in demo.banner and "unit 225  battery 512" in demo.banner


def test_system_values_are_plausible_and_change(demo: Demo) -> None:
    volts, amps, watts, _ = demo.read(100, 840, 4)
    assert 440 <= volts <= 590, volts  # a 48 V bank: 44.0..59.0 V (x10)
    # battery power = V * I within rounding of the scaled registers (V x10, A x10)
    assert abs(watts - (volts / 10) * (amps / 10)) <= abs(volts / 10) * 0.1 + 2, (volts, amps, watts)
    soc = demo.valid(100, 843, 1, "system", 0, "/Dc/Battery/Soc")
    assert 20 <= soc <= 100, soc  # starts at 55 %, held above the 20 % minimum
    consumption = demo.valid(100, 817, 1, "system", 0, "/Ac/Consumption/L1/Power")
    assert consumption >= 100, consumption  # the demo's base load alone is 180 W
    readings = {tuple(demo.read(100, 840, 4) + demo.read(100, 817))}
    deadline = time.monotonic() + 8
    while len(readings) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        readings.add(tuple(demo.read(100, 840, 4) + demo.read(100, 817)))
    assert len(readings) >= 2, "values did not change in 8 s"


def test_vebus_and_battery_units(demo: Demo) -> None:
    assert 220 <= demo.valid(227, 15, 10, "vebus", 276, "/Ac/Out/L1/V") <= 240  # unit 227 = instance 276, on
    assert demo.valid(227, 33, 1, "vebus", 276, "/Mode") == 3  # the demo starts switched on
    # The battery monitor (instance 512) and the system's battery voltage, read a moment apart:
    # while the ESS loop moves the charge current the voltage moves too, so a few tries.
    for _ in range(5):
        bat_v = demo.valid(225, 259, 100, "battery", 512, "/Dc/0/Voltage")
        sys_v = demo.read(100, 840)[0]
        if abs(bat_v - sys_v / 10) < 0.2:
            break
        time.sleep(0.3)
    assert abs(bat_v - sys_v / 10) < 0.2, (bat_v, sys_v)
    assert demo.valid(224, 776, 100, "solarcharger", 278, "/Pv/V") >= 50  # MPPT roof in the morning sun
    assert demo.valid(226, 776, 100, "solarcharger", 279, "/Pv/V") >= 50  # MPPT bimini
    assert 0 < demo.valid(20, 3004, 10, "tank", 20, "/Level") <= 100
    assert demo.valid(21, 3003, 1, "tank", 21, "/FluidType") == 0  # fuel
    assert 0 < demo.valid(24, 3304, 100, "temperature", 24, "/Temperature") < 50


def test_write_vebus_mode_takes_effect(demo: Demo) -> None:
    demo.mbpoll("-a", "227", "-r", "33", "-t", "4", "127.0.0.1", "4")
    assert demo.read(227, 33)[0] == 4
    deadline = time.monotonic() + 5
    while demo.read(227, 31)[0] != 0 and time.monotonic() < deadline:  # /State 0 = Off
        time.sleep(0.3)
    assert demo.valid(227, 31, 1, "vebus", 276, "/State") == 0
    assert demo.valid(227, 23, 0.1, "vebus", 276, "/Ac/Out/L1/P") == 0  # a real 0 W while off
    # No AC out, no frequency: invalid, which reads as 0 (as on a GX), not 0x7FFF.
    assert demo.same_moment(227, 21, "vebus", 276, "/Ac/Out/L1/F") == (0, None)
    demo.mbpoll("-a", "227", "-r", "33", "-t", "4", "127.0.0.1", "3")
    assert demo.valid(227, 33, 1, "vebus", 276, "/Mode") == 3
    deadline = time.monotonic() + 5
    while demo.read(227, 31)[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert 45 <= demo.valid(227, 21, 100, "vebus", 276, "/Ac/Out/L1/F") <= 65  # on again: a frequency


def test_settings_write_persists(tmp_path: Path) -> None:
    need_tool("mbpoll")
    d = Demo("--state-dir", str(tmp_path))
    try:
        d.mbpoll("-a", "100", "-r", "2901", "-t", "4", "127.0.0.1", "350")  # min SOC 35.0 %
        deadline = time.monotonic() + 3
        while not (tmp_path / "settings.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (tmp_path / "settings.json").exists(), "not on disk within ~1 s"
    finally:
        rc, took, stderr = d.stop()
    assert rc == 0 and took < 1.0, stderr
    assert '"/Settings/CGwacs/BatteryLife/MinimumSocLimit": 35' in (tmp_path / "settings.json").read_text()
    again = Demo("--state-dir", str(tmp_path))
    try:
        assert again.read(100, 2901)[0] == 350
    finally:
        again.stop()


def test_sigterm_and_sigint_stop_within_a_second() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        d = Demo()
        t0 = time.monotonic()
        d.proc.send_signal(sig)
        rc = d.proc.wait(5)
        took = time.monotonic() - t0
        stderr = d.proc.stderr.read() if d.proc.stderr else ""
        assert rc == 0, stderr
        assert took < 1.0, took
        assert "Traceback" not in stderr


def test_port_in_use_is_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = subprocess.run(
            [*GX, "demo", "--modbus", f"127.0.0.1:{port}", "--http", "off"],
            capture_output=True,
            text=True,
            timeout=20,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    assert out.returncode == 1
    assert (
        out.stderr.strip().splitlines()[-1]
        == f"gx-gateway: cannot listen on 127.0.0.1:{port} for Modbus-TCP: address already in use"
    )
    assert "Traceback" not in out.stderr


def test_run_rejects_a_bad_config_in_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text('[modbus]\nlisten = "127.0.0.1:0"\nwrites = "yes"\n', encoding="utf-8")
    out = subprocess.run([*GX, "run", "--config", str(cfg)], capture_output=True, text=True, timeout=20)
    assert out.returncode == 2
    assert out.stderr.strip() == "gx-gateway: modbus.writes: expected true or false, got 'yes'"


def test_run_with_a_config_of_simulated_devices(tmp_path: Path) -> None:
    """`gx-gateway run` as an installer would start it: only the configured devices exist."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "gw.toml"
    cfg.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        f'[modbus]\nlisten = "127.0.0.1:{port}"\n'
        '[[device]]\ndriver = "simulated"\nservice = "battery"\ninstance = 512\n'
        '[[device]]\ndriver = "simulated"\nservice = "tank"\ninstance = 20\nname = "Water"\n',
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [*GX, "run", "--config", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 20
        log = ""
        while f"listening on 127.0.0.1:{port}" not in log and time.monotonic() < deadline:
            log += proc.stderr.readline()
        assert f"listening on 127.0.0.1:{port}" in log, log
        assert 4400 <= read(port, 225, 259)[0] <= 5900  # the battery answers (V x100)
        assert 0 < read(port, 20, 3004)[0] <= 1000  # the tank's level (% x10)
        out = subprocess.run(
            [need_tool("mbpoll"), "-0", "-1", "-p", str(port), "-a", "227", "-r", "33", "-t", "4", "127.0.0.1"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        assert "Gateway path unavailable" in out.stdout + out.stderr  # no vebus configured
        assert read(port, 100, 840)[0] > 0  # the system service derives from the battery
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0


def test_unwritable_state_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'state_dir = "{blocker / "state"}"\n[modbus]\nlisten = "127.0.0.1:0"\n', encoding="utf-8")
    out = subprocess.run([*GX, "run", "--config", str(cfg)], capture_output=True, text=True, timeout=20)
    assert out.returncode == 1
    assert out.stderr.strip() == f"gx-gateway: state_dir {blocker / 'state'}: not a directory"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[[device]]\ndriver = "pvmagic"\ninstance = 20\n',
            "gx-gateway: device[0].driver: unknown driver 'pvmagic' (known: simulated, sunspec, meter, fronius, sma, victron-ble, mopeka, ruuvi, vedirect, canbms)",
        ),
        (
            '[[device]]\ndriver = "sunspec"\ninstance = 20\n',
            "gx-gateway: device[0].host: missing (address of the device)",
        ),
        (
            '[[device]]\ndriver = "sunspec"\ninstance = 20\nhost = "10.0.0.5"\n'
            '[[device]]\ndriver = "sunspec"\ninstance = 20\nhost = "10.0.0.6"\n',
            "gx-gateway: device[1].instance: 20 is already used by device[0] of the same service (pvinverter)",
        ),
        (
            '[[device]]\ndriver = "sunspec"\ninstance = 20\nsimulator = "nosuch"\n',
            "gx-gateway: device[0].simulator: no [[simulator]] named 'nosuch' (known: none)",
        ),
        (
            '[[device]]\ndriver = "simulated"\nservice = "tank"\ninstance = 20\nhost = "10.0.0.5"\n',
            "gx-gateway: device[0].host: not a key of driver 'simulated' (its keys: driver, instance, name, service, via)",
        ),
    ],
)
def test_run_rejects_a_bad_device_in_one_line(tmp_path: Path, toml: str, message: str) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text(toml, encoding="utf-8")
    out = subprocess.run([*GX, "run", "--config", str(cfg)], capture_output=True, text=True, timeout=20)
    assert out.returncode == 2
    assert out.stderr == message + "\n"


def test_demo_flags_override_demo_toml() -> None:
    """--http off drops demo.toml's [http]; --modbus replaces its listen (here: an ephemeral port)."""
    need_tool("mbpoll")
    d = Demo("--http", "off")
    try:
        assert d.port != 5020 and "/api/v1/devices" not in d.banner
        assert "unit 227  vebus 276 (MultiPlus-II)" in d.banner  # the devices still come from demo.toml
    finally:
        rc, _, stderr = d.stop()
    assert rc == 0, stderr


def test_the_bluetooth_and_nmea_2000_sensors_answer_on_their_unit_ids(demo: Demo) -> None:
    """The replayed SmartShunt and Mopeka (gateway/sim/ble_sensors.py) with the values their
    libraries decode from those adverts, and a replayed N2K tank sender."""
    assert "unit  45  battery 45 (Start battery (SmartShunt))" in demo.banner
    assert "unit  46  tank 46 (Fresh water bow (Mopeka))" in demo.banner
    assert 80.0 <= demo.valid(45, 266, 10, "battery", 45, "/Soc") <= 82.0  # 82 %, falling 0.002 %/s
    assert demo.valid(45, 259, 100, "battery", 45, "/Dc/0/Voltage") == pytest.approx(12.9, abs=0.02)
    assert demo.valid(46, 3004, 10, "tank", 46, "/Level") == 60.5  # 242 mm of a 400 mm tank
    assert demo.valid(46, 3003, 1, "tank", 46, "/FluidType") == 1  # fresh water
    assert demo.valid(40, 3004, 10, "tank", 40, "/Level") == 62.0  # the N2K fresh-water sender
