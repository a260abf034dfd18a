"""Who may stay connected: the Modbus server's connection policy.

The well-behaved must never be the ones to lose. So:

- A started frame must be completed within ``frame_timeout_s`` (a few seconds), separate from
  ``idle_timeout_s``: a byte every few seconds no longer holds a slot forever.
- Caps: ``max_connections`` in total and ``max_per_address`` per client address (loopback is an
  address like any other: a local EMS and a local attacker may share it).
- At a cap, room is made by closing, in this order: a stalled (half-received frame) or never
  used connection, then any other that is not in regular use; within each, the address holding
  the most connections loses first, then the longest silent. A client polling regularly, or
  one with a write in flight, is never closed to make room: the newcomer is refused instead.
- A client that does not read its replies (its unsent data above the high-water mark) for
  ``send_timeout_s`` is closed.
- Every refusal and closing for policy is counted per cause (``counts``) and logged at most
  once per cause per minute (``gateway.core.loglimit.Throttle``).

All timing is checked by one sweep (``sweep``) a few times a second, never per packet.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from gateway.core.loglimit import Throttle

log = logging.getLogger("gateway.frontends.modbus.server")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
REGULAR_MIN_WINDOW_S: Final = 5.0  # a poller is "regular" at least this long after a request


@dataclass(frozen=True, slots=True)
class Limits:
    max_connections: int = 64
    max_per_address: int = 16
    idle_timeout_s: float = 120.0
    frame_timeout_s: float = 5.0
    send_timeout_s: float = 30.0


class Tracked(Protocol):
    """What the policy reads of a connection (gateway.frontends.modbus.server.Connection)."""

    host: str
    peer: str
    last_rx: float
    frame_started: float  # 0.0: no partial frame buffered
    requests: int
    first_request: float
    last_request: float
    paused_since: float  # 0.0: the client reads its replies

    @property
    def busy(self) -> bool: ...  # a write in flight

    def abort(self) -> None: ...


def regular(c: Tracked, now: float) -> bool:
    """Polling regularly: two requests or more, the last within 3 of its average intervals."""
    if c.requests < 2:
        return False
    interval = (c.last_request - c.first_request) / (c.requests - 1)
    return now - c.last_request <= max(3.0 * interval, REGULAR_MIN_WINDOW_S)


class ConnectionPolicy:
    def __init__(self, limits: Limits, allow: Sequence[str] = ()) -> None:
        self.limits = limits
        self.allow: tuple[Network, ...] = tuple(ipaddress.ip_network(a, strict=False) for a in allow)
        self.connections: set[Tracked] = set()
        self.by_host: dict[str, set[Tracked]] = {}
        self.counts: Counter[str] = Counter()
        self.throttle = Throttle(log)

    def _count(self, cause: str, peer: str, detail: str) -> None:
        self.counts[cause] += 1
        self.throttle.log(cause, logging.WARNING, "%s: %s (%s)", peer, cause, detail)

    def count_malformed(self, peer: str, pid: int, length: int) -> None:
        self._count("closed: malformed MBAP header", peer, f"protocol id {pid}, length {length}")

    @property
    def refused(self) -> int:
        return sum(n for cause, n in self.counts.items() if cause.startswith("refused"))

    def admit(self, conn: Tracked, now: float) -> bool:
        if self.allow and not self._allowed(conn.host):
            self._count("refused: not in the allow-list", conn.peer, "closed at accept")
            return False
        mine = self.by_host.get(conn.host, set())
        if len(mine) >= self.limits.max_per_address and not self._make_room(mine, conn, now, "per address"):
            return False
        if len(self.connections) >= self.limits.max_connections and not self._make_room(
            self.connections, conn, now, "in total"
        ):
            return False
        self.connections.add(conn)
        self.by_host.setdefault(conn.host, set()).add(conn)
        return True

    def _make_room(self, pool: set[Tracked], newcomer: Tracked, now: float, scope: str) -> bool:
        candidates = [c for c in pool if not c.busy and not regular(c, now)]
        if not candidates:
            cap = self.limits.max_per_address if scope == "per address" else self.limits.max_connections
            self._count(f"refused: {cap} connections {scope}, all in regular use", newcomer.peer, "closed at accept")
            return False
        victim = min(candidates, key=lambda c: self._rank(c))
        why = "stalled" if victim.frame_started else "never used" if victim.requests == 0 else "idle"
        self._count(f"closed to make room: {why}", victim.peer, f"for {newcomer.peer}, limit {scope}")
        self.forget(victim)
        victim.abort()
        return True

    def _rank(self, c: Tracked) -> tuple[int, int, float]:
        stalled_or_unused = bool(c.frame_started) or c.requests == 0
        return (0 if stalled_or_unused else 1, -len(self.by_host.get(c.host, ())), c.last_rx)

    def forget(self, conn: Tracked) -> None:
        self.connections.discard(conn)
        mine = self.by_host.get(conn.host)
        if mine is not None:
            mine.discard(conn)
            if not mine:
                del self.by_host[conn.host]

    def sweep(self, now: float) -> None:
        """Close what overstayed: a frame not completed, silence, a client not reading."""
        lim = self.limits
        for c in list(self.connections):
            if c.busy:
                continue
            if c.paused_since and now - c.paused_since > lim.send_timeout_s:
                cause, detail = "closed: not reading its replies", f"for {lim.send_timeout_s:g} s"
            elif c.frame_started and now - c.frame_started > lim.frame_timeout_s:
                cause, detail = "closed: frame not completed in time", f"{lim.frame_timeout_s:g} s"
            elif now - c.last_rx > lim.idle_timeout_s:
                cause, detail = "closed: idle", f"silent for {lim.idle_timeout_s:g} s"
            else:
                continue
            self._count(cause, c.peer, detail)
            self.forget(c)
            c.abort()
        self.throttle.flush()

    def _allowed(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.allow if net.version == addr.version)
