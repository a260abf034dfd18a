"""A Bluetooth LE advertisement, and the replay file's line format (JSON lines, one each).

    {"t": 1764806400.0, "address": "C0:3B:98:A1:00:01", "rssi": -62, "name": "SmartShunt",
     "manufacturer": {"737": "1002a3a302..."}, "uuids": ["0000fee5-0000-1000-8000-00805f9b34fb"]}

``t`` seconds (any origin), ``manufacturer`` the manufacturer-specific data by company id
(decimal) in hex, ``uuids`` the advertised service UUIDs; ``#`` lines are comments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

MAC: Final = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")


@dataclass(frozen=True, slots=True)
class Advert:
    timestamp: float
    address: str  # upper-case MAC
    rssi: int
    name: str
    manufacturer: Mapping[int, bytes]
    uuids: tuple[str, ...] = ()


def mac_address(where: str, value: Any) -> str:
    """A MAC address as the pool keys it (upper case); ValueError naming ``where``."""
    text = str(value).strip().upper() if isinstance(value, str) else ""
    if not MAC.match(text):
        raise ValueError(f"{where}: expected a MAC address like C0:3B:98:A1:00:01, got {value!r}")
    return text


def parse_advert_line(line: str) -> Advert | None:
    """One replay line as an advertisement; None where it is not one."""
    try:
        row = json.loads(line)
        makers = {int(k): bytes.fromhex(v) for k, v in dict(row.get("manufacturer", {})).items()}
        return Advert(
            float(row["t"]),
            mac_address("address", row["address"]),
            int(row.get("rssi", 0)),
            str(row.get("name", "")),
            makers,
            tuple(str(u).lower() for u in row.get("uuids", ())),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def format_advert_line(advert: Advert) -> str:
    row: dict[str, Any] = {"t": round(advert.timestamp, 3), "address": advert.address, "rssi": advert.rssi}
    if advert.name:
        row["name"] = advert.name
    row["manufacturer"] = {str(k): v.hex() for k, v in advert.manufacturer.items()}
    if advert.uuids:
        row["uuids"] = list(advert.uuids)
    return json.dumps(row, separators=(", ", ": "))


def read_adverts(path: Path) -> Iterator[Advert | None]:
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if line.strip() and not line.lstrip().startswith("#"):
                yield parse_advert_line(line)
