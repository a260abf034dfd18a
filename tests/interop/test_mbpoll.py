"""mbpoll (Debian's C client on libmodbus) against our server, as an integrator would use it."""

from __future__ import annotations

import asyncio
import re

from tests.helpers import need_tool
from tests.modbus_rig import Rig


async def mbpoll(port: int, *args: str) -> tuple[int, str]:
    exe = need_tool("mbpoll")
    proc = await asyncio.create_subprocess_exec(
        exe, "-0", "-1", "-p", str(port), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    return proc.returncode or 0, out.decode()


def values(output: str) -> dict[int, int]:
    """mbpoll prints `[258]: \t64882 (-654)`; take the signed value when it shows one."""
    found = {}
    for m in re.finditer(r"^\[(\d+)\]:\s+(-?\d+)(?: \((-?\d+)\))?", output, re.M):
        found[int(m.group(1))] = int(m.group(3) or m.group(2))
    return found


async def test_mbpoll_reads_fc3_and_fc4(rig: Rig) -> None:
    for table in ("3", "4"):
        rc, out = await mbpoll(rig.port, "-a", "225", "-r", "258", "-c", "4", "-t", table, "127.0.0.1")
        assert rc == 0, out
        assert values(out) == {258: -654, 259: 5231, 260: -1, 261: -125}


async def test_mbpoll_reads_32bit_big_endian(rig: Rig) -> None:
    rc, out = await mbpoll(rig.port, "-a", "225", "-r", "256", "-t", "4:int", "-B", "127.0.0.1")
    assert rc == 0, out
    assert values(out) == {256: -654}


async def test_mbpoll_writes_and_reads_back(rig: Rig) -> None:
    rc, out = await mbpoll(rig.port, "-a", "227", "-r", "33", "-t", "4", "127.0.0.1", "4")
    assert rc == 0 and "Written 1 references" in out, out
    assert rig.store.get("vebus", 276, "/Mode") == 4
    rc, out = await mbpoll(rig.port, "-a", "227", "-r", "33", "-t", "4", "127.0.0.1")
    assert values(out) == {33: 4}


async def test_mbpoll_sees_exceptions(rig: Rig) -> None:
    rc, out = await mbpoll(rig.port, "-a", "17", "-r", "33", "-t", "4", "127.0.0.1")
    assert rc != 0 and "Gateway path unavailable" in out
    rc, out = await mbpoll(rig.port, "-a", "227", "-r", "33", "-t", "4", "127.0.0.1", "9")
    assert rc != 0 and "Illegal data value" in out, out
    assert rig.store.get("vebus", 276, "/Mode") == 3
