"""Three real devices' VE.Direct output (tests/data/vedirect/: a BlueSolar MPPT 75/15, a BMV,
a SmartSolar MPPT 100/20, recorded by someone else): every block passes our checksum, and
`gx-gateway run` with a vedirect device on a pty fed the whole recording publishes, over
Modbus-TCP, what the last blocks say. The expected values are written out by hand from the
recordings' text (the field's unit times the Venus path's), not computed by our decoder."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient

from gateway.transports.serial import pty_pair
from registers import load_default
from registers.vedirect import TextFramer
from tests.gateway_process import gateway_process, write_config
from tests.helpers import ROOT, register_mismatches

CMAP = load_default(defer_n2k=True)
DATA = ROOT / "tests" / "data" / "vedirect"

# The last blocks of each recording, as text -> Venus units.
LAST = {
    "bluesolar_1.23": (
        "solarcharger",
        {  # V 12540 mV, I 500 mA, VPV 29990 mV, PPV 7 W, CS 3 (bulk), H19 8272 x 0.01 kWh, H21 11 W, H22 25, H23 119
            "/Dc/0/Voltage": 12.54,
            "/Dc/0/Current": 0.5,
            "/Pv/V": 29.99,
            "/Yield/Power": 7,
            "/State": 3,
            "/ErrorCode": 0,
            "/Yield/User": 82.72,
            "/History/Daily/0/MaxPower": 11,
            "/History/Daily/1/Yield": 0.25,
            "/History/Daily/1/MaxPower": 119,
        },
    ),
    "bvm702": (
        "battery",
        {  # V 12169 mV, I -2673 mA, P -33 W, CE -66033 mAh, SOC 837 permille, TTG 3417 min; H1, H7, H8, H17, H18
            "/Dc/0/Voltage": 12.169,
            "/Dc/0/Current": -2.673,
            "/Dc/0/Power": -33,
            "/ConsumedAmphours": -66.033,
            "/Soc": 83.7,
            "/TimeToGo": 3417 * 60,
            "/History/DeepestDischarge": -149.322,
            "/History/MinimumVoltage": 11.733,
            "/History/MaximumVoltage": 16.161,
            "/History/DischargedEnergy": 68.43,
            "/History/ChargedEnergy": 85.27,
        },
    ),
    "smartsolar_1.39": (
        "solarcharger",
        {  # V 12730 mV, I -10 mA, VPV 10 mV, PPV 0 W, CS 0 (off), ERR 0
            "/Dc/0/Voltage": 12.73,
            "/Dc/0/Current": -0.01,
            "/Pv/V": 0.01,
            "/Yield/Power": 0,
            "/State": 0,
            "/ErrorCode": 0,
        },
    ),
}


@pytest.mark.parametrize("name", sorted(LAST))
def test_every_block_of_a_real_recording_passes_the_checksum(name: str) -> None:
    framer = TextFramer()
    blocks = list(framer.feed((DATA / f"{name}.dump").read_bytes()))
    assert len(blocks) > 200 and framer.blocks == len(blocks)
    assert framer.bad_checksum == 0 and framer.garbage == 0


@pytest.mark.parametrize("name", sorted(LAST))
def test_gateway_run_publishes_what_a_real_recording_last_said(tmp_path: Path, name: str) -> None:
    service, expected = LAST[name]
    instance = 279
    unit = CMAP.modbus.unit_for_instance(instance)
    assert unit is not None
    data = (DATA / f"{name}.dump").read_bytes()
    table = CMAP.modbus.tables[service]
    with pty_pair() as (master, path):
        extra = f'[[device]]\ndriver = "vedirect"\ninstance = {instance}\nport = "{path}"\n'
        with gateway_process(write_config(tmp_path, extra, http=False)) as gw:
            # the whole recording, as fast as the pty takes it (a reader that fell behind
            # catches up); then the last two blocks again each second, as the device would
            writer = threading.Thread(target=os.write, args=(master, data), daemon=True)
            writer.start()
            writer.join(30)
            tail = data[data.rindex(b"PID", 0, len(data) - 400) :]
            client = ModbusTcpClient("127.0.0.1", port=gw.modbus)
            assert client.connect()  # type: ignore[no-untyped-call]
            try:
                deadline = time.monotonic() + 10
                while True:
                    mismatches = register_mismatches(client, table, unit, expected)
                    if not mismatches:
                        break
                    assert time.monotonic() < deadline, mismatches
                    os.write(master, tail)
                    time.sleep(0.5)
            finally:
                client.close()  # type: ignore[no-untyped-call]
