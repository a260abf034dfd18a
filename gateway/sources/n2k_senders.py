"""The senders NMEA 2000 in reads, and the GX service each of their data instances became.

A sender is known by its NAME (its address claim, PGN 60928), not by its source address: a
new claim on another address keeps its services. A sender heard before its claim is keyed
``src<address>`` until the claim arrives, then re-keyed to its NAME. Each (sender, service,
data instance) gets a Store instance (= its Modbus unit id) once, the lowest free one from
``first_instance`` that no unit_ids.csv row redirects, kept in ``<state_dir>/n2k-in.json`` so
that it is the same after a restart, as the 126208 instances of N2K out are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from gateway.core.persist import JsonFile

FILE_NAME: Final = "n2k-in.json"
MAX_INSTANCE: Final = 247  # the instance is the unit id clients read it at


def name_key(name: int) -> str:
    return f"{name:016X}"


def _parse(data: object) -> dict[str, int]:
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ValueError("expected {'services': {...}}")
    out = {}
    for key, value in data["services"].items():
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INSTANCE:
            raise ValueError(f"{key}: expected an instance 0..{MAX_INSTANCE}")
        out[str(key)] = value
    return out


def _dump(data: dict[str, int]) -> dict[str, Any]:
    return {"services": dict(sorted(data.items()))}


@dataclass
class Service:
    """One sender's data instance, published as a Store device."""

    key: str  # sender/service/data instance
    service: str
    instance: int  # Store instance = unit id
    data_instance: int
    address: int
    interval_s: float  # the longest of its PGNs' observed intervals, for the missed-intervals timeout
    last_seen: float
    connected: bool = False
    paths: set[str] = field(default_factory=set)
    seen: dict[int, float] = field(default_factory=dict)  # PGN -> last heard
    gaps: dict[int, float] = field(default_factory=dict)  # PGN -> smoothed interval

    def heard(self, pgn: int, now: float) -> None:
        last = self.seen.get(pgn)
        self.seen[pgn] = self.last_seen = now
        if last is not None and now > last:
            old = self.gaps.get(pgn)
            self.gaps[pgn] = now - last if old is None else 0.5 * old + 0.5 * (now - last)
            self.interval_s = max(self.gaps.values())


class Senders:
    """NAME by address, product names by NAME, and the instance table."""

    def __init__(self, state_dir: Path | None, first_instance: int, reserved: set[int]) -> None:
        self.first_instance, self.reserved = first_instance, reserved
        self._file = JsonFile(state_dir / FILE_NAME, _parse, _dump) if state_dir is not None else None
        self.table: dict[str, int] = {}
        self.names: dict[int, int] = {}  # address -> NAME (last claim)
        self.products: dict[str, str] = {}  # sender key -> model id (126996)
        self.descriptions: dict[str, str] = {}  # sender key -> installation description (126998)

    def load(self) -> None:
        if self._file is not None:
            self.table = dict(self._file.load() or {})

    def sender(self, address: int) -> str:
        name = self.names.get(address)
        return name_key(name) if name is not None else f"src{address}"

    def claim(self, address: int, name: int) -> tuple[str, str] | None:
        """Record a claim; (old key, new key) when services heard before it must be re-keyed."""
        for other, known in list(self.names.items()):
            if known == name and other != address:
                del self.names[other]  # the sender moved: its old address is free
        before = self.sender(address)
        self.names[address] = name
        after = name_key(name)
        if before == after:
            return None
        for key in [k for k in self.table if k.startswith(before + "/")]:
            self.table.setdefault(after + key[len(before) :], self.table.pop(key))
        for table in (self.products, self.descriptions):
            if before in table:
                table.setdefault(after, table.pop(before))
        self._save()
        return before, after

    def instance_for(self, key: str, used: set[int]) -> int | None:
        """The saved instance of a service, or the lowest free one (saved); None when all are taken."""
        found = self.table.get(key)
        if found is not None:
            return found
        taken = used | set(self.table.values()) | self.reserved
        free = next((i for i in range(self.first_instance, MAX_INSTANCE + 1) if i not in taken), None)
        if free is not None:
            self.table[key] = free
            self._save()
        return free

    def _save(self) -> None:
        if self._file is not None:
            self._file.request_save(dict(self.table))

    async def flush(self) -> None:
        if self._file is not None:
            await self._file.flush()
