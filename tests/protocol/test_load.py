"""Load (issue 11): 200 connections polling while 1000 idle ones are held, against
``gx-gateway run`` in its own process. The bound is generous (CI machines are shared); the
figures measured on a quiet machine are in docs/RELIABILITY.md
(``tests/bench/reliability_bench.py load``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.bench.reliability_bench import DEVICES, LOAD_CONFIG, run_load
from tests.gateway_process import gateway_process, write_config

P99_BOUND_MS = 250.0  # measured 8.7 ms on a quiet machine, up to 480 ms beside a full test run


def test_200_pollers_beside_1000_idle_connections(tmp_path: Path) -> None:
    with gateway_process(write_config(tmp_path, extra=LOAD_CONFIG + DEVICES, http=False)) as gw:
        result = asyncio.run(run_load(gw.modbus, seconds=3.0))
    summary = result.summary()
    assert result.errors == 0, summary
    assert summary["requests"] >= 200 * 10, summary  # every poller kept polling (every 200 ms)
    assert summary["p99_ms"] < P99_BOUND_MS, summary
