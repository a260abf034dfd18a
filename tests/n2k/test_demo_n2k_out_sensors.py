"""The demo's Bluetooth sensors go out on NMEA 2000 and its NMEA 2000 senders are not echoed:
`gx-gateway demo --n2k candump:FILE` as a user runs it, the log read back with the nmea2000
package's decoder (issue 18, item 3)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.demo_process import DemoProcess
from tests.n2k.decode import decode_candump

RUN_S = 8.0


def test_the_ble_smartshunt_and_mopeka_are_sent_and_the_n2k_senders_are_not_echoed(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    demo = DemoProcess(demo_options=["--n2k", f"candump:{log}"])
    try:
        banner = demo.banner
        assert re.search(r"unit\s+45\s+battery 45", banner) and re.search(r"unit\s+40\s+tank 40", banner), banner
        time.sleep(RUN_S)
    finally:
        demo.stop()

    decoded = decode_candump(log)
    label = {m.src: str(m.fields["modelVersion"]) for m in decoded if m.pgn == 126996}
    by_label = {" ".join(v.split()[:3]): src for src, v in label.items()}
    # The Bluetooth devices are the gateway's own: each a virtual device with its PGNs.
    shunt, mopeka = by_label["battery 45 battery"], by_label["tank 46 tank"]
    volts = [m.fields["voltage"] for m in decoded if m.src == shunt and m.pgn == 127508]
    assert volts and all(v == pytest.approx(12.9, abs=0.02) for v in volts)  # what victron-ble decodes
    levels = [(m.fields["instance"], m.fields["level"]) for m in decoded if m.src == mopeka and m.pgn == 127505]
    assert levels and all(level == pytest.approx(0.605, abs=1e-4) for _, level in levels)  # 242 mm of 400 mm (SI)
    # The NMEA 2000 senders the demo reads (tanks 40, 41, temperature 42) are on the bus already:
    # no virtual device of ours repeats them: every tank level sent is one of the demo's own tanks.
    assert not [v for v in by_label if v.startswith(("tank 40 ", "tank 41 ", "temperature 42 "))], sorted(by_label)
    senders = {label[m.src].split()[1] for m in decoded if m.pgn in (127505, 130312, 130316)}
    assert senders == {"20", "21", "46", "24", "25"}, senders
