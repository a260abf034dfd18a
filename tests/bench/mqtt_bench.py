"""MQTT benchmark: the frontend publishing through a local Mosquitto, against mosquitto_pub.

Run from the repository root (``make bench`` prints)::

    .venv/bin/python tests/bench/mqtt_bench.py [--paths 10000] [--seconds 10]

A Store of 10 devices x 1,000 paths (``--paths``) and the MQTT frontend in this process;
Debian's Mosquitto on an ephemeral loopback port; ``mosquitto_sub`` (its own process) counts
what arrives. Two figures:

- full publish: from a keep-alive to ``mosquitto_sub`` having every topic and
  ``full_publish_completed``;
- 1,000 changes a second (100 every 100 ms) for ``--seconds``: our CPU (this process's
  utime+stime over the window, % of one core) and RSS, against the floor, ``mosquitto_pub -l``
  publishing the same number of messages (its CPU from wait4). Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.core.store import Store
from gateway.core.writes import WriteGate
from gateway.frontends.mqtt.component import MqttFrontend
from gateway.frontends.mqtt.options import MqttConfig
from registers import load_default
from tests.mqtt.rig import Mosquitto

PORTAL = "bench0000001"


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def count(port: int, n: int, topic: str) -> asyncio.subprocess.Process:
    sub = await asyncio.create_subprocess_exec(
        "mosquitto_sub", "-p", str(port), "-t", topic, "-C", str(n), stdout=asyncio.subprocess.DEVNULL
    )
    await asyncio.sleep(0.3)  # subscribed
    return sub


def pub_floor(port: int, messages: int) -> float:
    """CPU seconds of mosquitto_pub publishing ``messages`` lines, as the floor."""
    with tempfile.TemporaryFile("w+") as lines:
        lines.writelines('{"value":1.5}\n' for _ in range(messages))
        lines.seek(0)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.dup2(lines.fileno(), 0)
            os.execvp("mosquitto_pub", ["mosquitto_pub", "-p", str(port), "-t", "bench/floor", "-l"])
        _, _, usage = os.wait4(pid, 0)
    return usage.ru_utime + usage.ru_stime


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--paths", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    if not shutil.which("mosquitto_sub"):
        print("mqtt bench: mosquitto-clients not installed; skipped")
        return
    cmap = load_default()
    broker = Mosquitto()
    await broker.start()
    store = Store()
    per = args.paths // 10
    for d in range(10):
        store.add_device("battery", 100 + d, None, {f"/X/{i}": float(i) for i in range(per)})
    config = MqttConfig(broker=broker.url, portal_id=PORTAL, keepalive_s=3600)
    frontend = MqttFrontend(store, cmap, WriteGate(store, cmap), config, lambda: PORTAL)
    await frontend.start()
    await asyncio.sleep(0.5)
    venus = frontend.venus
    assert venus is not None
    topics = args.paths + 10 * 6 + 1  # the paths, the identity paths, the serial
    sub = await count(broker.port, topics + 1, f"N/{PORTAL}/#")
    t0 = time.perf_counter()
    venus.handle(f"R/{PORTAL}/keepalive", b"")
    await sub.wait()
    full = time.perf_counter() - t0
    print(f"full publish of {topics} topics: {full:.2f} s to full_publish_completed at mosquitto_sub")

    changes = int(1000 * args.seconds)
    sub = await count(broker.port, changes, f"N/{PORTAL}/battery/+/X/#")
    c0, w0 = cpu(), time.perf_counter()
    for step in range(int(args.seconds * 10)):
        d = step % 10
        store.publish("battery", 100 + d, {f"/X/{i}": float(i + step + 1) for i in range(100)})
        await asyncio.sleep(max(0.0, w0 + (step + 1) * 0.1 - time.perf_counter()))
    await asyncio.wait_for(sub.wait(), 30)
    ours, wall = cpu() - c0, time.perf_counter() - w0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    floor = pub_floor(broker.port, changes)
    print(
        f"1,000 changes/s for {args.seconds:g} s: {changes / wall:.0f} messages/s, gateway CPU {100 * ours / wall:.1f} %"
        f" of a core (max RSS {rss:.0f} MB); mosquitto_pub for the same {changes} messages: {floor:.2f} s CPU"
        f" = {100 * floor / wall:.1f} % over the window; ratio {ours / max(floor, 1e-3):.1f}x"
    )
    await frontend.stop()
    await broker.stop()


if __name__ == "__main__":
    asyncio.run(main())
