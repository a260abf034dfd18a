"""Reliability measurements against ``gx-gateway run`` in its own process (loopback only).

    .venv/bin/python tests/bench/reliability_bench.py load [--seconds 10]
    .venv/bin/python tests/bench/reliability_bench.py never-reader [--seconds 10]
    .venv/bin/python tests/bench/reliability_bench.py soak [--seconds 300]

- load: 200 connections polling (10 registers every 200 ms) while 1000 idle connections are
  held; p50/p99/max latency of the pollers, errors, server RSS.
- never-reader: one client pipelines 125-register reads and never reads a reply; the
  server's RSS over time (the old server went from 43 MB to about 1 GB in 5 s).
- soak: the load above for minutes; RSS sampled every 10 s after a warm-up: flat or not.

docs/RELIABILITY.md records the figures with the machine they came from.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import socket
import statistics
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.gateway_process import gateway_process, write_config

POLLERS, IDLE, PERIOD_S = 200, 1000, 0.2
READ = struct.pack(">HHHBBHH", 1, 0, 6, 227, 3, 3, 10)  # vebus 276, registers 3..12
LOAD_CONFIG = "max_connections = 1400\nmax_per_address = 1400\nidle_timeout_s = 600\n"
DEVICES = '[setpoints]\ntimeout_s = 0\n[[device]]\ndriver = "simulated"\nservice = "vebus"\ninstance = 276\n'


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0

    def summary(self) -> dict[str, float]:
        lat = sorted(self.latencies_ms)
        if not lat:
            return {"requests": 0, "errors": self.errors}
        return {
            "requests": len(lat),
            "errors": self.errors,
            "p50_ms": round(statistics.median(lat), 2),
            "p99_ms": round(lat[int(0.99 * (len(lat) - 1))], 2),
            "max_ms": round(lat[-1], 2),
        }


async def run_load(port: int, seconds: float, pollers: int = POLLERS, idle: int = IDLE) -> LoadResult:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4096)), hard))
    result = LoadResult()
    held = []
    for i in range(idle):  # from 127.0.1.x, as many hosts on a network would
        held.append(await asyncio.open_connection("127.0.0.1", port, local_addr=(f"127.0.1.{i % 250 + 1}", 0)))
    stop = time.monotonic() + seconds

    async def poll(n: int) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(f"127.0.2.{n % 250 + 1}", 0))
        await asyncio.sleep(PERIOD_S * n / pollers)  # spread over the period
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                w.write(READ)
                reply = await asyncio.wait_for(r.readexactly(29), 5)
                assert reply[7] == 3
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
            except (OSError, TimeoutError, AssertionError, asyncio.IncompleteReadError):
                result.errors += 1
                return
            await asyncio.sleep(max(0.0, PERIOD_S - (time.perf_counter() - t0)))
        w.close()

    await asyncio.gather(*(poll(n) for n in range(pollers)))
    for _, w in held:
        w.close()
    return result


def never_reader(port: int, pid: int, seconds: float) -> list[tuple[float, float]]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(0.2)
    burst = struct.pack(">HHHBBHH", 1, 0, 6, 227, 3, 3, 125) * 4096
    samples, t0, next_sample = [], time.monotonic(), 0.0
    while (now := time.monotonic() - t0) < seconds:
        with contextlib.suppress(TimeoutError, OSError):
            sock.send(burst)
        if now >= next_sample:
            samples.append((round(now, 1), round(rss_mb(pid), 1)))
            next_sample += 1.0
    sock.close()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["load", "never-reader", "soak"])
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        extra = LOAD_CONFIG + DEVICES
        with gateway_process(write_config(Path(tmp), extra=extra, http=False)) as gw:
            pid = gw.proc.pid
            print(f"server RSS at start: {rss_mb(pid):.1f} MB")
            if args.what == "load":
                res = asyncio.run(run_load(gw.modbus, args.seconds or 10.0))
                print(f"{POLLERS} polling + {IDLE} idle:", res.summary(), f"server RSS {rss_mb(pid):.1f} MB")
            elif args.what == "never-reader":
                for t, mb in never_reader(gw.modbus, pid, args.seconds or 10.0):
                    print(f"  t={t:>5} s  RSS {mb} MB")
            else:
                total = args.seconds or 300.0
                rounds = max(1, int(total // 10))
                samples = []
                for n in range(rounds):
                    res = asyncio.run(run_load(gw.modbus, 10.0))
                    samples.append(rss_mb(pid))
                    print(f"  {(n + 1) * 10:>5} s  RSS {samples[-1]:.1f} MB  {res.summary()}", flush=True)
                warm = samples[min(2, len(samples) - 1) :]
                growth = max(warm) - warm[0]
                print(f"RSS after warm-up {warm[0]:.1f} MB, growth {growth:.1f} MB over {total:g} s")
                return 0 if growth < 5.0 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
