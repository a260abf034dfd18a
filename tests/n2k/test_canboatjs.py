"""Interop: Signal K's decoder (canboatjs ``analyzerjs``, npm @canboat/canboatjs) reads the
candump -L log the gateway writes: the same PGNs, instances and values as the Store holds.
canboatjs reports some fields in canboat's "native" units (SOC and tank level in %, capacity
in L); apparent power left "not available" in the J1939 PGNs it shows as -2000000001 (its
offset applied to the sentinel), a known disagreement between the decoders."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from gateway.transports.can import CandumpFile
from tests.helpers import need_interop
from tests.n2k.rig import frontend, full_store, wait_for

pytestmark = pytest.mark.interop


def analyzerjs() -> str:
    exe = os.environ.get("GXGW_ANALYZERJS") or shutil.which("analyzerjs")
    need_interop(exe is not None, "analyzerjs not found (npm install @canboat/canboatjs; or set GXGW_ANALYZERJS)")
    assert exe is not None
    return exe


async def test_canboatjs_reads_what_the_gateway_writes(tmp_path: Path) -> None:
    exe = analyzerjs()
    log = tmp_path / "n2k.log"
    fe = frontend(full_store(), "unused")
    fe.transport = CandumpFile(log)
    await fe.start()
    try:
        assert await wait_for(lambda: log.exists() and "#" in log.read_text() and _all_sent(fe), timeout=8.0, step=0.5)
    finally:
        await fe.stop()
    proc = await asyncio.create_subprocess_exec(exe, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    stdout, _ = await asyncio.wait_for(proc.communicate(log.read_bytes()), 60)
    decoded = [json.loads(line) for line in stdout.decode().splitlines() if line.startswith("{")]
    by = {(m["src"], m["pgn"]): m["fields"] for m in decoded}
    address = {vd.key: vd.address for vd in fe.virtual_devices()}
    battery = by[(address["battery/512/battery"], 127508)]
    assert battery["Voltage"] == pytest.approx(52.37, abs=0.006)
    assert battery["Current"] == pytest.approx(-12.5, abs=0.06)
    assert battery["Temperature"] == pytest.approx(297.65, abs=0.006)
    assert by[(address["battery/512/battery"], 127506)]["State of Charge"] == 87
    charger = by[(address["solarcharger/278/charger"], 127507)]
    assert charger["Operating State"] == "Bulk" and charger["Enabled"] == "On"
    inverter = by[(address["vebus/276/inverter"], 127509)]
    assert inverter["Operating State"] == "Invert"
    ac_in = by[(address["vebus/276/acinput"], 127503)]["list"][0]
    assert ac_in["Voltage"] == pytest.approx(229.6, abs=0.006) and ac_in["Real Power"] == 2770
    tank = by[(address["tank/21/tank"], 127505)]
    assert tank["Type"] == "Water" and tank["Level"] == pytest.approx(62.5, abs=0.01)
    temperature = by[(address["temperature/24/sensor"], 130316)]
    assert temperature["Source"] == "Engine Room Temperature"
    assert temperature["Temperature"] == pytest.approx(314.45, abs=0.002)
    instances = [by[(address[k], 127508)]["Instance"] for k in address if (address[k], 127508) in by]
    assert len(instances) == len(set(instances)) >= 4  # every DC source its own instance


def _all_sent(fe) -> bool:  # type: ignore[no-untyped-def]
    jobs = [j for node in fe.nodes.values() for j in node.jobs]
    return bool(jobs) and all(j.sent > 0 for j in jobs if j.sending and j.spec.pgn > 100_000)
