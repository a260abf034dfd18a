"""NMEA 2000 in + Bluetooth benchmark: a busy backbone (1000 frames/s of mixed PGNs) and 20 BLE
sensors (1 advertisement/s each), CPU and RSS of the gateway reading them, against a floor.

Run from the repository root (nice it: it takes a core for a while)::

    nice .venv/bin/python tests/bench/n2k_in_bench.py [--duration 10]

The backbone is a ``candump -L`` log encoded by canboat (the ``nmea2000`` package): 10 battery
monitors (127508 + 127506, a fast-packet PGN), 20 tank senders (127505), 10 temperature senders
(130312 + 130316) and 10 navigation senders (129025, 127250, 130306: PGNs the maps do not read),
each PGN at 10 Hz, 1000 frames/s in all; the air is a replay of 10 SmartShunts (each its own key)
and 10 Mopekas. Processes measured in turn, each over ``--duration`` s after 2 s to settle (CPU
time / wall time, % of one core; VmRSS from /proc):

1. idle: ``gx-gateway run`` with the Modbus frontend only (what the added RSS is counted from);
2. floor: the same log replayed at its pace (the same ``CandumpReplay``) and every frame decoded
   with the nmea2000 package alone (its id split, fast-packet reassembler and decoder);
3. ``gx-gateway run`` with ``[n2k] input = "candump-replay:LOG"`` (frame stage, services, Store);
4. the same plus the 20 BLE devices on ``replay:ADVERTS``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gateway.sim.ble_sensors import (  # noqa: E402
    BATTERY_MONITOR,
    MOPEKA_SERVICE,
    SMARTSHUNT_MODEL,
    battery_record,
    instant_readout,
    mopeka_payload,
    write_adverts,
)
from gateway.sim.n2k_log import T0, Sender, claim_frame, frames_of  # noqa: E402
from gateway.transports.ble_advert import Advert  # noqa: E402
from gateway.transports.can_raw import RawFrame, format_candump_line  # noqa: E402

GX = Path(sys.executable).parent / "gx-gateway"
HTTP_PORT = 18081
HZ = 10.0
SENSORS = 20

FLOOR = """
import asyncio, sys
from pathlib import Path
from nmea2000 import _canboat as canboat
from nmea2000 import backend
from gateway.transports.can_raw import CandumpReplay

async def main() -> None:
    replay = CandumpReplay(Path(sys.argv[1]))
    await replay.open()
    reassembler = canboat.Reassembler()
    print("ready", flush=True)
    while True:
        try:
            frame = await replay.receive()
        except EOFError:
            await asyncio.Event().wait()
        prio, pgn, src, dst = canboat.can_id_decompose(frame.can_id)
        payload = frame.data
        if backend.is_fast_pgn(pgn):
            try:
                payload = reassembler.push(pgn, frame.data, src, dst, prio)
            except canboat.ReassemblyError:
                continue
            if payload is None:
                continue
        try:
            backend.decode(pgn, payload, src, dst, prio, "si")
        except (canboat.DecodeError, ValueError):
            pass

asyncio.run(main())
"""


def streams() -> Iterator[tuple[Sender, list[tuple[str, dict[str, Any]]]]]:
    """Each sender (its claim) and the PGNs it sends, with their fields."""
    for i in range(10):
        yield Sender(10 + i, 30000 + i, 135, 35, 170, "Battery", "batteryStatus", {}), [
            ("batteryStatus", {"instance": i, "voltage": 12.6 + i / 100, "current": -4.2, "temperature": 295.0}),
            ("dcDetailedStatus", {"instance": i, "dcType": "Battery", "stateOfCharge": 0.8, "stateOfHealth": 0.97,
                                  "timeRemaining": 36000, "rippleVoltage": 0.01}),
        ]  # fmt: skip
    for i in range(20):
        yield (
            Sender(30 + i, 31000 + i, 144, 75, 150, "Tank", "fluidLevel", {}),
            [
                (
                    "fluidLevel",
                    {
                        "instance": i % 10,
                        "type": "Water" if i < 10 else "Fuel",
                        "level": 0.4 + i / 100,
                        "capacity": 0.2,
                    },
                )
            ],
        )
    for i in range(10):
        yield (
            Sender(60 + i, 32000 + i, 137, 75, 130, "Temp", "temperature", {}),
            [
                ("temperature", {"instance": i, "source": "Sea Temperature", "actualTemperature": 290.0 + i}),
                (
                    "temperatureExtendedRange",
                    {"instance": i, "source": "Outside Temperature", "temperature": 280.0 + i},
                ),
            ],
        )
    for i in range(10):
        yield (
            Sender(80 + i, 33000 + i, 381, 60, 140, "Nav", "positionRapidUpdate", {}),
            [
                ("positionRapidUpdate", {"latitude": 52.1 + i / 100, "longitude": 4.3}),
                ("vesselHeading", {"heading": 1.2, "reference": "Magnetic"}),
                ("windData", {"windSpeed": 6.5, "windAngle": 0.8, "reference": "Apparent"}),
            ],
        )


def write_backbone(path: Path, seconds: float) -> tuple[int, int]:
    """The log; returns (frames, frames per second of data)."""
    from nmea2000 import backend

    plan = [(s, pgns) for s, pgns in streams()]
    lines = [format_candump_line(claim_frame(s)) for s, _ in plan]
    payloads = {
        (s.address, pgn_id): (backend.DATABASE.pgn_info(pgn_id).pgn, backend.DATABASE.encode(pgn_id, fields))
        for s, pgns in plan
        for pgn_id, fields in pgns
    }
    per_second = 0
    for n in range(int(seconds * HZ)):
        t = T0 + 0.05 + n / HZ
        count = 0
        for k, (s, pgns) in enumerate(plan):
            for j, (pgn_id, _) in enumerate(pgns):
                pgn, payload = payloads[(s.address, pgn_id)]
                s.seq += 1
                ts = t + (k * 3 + j) * 0.0005  # spread over the 100 ms, as a bus does
                for f in frames_of(pgn, payload, s.address, s.seq, ts=ts):
                    lines.append(format_candump_line(RawFrame(ts, f.can_id, True, f.data)))
                    count += 1
        per_second = int(count * HZ)
    lines.sort(key=lambda line: float(line[1 : line.index(")")]))
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return len(lines), per_second


def sensor(i: int) -> tuple[str, str]:
    return f"C0:3B:98:B0:00:{i:02X}", f"{i:02x}" + "f4d0395b7d1a876c0c33ecb9e70dcd"


def write_air(path: Path, seconds: float) -> None:
    adverts = []
    for n in range(int(seconds)):
        for i in range(SENSORS):
            address, key = sensor(i)
            t = T0 + n + i / SENSORS
            if i % 2 == 0:
                record = battery_record(12.8, -3.0, 75.0, 12.0, 600)
                data = instant_readout(key, SMARTSHUNT_MODEL, BATTERY_MONITOR, (n * SENSORS + i) & 0xFFFF, record)
                adverts.append(Advert(t, address, -60, "SmartShunt", {0x02E1: data}))
            else:
                payload = {0x59: mopeka_payload(address, 300 + i, 18, 2.9)}
                adverts.append(Advert(t, address, -70, "", payload, (MOPEKA_SERVICE,)))
    write_adverts(path, iter(adverts))


def ble_devices(source: str) -> str:
    out = []
    for i in range(SENSORS):
        address, key = sensor(i)
        if i % 2 == 0:
            out.append(f'[[device]]\ndriver = "victron-ble"\naddress = "{address}"\nkey = "{key}"\n')
        else:
            out.append(f'[[device]]\ndriver = "mopeka"\naddress = "{address}"\n')
        out[-1] += f'source = "{source}"\ninstance = {150 + i}\n'
    return "".join(out)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(proc: subprocess.Popen[str], duration: float) -> tuple[float, float]:
    time.sleep(2)  # settle: the bus open, the first frames in
    c0, t0 = cpu_s(proc.pid), time.monotonic()
    time.sleep(duration)
    c1, t1 = cpu_s(proc.pid), time.monotonic()
    return 100 * (c1 - c0) / (t1 - t0), rss_mb(proc.pid)


def connected() -> tuple[int, int]:
    """(N2K-in services, BLE devices) with /Connected 1, from the JSON API."""
    with urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/api/v1/values", timeout=5) as r:
        values = json.load(r)
    rows = values["values"] if isinstance(values, dict) else values
    by_device: dict[tuple[str, int], dict[str, Any]] = {}
    for v in rows:
        by_device.setdefault((v["service"], v["instance"]), {})[v["path"]] = v["value"]
    on = [d.get("/Mgmt/ProcessName") for d in by_device.values() if d.get("/Connected") == 1]
    return on.count("n2k-in"), sum(str(p).startswith("ble-") for p in on)


def gateway(folder: Path, name: str, body: str, duration: float) -> tuple[float, float, tuple[int, int]]:
    config = folder / f"{name}.toml"
    state = folder / f"state-{name}"
    http = f'[http]\nlisten = "127.0.0.1:{HTTP_PORT}"\n'
    config.write_text(f'state_dir = "{state}"\n[modbus]\nlisten = "127.0.0.1:0"\n{http}{body}', encoding="utf-8")
    gw = subprocess.Popen([str(GX), "run", "--config", str(config)], stderr=subprocess.DEVNULL, cwd=ROOT, text=True)
    try:
        cpu, rss = measure(gw, duration)
        seen = connected()
    finally:
        gw.terminate()
        gw.wait(10)
    return cpu, rss, seen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=10.0)
    args = ap.parse_args()
    seconds = args.duration + 8  # the replay outlasts settle + window
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        backbone, air = folder / "backbone.log", folder / "air.jsonl"
        frames, rate = write_backbone(backbone, seconds)
        write_air(air, seconds)
        idle = gateway(folder, "idle", "", args.duration)
        floor_proc = subprocess.Popen(
            [sys.executable, "-c", FLOOR, str(backbone)], stdout=subprocess.PIPE, text=True, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert floor_proc.stdout is not None and floor_proc.stdout.readline().strip() == "ready"
        try:
            floor = measure(floor_proc, args.duration)
        finally:
            floor_proc.terminate()
            floor_proc.wait(5)
        n2k_body = f'[n2k]\ninterface = "off"\ninput = "candump-replay:{backbone}"\n'
        n2k = gateway(folder, "n2k", n2k_body, args.duration)
        both = gateway(folder, "both", n2k_body + ble_devices(f"replay:{air}"), args.duration)
    print(
        f"backbone: {rate} frames/s ({frames} frames), air: {SENSORS} sensors at 1 advert/s; {args.duration:g} s window"
    )
    print(f"  gx-gateway run, Modbus only (idle):   {idle[0]:5.2f} % of a core, RSS {idle[1]:5.1f} MB")
    print(f"  floor: nmea2000 decoding alone:       {floor[0]:5.2f} % of a core, RSS {floor[1]:5.1f} MB")
    for label, (cpu, rss, (services, sensors)) in (("N2K in", n2k), ("N2K in + 20 BLE", both)):
        print(
            f"  gx-gateway run, {label + ':':<17}{cpu:6.2f} % of a core ({cpu / floor[0]:.2f}x the floor), "
            f"RSS {rss:5.1f} MB (+{rss - idle[1]:.1f} MB), {services} N2K services and {sensors} BLE devices connected"
        )


if __name__ == "__main__":
    main()
