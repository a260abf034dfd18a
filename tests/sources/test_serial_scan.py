"""``gx-gateway scan --serial``: a VE.Direct port is told by listening, and becomes a table."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.gateway_process import GX

SIM = """
import asyncio, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from gateway.sim.vedirect_sim import VeDirectSim
async def main():
    sim = VeDirectSim("smartshunt", link=Path({link!r}), interval_s=0.3)
    await sim.start()
    print("ready", flush=True)
    await asyncio.sleep(30)
asyncio.run(main())
"""


def test_scan_serial_finds_a_vedirect_device_and_names_the_rest(tmp_path: Path) -> None:
    link = tmp_path / "usb-VictronEnergy_BV_VE_Direct_cable-if00-port0"
    root = str(Path(__file__).resolve().parents[2])
    sim = subprocess.Popen(
        [sys.executable, "-c", SIM.format(root=root, link=str(link))], stdout=subprocess.PIPE, text=True
    )
    try:
        assert sim.stdout is not None and sim.stdout.readline().strip() == "ready"
        missing = tmp_path / "ttyUSB9"
        out = subprocess.run(
            [str(GX), "scan", "--serial", f"{link},{missing}"], capture_output=True, text=True, timeout=20
        )
    finally:
        sim.terminate()
        sim.wait(5)
    assert out.returncode == 0, out.stderr
    tables = tomllib.loads(out.stdout)["device"]
    assert tables == [{"driver": "vedirect", "port": str(link), "name": "SmartShunt 500A/50mV"}]
    assert f"# {missing}: {missing} does not exist" in out.stdout
    assert "[1/2]" in out.stderr or "[2/2]" in out.stderr
