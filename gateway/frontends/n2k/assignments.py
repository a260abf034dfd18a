"""What each virtual device keeps across restarts: unique number, address, instances.

Plotters recognise a device by its NAME (unique number, device instance) and the data
instances in its PGNs; if any of them changed at a restart, the plotter would show a new
device and lose the user's set-up. So each virtual device's numbers are assigned once and kept
in ``<state_dir>/n2k.json`` through ``gateway.core.persist`` (atomic, debounced), keyed by
``service/instance/role``; 126208 instance changes and a moved address are saved there too.

Unique numbers come from this gateway's block (``[n2k] unique_number_base``, by default
derived from the persisted gateway serial, so two gateways on one bus get different blocks).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

from gateway.core.identity import n2k_unique_base
from gateway.core.persist import JsonFile

log = logging.getLogger(__name__)

FILE_NAME: Final = "n2k.json"
BLOCK: Final = 256  # unique numbers per gateway
FIRST_ADDRESS: Final = 16  # preferred source addresses are handed out from here


def unique_base_from_serial(serial: str) -> int:
    """A block of 256 unique numbers (21-bit field) derived from the 12-hex-digit serial."""
    return n2k_unique_base(serial)


@dataclass(frozen=True, slots=True)
class Assigned:
    unique: int  # NAME unique number (21 bits)
    address: int  # preferred (last claimed) source address
    instance: int  # data instance in the PGNs
    device_instance: int  # NAME device instance (8 bits: lower 3 + upper 5)
    system_instance: int = 0
    pool: str = ""


def _parse(data: object) -> dict[str, Assigned]:
    if not isinstance(data, dict) or not isinstance(data.get("devices"), dict):
        raise ValueError("expected {'devices': {...}}")
    out = {}
    for key, item in data["devices"].items():
        if not isinstance(item, dict):
            raise ValueError(f"{key}: expected an object")
        a = Assigned(**item)
        ints = (a.unique, a.address, a.instance, a.device_instance, a.system_instance)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints):
            raise ValueError(f"{key}: numbers expected")
        if not (0 <= a.unique < 1 << 21 and 0 <= a.address <= 253 and 0 <= a.instance <= 252):
            raise ValueError(f"{key}: number out of range")
        out[str(key)] = a
    return out


def _dump(data: dict[str, Assigned]) -> dict[str, Any]:
    return {"devices": {k: asdict(v) for k, v in sorted(data.items())}}


class Assignments:
    """The table of assigned numbers; ``JsonFile`` when there is a state_dir, memory otherwise."""

    def __init__(self, state_dir: Path | None, unique_base: int) -> None:
        self.unique_base = unique_base
        self._file = JsonFile(state_dir / FILE_NAME, _parse, _dump) if state_dir is not None else None
        self.table: dict[str, Assigned] = {}

    def load(self) -> None:
        if self._file is not None:
            self.table = dict(self._file.load() or {})

    def get(self, key: str) -> Assigned | None:
        return self.table.get(key)

    def assign(self, key: str, pool: str) -> Assigned:
        """The device's numbers: as saved, or new ones (lowest free) saved for next time."""
        found = self.table.get(key)
        if found is not None:
            return found
        used = self.table.values()
        offsets = {a.unique - self.unique_base for a in used}
        unique = self.unique_base + next(i for i in range(10_000) if i not in offsets)
        addresses = {a.address for a in used}
        address = next((a for a in range(FIRST_ADDRESS, 252) if a not in addresses), FIRST_ADDRESS)
        taken = {a.instance for a in used if a.pool == pool}
        instance = next(i for i in range(253) if i not in taken)
        assigned = Assigned(unique & ((1 << 21) - 1), address, instance, instance, 0, pool)
        self.table[key] = assigned
        self._save()
        return assigned

    def update(self, key: str, **changes: int) -> Assigned:
        assigned = replace(self.table[key], **changes)  # type: ignore[arg-type]
        self.table[key] = assigned
        self._save()
        return assigned

    def _save(self) -> None:
        if self._file is not None:
            self._file.request_save(dict(self.table))

    async def flush(self) -> None:
        if self._file is not None:
            await self._file.flush()
