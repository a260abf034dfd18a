"""A Store with one device of every mapped service, an N2K frontend on python-can's in-process
virtual bus, and a peer on the same bus that records frames and sends commands, as a plotter
or config tool would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import can
from nmea2000 import _canboat as canboat

from gateway.core.store import Store
from gateway.frontends.n2k.frontend import N2kFrontend, N2kSettings
from registers import load_default
from registers.values import Scalar
from tests.n2k.decode import Decoded, decode_lines

VALUES: dict[tuple[str, int], dict[str, Scalar]] = {
    ("battery", 512): {
        "/Dc/0/Voltage": 52.37, "/Dc/0/Current": -12.5, "/Dc/0/Temperature": 24.5, "/Soc": 87.0,
        "/Soh": 99.0, "/TimeToGo": 36000, "/CustomName": "House bank",
    },
    ("solarcharger", 278): {
        "/Dc/0/Voltage": 53.1, "/Dc/0/Current": 8.2, "/State": 3, "/Mode": 1, "/Pv/V": 98.4, "/Pv/I": 4.5,
    },
    ("vebus", 276): {
        "/State": 9, "/Mode": 3, "/Dc/0/Voltage": 51.8, "/Dc/0/Current": -40.2, "/Dc/0/Temperature": 27.0,
        "/Ac/Out/L1/V": 230.4, "/Ac/Out/L1/I": 8.7, "/Ac/Out/L1/F": 50.0, "/Ac/Out/L1/P": 1950,
        "/Ac/ActiveIn/L1/V": 229.6, "/Ac/ActiveIn/L1/I": 12.1, "/Ac/ActiveIn/L1/F": 49.98,
        "/Ac/ActiveIn/L1/P": 2770, "/Ac/ActiveIn/CurrentLimit": 16.0, "/Ac/ActiveIn/ActiveInput": 0,
    },
    ("grid", 30): {
        "/Ac/L1/Voltage": 231.2, "/Ac/L1/Current": 6.5, "/Ac/L1/Power": 1480, "/Ac/Frequency": 50.02,
        "/Ac/L2/Voltage": 229.0, "/Ac/L2/Current": 2.0, "/Ac/L2/Power": 400,
        "/Ac/L3/Voltage": 232.0, "/Ac/L3/Current": 1.0, "/Ac/L3/Power": -200,
    },
    ("pvinverter", 20): {"/Ac/L1/Voltage": 230.0, "/Ac/L1/Current": 13.0, "/Ac/L1/Power": 2990, "/Ac/Frequency": 50.0},
    ("tank", 21): {"/FluidType": 1, "/Level": 62.5, "/Capacity": 0.2},
    ("temperature", 24): {"/Temperature": 41.3, "/TemperatureType": 2},
    ("digitalinput", 31): {"/Alarm": 2},
    ("system", 0): {"/Relay/0/State": 1, "/Relay/1/State": 0},
}  # fmt: skip


def full_store() -> Store:
    store = Store()
    for (service, instance), values in VALUES.items():
        store.add_device(service, instance, values=values)
    return store


class Peer:
    """Another node on the virtual bus: records every frame as a candump -L line."""

    def __init__(self, channel: str) -> None:
        self.bus = can.Bus(interface="virtual", channel=channel)
        self.lines: list[str] = []
        self.notifier = can.Notifier(self.bus, [self._record])

    def _record(self, msg: can.Message) -> None:
        self.lines.append(f"({time.time():.6f}) can0 {msg.arbitration_id:08X}#{bytes(msg.data).hex().upper()}")

    def decoded(self) -> list[Decoded]:
        return decode_lines(list(self.lines))

    def send_pgn(self, prio: int, pgn: int, src: int, dst: int, payload: bytes) -> None:
        can_id = canboat.can_id_compose(prio, pgn, src, dst)
        parts = canboat.fast_packet_fragment(0, payload) if len(payload) > 8 or pgn == 126208 else [payload]
        for part in parts:
            self.bus.send(can.Message(arbitration_id=can_id, data=part, is_extended_id=True))

    def close(self) -> None:
        self.notifier.stop()
        self.bus.shutdown()


async def wait_for(check: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll ``check`` until true or ``timeout`` seconds pass (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(step)
    return check()


def frontend(
    store: Store, channel: str, state_dir: Path | None = None, base: int | None = None, serial: str = "0a0000000001"
) -> N2kFrontend:
    settings = N2kSettings(f"virtual:{channel}", unique_number_base=base)
    return N2kFrontend(store, load_default(), settings, state_dir, lambda: serial, "test")
