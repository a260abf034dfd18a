"""Shared test helpers: interop gating, paths, test data."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAPPINGS = ROOT / "mappings"
DATA = ROOT / "tests" / "data"  # reference facts carried in the project (tests/data/README.md)
SHARED = ROOT.parent / "shared"
REFERENCE = SHARED / "reference"


def interop_required() -> bool:
    return os.environ.get("GXGW_REQUIRE_INTEROP") == "1"


def need_interop(available: bool, reason: str) -> None:
    """Skip (locally) or fail (GXGW_REQUIRE_INTEROP=1) when an interop peer is missing."""
    if available:
        return
    if interop_required():
        pytest.fail(f"interop peer missing and GXGW_REQUIRE_INTEROP=1: {reason}")
    pytest.skip(reason)


def need_reference(rel: str) -> Path:
    path = REFERENCE / rel
    need_interop(path.is_file(), f"shared reference data not found at {path} (clone ../shared beside the checkout)")
    return path


def reference_data(rel: str) -> Path:
    """A reference file carried in tests/data (always present: a fresh clone runs every test)."""
    path = DATA / rel
    assert path.is_file(), f"{path} is missing from the checkout"
    return path


def need_tool(name: str) -> str:
    exe = shutil.which(name)
    need_interop(exe is not None, f"{name} not installed (Debian: apt-get install {name})")
    assert exe is not None
    return exe


# --- mbpoll (Debian's command-line client on libmodbus) ---------------------------------------
_MBPOLL_LINE = re.compile(r"^\[(\d+)\]:\s+(-?\d+)(?: \((-?\d+)\))?", re.M)


def mbpoll_argv(port: int, *args: str) -> list[str]:
    """The mbpoll command line for one poll (-1) with wire addresses (-0) of 127.0.0.1:port's server."""
    return [need_tool("mbpoll"), "-0", "-1", "-p", str(port), *args]


def parse_mbpoll(output: str) -> dict[int, int]:
    """Register -> value from mbpoll's output lines such as `[258]: \t64882 (-654)`.

    mbpoll shows a 16-bit register unsigned, followed by the signed reading in parentheses when
    that differs; the signed one is taken when shown.
    """
    return {int(m.group(1)): int(m.group(3) or m.group(2)) for m in _MBPOLL_LINE.finditer(output)}


async def run_mbpoll(port: int, *args: str, timeout: float = 10.0) -> tuple[int, str]:
    """Run mbpoll without blocking the event loop (the server under test may share it).

    Returns mbpoll's exit status and its stdout and stderr together.
    """
    proc = await asyncio.create_subprocess_exec(
        *mbpoll_argv(port, *args), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode()


# --- Modbus reads against what a map says a value encodes to -------------------------------
def register_mismatches(client: Any, table: Any, unit: int, expected: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every register of every path in ``expected``, read with a pymodbus sync client, whose
    bytes differ from the map's encoding of the value: (path, address, got, wanted) each."""
    mismatches = []
    for p, value in expected.items():
        regs = table.by_path.get(p, ())
        assert regs, f"{p} has no register in the table"
        for reg in regs:
            rr = client.read_holding_registers(reg.address, count=reg.codec.width, device_id=unit)
            got = b"".join(r.to_bytes(2, "big") for r in rr.registers) if not rr.isError() else b""
            if got != reg.encode(value):
                mismatches.append((p, reg.address, got.hex(), reg.encode(value).hex()))
    return mismatches
