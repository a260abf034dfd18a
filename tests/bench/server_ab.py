"""A/B of the Modbus server's per-request Python cost: this tree's gateway/frontends/modbus/server.py
against the one at a git revision, in-process (no sockets: ``data_received`` -> reply, the
transport's write a no-op), alternating, best of 5 per run. Immune to a busy network stack,
so it shows what a change to the framing code itself costs.

    .venv/bin/python tests/bench/server_ab.py REVISION [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gateway.core.store import Store  # noqa: E402
from registers import load_default  # noqa: E402
from tests.protocol.test_stream_robustness import RecordingTransport  # noqa: E402

READ = struct.pack(">HHHBBHH", 1, 0, 6, 227, 3, 3, 10)


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def ns_per_read(module: Any, cmap: Any, n: int = 200_000) -> float:
    store = Store()
    store.add_device("vebus", 276, None, {"/Mode": 3})
    conn = module.Connection(module.ModbusServer(cmap, store))
    transport = RecordingTransport()
    conn.connection_made(transport)
    transport.write = lambda _data: None  # type: ignore[method-assign]
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            conn.data_received(READ)
        best = min(best, (time.perf_counter() - t0) / n * 1e9)
    return best


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("revision")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    old = subprocess.run(
        ["git", "show", f"{args.revision}:gateway/frontends/modbus/server.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    cmap = load_default()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "old_server.py").write_bytes(old)
        modules = {args.revision: load("old_server", Path(tmp) / "old_server.py")}
        modules["this tree"] = load("new_server", ROOT / "gateway" / "modbus" / "server.py")
        results: dict[str, list[float]] = {k: [] for k in modules}
        for _ in range(args.rounds):
            for label, module in modules.items():
                results[label].append(asyncio.run(ns_per_read(module, cmap)))
    for label, values in results.items():
        print(f"{label:>12}: {min(values):.0f} ns per 10-register read (best of {args.rounds}; all {values})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
