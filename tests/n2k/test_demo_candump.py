"""The issue's "Done when": `gx-gateway demo --n2k candump:FILE` for 10 s, as a user runs it,
and the log read back with the nmea2000 package's decoder (independent of our encoder path:
it parses the candump -L text and reassembles fast-packets itself)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from pymodbus.client import ModbusTcpClient

from registers import load_default
from tests.n2k.decode import decode_candump

GX = [sys.executable, "-m", "gateway.cli"]
RUN_S = 10.0


def test_demo_candump_log_has_every_pgn_claimed_and_in_time(tmp_path: Path) -> None:
    log = tmp_path / "n2k.log"
    proc = subprocess.Popen(
        [*GX, "demo", "--n2k", f"candump:{log}", "--modbus", "127.0.0.1:0", "--http", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = ""
        deadline = time.monotonic() + 20
        while "Ctrl-C" not in banner and time.monotonic() < deadline:
            banner += proc.stdout.readline()
        m = re.search(r"Modbus-TCP\s+127\.0\.0\.1:(\d+)", banner)
        assert m, banner
        started = time.monotonic()
        time.sleep(RUN_S - 2.0)
        client = ModbusTcpClient("127.0.0.1", port=int(m.group(1)))
        client.connect()
        try:
            read_at = time.time()
            answer = client.read_input_registers(259, count=1, device_id=225)  # battery monitor V x100
        finally:
            client.close()
        assert not answer.isError(), answer
        modbus_volts = answer.registers[0] / 100
        time.sleep(max(0.0, RUN_S - (time.monotonic() - started)))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)

    decoded = decode_candump(log)
    label: dict[int, str] = {}
    first: dict[int, int] = {}
    claimed: dict[int, int] = {}
    times: dict[tuple[int, int], list[float]] = defaultdict(list)
    for i, msg in enumerate(decoded):
        if msg.pgn == 60928:
            claimed.setdefault(msg.src, i)
        elif msg.pgn != 59904:
            first.setdefault(msg.src, i)
        if msg.pgn == 126996:
            label[msg.src] = " ".join(str(msg.fields["modelVersion"]).split()[:3])
        times[(msg.src, msg.pgn)].append(msg.time)
    assert first and all(src in claimed and claimed[src] < i for src, i in first.items()), "data before a claim"

    cmap = load_default()
    by_label = {v: k for k, v in label.items()}
    demo = {
        "vebus 276", "battery 512", "solarcharger 278", "solarcharger 279", "tank 20", "tank 21",
        "temperature 24", "temperature 25", "digitalinput 30", "system 0",
    }  # fmt: skip
    checked = 0
    for device in demo:
        service = device.split()[0]
        for spec in cmap.n2k[service]:
            src = by_label[f"{device} {spec.role}"]
            for pgn in spec.pgns:
                stamps = times[(src, pgn.pgn)]
                assert len(stamps) >= 2, (device, spec.role, pgn.pgn, len(stamps))
                mean_gap = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
                assert abs(mean_gap - pgn.interval_ms / 1000) < 0.25 * pgn.interval_ms / 1000, (
                    device,
                    pgn.pgn,
                    mean_gap,
                )
                checked += 1
    assert checked == 25  # the PGNs the startup line plans for the demo

    battery = by_label["battery 512 battery"]
    near = sorted((m for m in decoded if m.src == battery and m.pgn == 127508), key=lambda m: abs(m.time - read_at))
    assert abs(near[0].time - read_at) < 1.0
    assert any(abs(m.fields["voltage"] - modbus_volts) <= 0.011 for m in near[:2]), (modbus_volts, near[:2])
