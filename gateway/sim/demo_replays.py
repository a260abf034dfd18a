"""The demo's two replays (NMEA 2000 senders, Bluetooth sensors) as this process sees them.

The recordings are written once into the temporary folder and shared by every demo (an hour
each, the same bytes every time); each demo process reads them through links in a folder of
its own, so the ``touch …unplug`` control file beside a link (gateway.transports.replay) stops
that demo's replay and no other's. The folder goes when the process ends.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Final

N2K_LOG: Final = "n2k-demo.log"
BLE_LOG: Final = "ble-demo.jsonl"


@functools.cache
def _folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="gx-gateway-demo-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _link(name: str, shared: Path) -> Path:
    link = _folder() / name
    if not link.is_symlink():
        link.symlink_to(shared)
    return link


def n2k_replay() -> Path:
    from gateway.sim.n2k_log import demo_log  # nmea2000: only when the demo reads N2K

    return _link(N2K_LOG, demo_log())


def ble_replay() -> Path:
    from gateway.sim.ble_sensors import demo_ble_log  # cryptography: only with BLE devices

    return _link(BLE_LOG, demo_ble_log())
