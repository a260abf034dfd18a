"""``gx-gateway simulate meter --rtu``: two meters on a pty behind a by-id-like link answer real
RTU frames; its stdin commands silence a unit and corrupt an answer's CRC, as the RTU link sees."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from gateway.transports.rtu import CrcError, RtuLink
from gateway.transports.serial import SerialSettings
from gateway.transports.tcp import RequestTimeout
from registers import load_default
from registers.meters import meter_models
from tests.gateway_process import GX

MODELS = meter_models(load_default())


def command(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == f"ok: {line}"


def test_simulate_meter_rtu_answers_and_faults_on_command(tmp_path: Path) -> None:
    link_path = tmp_path / "usb-FTDI_USB_RS485-if00-port0"
    proc = subprocess.Popen(
        [str(GX), "simulate", "meter", "--rtu", "--meters", "em24:1,sdm630:2", "--link", str(link_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    em24, sdm = MODELS["em24"].blocks[0], MODELS["sdm630"].blocks[0]
    try:
        banner = proc.stdout.readline().strip()
        assert banner.startswith(f'Modbus RTU bus simulator on {link_path} (transport = "rtu", port = "{link_path}")')
        assert "unit 2: Eastron SDM630" in banner
        proc.stdout.readline()  # the help line

        async def read(unit: int, block: object) -> bytes:
            link = RtuLink(str(link_path), SerialSettings(baud=9600), timeout_s=0.3)
            try:
                return await link.read(unit, block.address, block.count, None, block.function)  # type: ignore[attr-defined]
            finally:
                await link.close()

        assert len(asyncio.run(read(1, em24))) == 2 * em24.count
        assert len(asyncio.run(read(2, sdm))) == 2 * sdm.count
        command(proc, "silence 2")
        with pytest.raises(RequestTimeout, match="no answer from unit 2"):
            asyncio.run(read(2, sdm))
        assert len(asyncio.run(read(1, em24))) == 2 * em24.count  # the other meter still answers
        command(proc, "talk 2")
        command(proc, "bad")
        with pytest.raises(CrcError):
            asyncio.run(read(2, sdm))
        assert len(asyncio.run(read(2, sdm))) == 2 * sdm.count
    finally:
        proc.terminate()
        proc.wait(5)
    assert not link_path.exists()  # the link goes with the simulator
