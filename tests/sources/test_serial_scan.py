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


def test_scan_serial_probes_a_silent_port_for_rtu_meters(tmp_path: Path) -> None:
    link = tmp_path / "usb-FTDI_USB_RS485-if00-port0"
    sim = subprocess.Popen(
        [str(GX), "simulate", "meter", "--rtu", "--meters", "em24:1,sdm630:3", "--link", str(link)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sim.stdout is not None and sim.stdout.readline().startswith("Modbus RTU bus simulator")
        out = subprocess.run([str(GX), "scan", "--serial", str(link)], capture_output=True, text=True, timeout=30)
    finally:
        sim.terminate()
        sim.wait(5)
    assert out.returncode == 0, out.stderr
    tables = tomllib.loads(out.stdout)["device"]
    assert tables == [
        {
            "driver": "meter",
            "transport": "rtu",
            "port": str(link),
            "baud": 9600,
            "parity": "none",
            "unit": 1,
            "instance": 40,
            "model": "em24",
            "role": "grid",
        }
    ]
    # the SDM630 has no model id: it answers the probe with a number no file claims
    assert f"# {link} unit 3: unsupported: unit 3: model id 0 at register 0x000b" in out.stdout
    assert "(a meter without a model id, sdm630" in out.stdout and "write its table with model set" in out.stdout
    assert "no VE.Direct text" in out.stderr and "Modbus RTU at 9600 8N1, units 1-4" in out.stderr
    assert "[1/1]" in out.stderr and "2 Modbus RTU unit(s) at 9600 8N1" in out.stderr
