"""NMEA 2000 in's frame stage: raw CAN frames to decoded PGNs, cheapest checks first.

Per frame: the per-source budget (a flooding sender is cut off at ``max_per_source`` frames/s,
counted, without touching the others), address claims (60928: our own virtual devices' NAMEs
mark their addresses as ours, never read back), PGNs nobody maps (dropped before reassembly),
the sender filter, fast-packet reassembly and canboat's decoder (the ``nmea2000`` package).
Every frame that goes no further is counted under the reason why.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from nmea2000 import _canboat as canboat
from nmea2000 import backend

from gateway.sources.n2k_names import SenderFilter
from gateway.transports.can_raw import RawFrame

log = logging.getLogger(__name__)

CLAIM: Final = 60928


@dataclass(frozen=True, slots=True)
class Claim:
    address: int
    name: int


@dataclass(frozen=True, slots=True)
class Decoded:
    address: int
    pgn: int
    fields: Mapping[str, object]  # canboat field id -> value (None: not available)


class FrameStage:
    def __init__(
        self,
        wanted: frozenset[int],
        own: Callable[[int], bool],
        names: Mapping[int, int],  # address -> NAME, as the claims left it
        senders: SenderFilter,
        max_per_source: int,
        counts: Counter[str],
        clock: Callable[[], float],
    ) -> None:
        self.wanted, self.own, self.names, self.senders = wanted, own, names, senders
        self.max_per_source, self.counts, self.clock = max_per_source, counts, clock
        self.own_addresses: set[int] = set()
        self._reassembler = canboat.Reassembler()
        self._window = 0
        self._per_source: dict[int, int] = {}

    def accept(self, frame: RawFrame) -> Claim | Decoded | None:
        counts = self.counts
        counts["frames"] += 1
        if not frame.extended:
            counts["not_n2k"] += 1
            return None
        prio, pgn, src, dst = canboat.can_id_decompose(frame.can_id)
        if not self._within_budget(src):
            return None
        if pgn == CLAIM:
            return self._claim(src, frame.data)
        if src in self.own_addresses:
            counts["own"] += 1
            return None
        if pgn not in self.wanted:
            counts["unmapped"] += 1
            return None
        if not self.senders.allows(self.names.get(src)):
            counts["filtered"] += 1
            return None
        payload = frame.data
        if backend.is_fast_pgn(pgn):
            try:
                joined = self._reassembler.push(pgn, frame.data, src, dst, prio)
            except canboat.ReassemblyError:  # a broken sequence
                counts["fast_packet_errors"] += 1
                return None
            if joined is None:
                return None
            payload = joined
        try:
            message = backend.decode(pgn, payload, src, dst, prio, "si")
        except (canboat.DecodeError, ValueError):  # a malformed payload
            message = None
        if message is None:
            counts["decode_errors"] += 1
            return None
        counts["decoded"] += 1
        return Decoded(src, pgn, {f.id: f.value for f in message.fields})

    def _within_budget(self, src: int) -> bool:
        window = int(self.clock())
        if window != self._window:
            self._window, self._per_source = window, {}
        seen = self._per_source.get(src, 0) + 1
        self._per_source[src] = seen
        if seen <= self.max_per_source:
            return True
        self.counts["flood_dropped"] += 1
        if seen == self.max_per_source + 1:
            log.debug("address %d sends over %d frames/s; the rest of this second is dropped", src, seen - 1)
        return False

    def _claim(self, src: int, data: bytes) -> Claim | None:
        if len(data) < 8:
            self.counts["decode_errors"] += 1
            return None
        name = int.from_bytes(data[:8], "little")
        if self.own(name):
            self.own_addresses.add(src)
            self.counts["own"] += 1
            return None
        self.own_addresses.discard(src)
        self.counts["claims"] += 1
        return Claim(src, name)
