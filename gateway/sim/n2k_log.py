"""Writes ``candump -L`` logs of third-party NMEA 2000 senders, for NMEA 2000 in's demo and tests.

Each sender claims its address (60928), sends Product Information (126996, fast-packet) and
then its data PGN every ``interval_s``; frames are encoded by canboat (the ``nmea2000``
package), so a reader decodes exactly what is written. ``python -m gateway.sim.n2k_log FILE``
writes the demo's log: two tank senders and a temperature sensor for two minutes.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nmea2000 import _canboat as canboat
from nmea2000 import backend

from gateway.transports.can_raw import RawFrame, format_candump_line

T0 = 1764806400.0  # a fixed start, so a log is the same at every run


@dataclass
class Sender:
    address: int
    unique: int
    manufacturer: int
    device_class: int
    device_function: int
    model: str
    pgn_id: str  # canboat id of its data PGN
    fields: Mapping[str, Any]
    interval_s: float = 2.5
    seq: int = field(default=0)

    @property
    def name(self) -> int:
        value: int = canboat.iso_name(
            self.manufacturer,
            self.unique,
            device_function=self.device_function,
            device_class=self.device_class,
            device_instance=0,
            system_instance=0,
            industry_group=4,
            arbitrary_address_capable=True,
        )
        return value


def frames_of(pgn: int, payload: bytes, src: int, seq: int, prio: int = 6, ts: float = T0) -> list[RawFrame]:
    """One PGN as CAN frames: single, or fast-packet fragments with sequence counter ``seq``."""
    can_id = canboat.can_id_compose(prio, pgn, src, 255)
    parts = canboat.fast_packet_fragment(seq & 7, payload) if backend.is_fast_pgn(pgn) else [payload]
    return [RawFrame(ts, can_id, True, bytes(p)) for p in parts]


def claim_frame(sender: Sender, ts: float = T0) -> RawFrame:
    return RawFrame(ts, canboat.can_id_compose(6, 60928, sender.address, 255), True, sender.name.to_bytes(8, "little"))


def product_frames(sender: Sender, ts: float = T0) -> list[RawFrame]:
    payload = backend.DATABASE.encode(
        "productInformation",
        {
            "nmea2000Version": 2.1,
            "productCode": 1,
            "modelId": sender.model,
            "softwareVersionCode": "1.0",
            "modelVersion": "1",
            "modelSerialCode": f"{sender.unique}",
            "certificationLevel": 1,
            "loadEquivalency": 1,
        },
    )
    sender.seq += 1
    return frames_of(126996, payload, sender.address, sender.seq, ts=ts)


def data_frames(sender: Sender, ts: float, values: Mapping[str, Any] | None = None) -> list[RawFrame]:
    info = backend.DATABASE.pgn_info(sender.pgn_id)
    payload = backend.DATABASE.encode(sender.pgn_id, {**sender.fields, **(values or {})})
    sender.seq += 1
    return frames_of(info.pgn, payload, sender.address, sender.seq, ts=ts)


def log_of(senders: list[Sender], seconds: float) -> Iterator[RawFrame]:
    """Claims and product information first, then every sender's data at its interval, the
    first at once (a reader knows every sender from the log's first instant)."""
    for s in senders:
        yield claim_frame(s)
        yield from product_frames(s)
    t = 0.0
    due = {id(s): 0.0 for s in senders}
    while t < seconds:
        t = min(due.values())
        for s in senders:
            if due[id(s)] <= t:
                due[id(s)] = t + s.interval_s
                yield from data_frames(s, T0 + t)


def demo_senders() -> list[Sender]:
    """Two tank senders and a temperature sensor, from other makers (canboat's codes)."""
    return [
        Sender(35, 10001, 144, 75, 150, "Tank sender fresh aft", "fluidLevel",
               {"instance": 0, "type": "Water", "level": 0.62, "capacity": 0.2}),
        Sender(36, 10002, 144, 75, 150, "Tank sender diesel", "fluidLevel",
               {"instance": 1, "type": "Fuel", "level": 0.35, "capacity": 0.3}),
        Sender(42, 20001, 137, 75, 130, "Fridge thermometer", "temperatureExtendedRange",
               {"instance": 0, "source": "Refrigeration Temperature", "temperature": 277.15}, interval_s=2.0),
    ]  # fmt: skip


def write_log(path: Path, senders: list[Sender], seconds: float) -> int:
    lines = [format_candump_line(f) for f in log_of(senders, seconds)]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return len(lines)


def demo_log() -> Path:
    """The demo's log (an hour), made once in the temporary folder and reused."""
    path = Path(tempfile.gettempdir()) / "gx-gateway-n2k-demo-2.log"  # -2: bump when demo_senders change
    if not path.is_file():
        part = path.with_suffix(f".{os.getpid()}.part")
        write_log(part, demo_senders(), 3600.0)
        part.replace(path)  # atomic: concurrent demos never read half a file
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("n2k-demo.log")
    print(f"{out}: {write_log(out, demo_senders(), 120.0)} frames")
