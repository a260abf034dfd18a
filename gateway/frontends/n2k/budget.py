"""The bus budget: CAN frames per PGN, the bits a frame takes on a 250 kbit/s bus, the planned
load against the cap, and the report of it (start-up line, GET /api/v1/n2k).

An extended CAN frame with 8 data bytes is 131 bits plus stuff bits (up to ~25 more, fewer on
typical data), so 140 bits is the planning figure. A fast-packet PGN of N bytes takes
1 + ceil((N - 6) / 7) frames (6 data bytes in the first, 7 in each next).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from gateway.frontends.n2k.device import HEARTBEAT_MS, VirtualDevice
from registers.pgn_specs import N2kPgn, database

if TYPE_CHECKING:
    from gateway.transports.link import Link

log = logging.getLogger(__name__)

BITS_PER_FRAME: Final = 140
BUS_BITS_PER_S: Final = 250_000


def payload_bytes(spec: N2kPgn) -> int:
    info = database().pgn_info(spec.pgn_id)
    ids = [f.id for f in info.fields]
    repeating = {i for start, count, _ in info.repeating_sets for i in range(start, start + count)}
    fixed = sum(f.bit_length or 0 for i, f in enumerate(info.fields) if i not in repeating)
    per_line = sum(info.fields[i].bit_length or 0 for i in repeating if i < len(ids))
    return math.ceil((fixed + per_line * spec.lines) / 8)


def frames_of(spec: N2kPgn) -> int:
    n = payload_bytes(spec)
    if not spec.fast and n <= 8:
        return 1
    return 1 + max(0, math.ceil((n - 6) / 7))


class Scheduled(Protocol):
    spec: N2kPgn
    frames: int


def planned_frames_per_s(jobs: Sequence[Scheduled], devices: int, stretch: float) -> float:
    """Frames/s of every scheduled PGN at its (stretched) interval, plus the heartbeats."""
    per_s = sum(j.frames / (j.spec.interval_ms / 1000 * stretch) for j in jobs)
    return per_s + devices / (HEARTBEAT_MS / 1000)


def load_of(frames_per_s: float) -> float:
    return frames_per_s * BITS_PER_FRAME / BUS_BITS_PER_S


def stretch_for(jobs: Sequence[Scheduled], devices: int, cap: float) -> float:
    """1.0, or the factor every interval is stretched by to keep the planned load under ``cap``."""
    load = load_of(planned_frames_per_s(jobs, devices, 1.0))
    stretch = max(1.0, load / cap)
    if stretch > 1.0:
        log.warning(
            "NMEA 2000: planned bus load %.1f %% is over the cap %.0f %%; intervals stretched x%.2f",
            100 * load,
            100 * cap,
            stretch,
        )
    return stretch


def budget_report(
    interface: str,
    max_bus_load: float,
    stretch: float,
    link: Link | None,
    devices: Sequence[VirtualDevice],
    jobs: Sequence[Scheduled],
) -> dict[str, Any]:
    """What GET /api/v1/n2k and the start-up line say: transport, load planned and measured, devices."""
    planned = planned_frames_per_s(jobs, len(devices), stretch)
    measured = link.frames_per_s() if link is not None else 0.0
    return {
        "interface": interface,
        "up": bool(link and link.up),
        "reason": link.reason if link is not None else "",
        "planned_frames_per_s": planned,
        "planned_bus_load": load_of(planned),
        "frames_per_s": measured,
        "bus_load": load_of(measured),
        "max_bus_load": max_bus_load,
        "stretch": stretch,
        "frames_sent": link.frames_sent if link is not None else 0,
        "pgns_dropped": link.pgns_dropped if link is not None else 0,
        "pgns": len(jobs),
        "devices": [
            {
                "key": vd.key,
                "label": vd.label,
                "address": vd.address,
                "name": f"{vd.name:016X}",
                "instance": vd.assigned.instance,
                "device_instance": vd.assigned.device_instance,
            }
            for vd in devices
        ],
    }
