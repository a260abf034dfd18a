"""Bus budget arithmetic: CAN frames per PGN and the bits a frame takes on a 250 kbit/s bus.

An extended CAN frame with 8 data bytes is 131 bits plus stuff bits (up to ~25 more, fewer on
typical data), so 140 bits is the planning figure. A fast-packet PGN of N bytes takes
1 + ceil((N - 6) / 7) frames (6 data bytes in the first, 7 in each next).
"""

from __future__ import annotations

import math
from typing import Final

from registers.n2k import N2kPgn, database

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
