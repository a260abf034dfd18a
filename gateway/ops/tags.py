"""Register tags of the devices present on a gateway, from the compiled map (never a copy).

One ``Tag`` per non-reserved register of each present device's service table: the unit id
clients use, the address, the register type and width, the map's scale (register = value ×
scale), unit, access and a description. ``gx-gateway export`` renders them for PLC/SCADA tag
import (CSV, JSON) and as Home Assistant sensors (gateway/ops/hass.py).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from registers.model import CompiledMap

CSV_COLUMNS = (
    "unit_id",
    "address",
    "type",
    "count",
    "scale",
    "unit",
    "access",
    "service",
    "instance",
    "path",
    "description",
)


@dataclass(frozen=True, slots=True)
class PresentDevice:
    """A device as the gateway's JSON API lists it."""

    service: str  # short type, e.g. "battery"
    instance: int
    unit_id: int
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or f"{self.service} {self.instance}"


@dataclass(frozen=True, slots=True)
class Tag:
    unit_id: int
    address: int
    type: str  # codec name as in the register list: uint16, int32, string[8] ...
    count: int  # registers
    scale: float  # register = value × scale (the map's scale)
    unit: str
    access: str  # R or W
    service: str
    instance: int
    path: str
    description: str
    device: str  # the device's label
    enum: bool  # the value is a code from a lookup table
    text: bool  # a string register


def tags_for(cmap: CompiledMap, devices: Iterable[PresentDevice]) -> list[Tag]:
    tags = []
    for d in devices:
        table = cmap.modbus.tables.get(d.service)
        if table is None:
            continue
        for r in table.registers:
            if r.reserved or r.spec is None:
                continue
            spec = r.spec
            enum = f" ({spec.lookup.as_text()})" if spec.lookup is not None else ""
            tags.append(
                Tag(
                    unit_id=d.unit_id,
                    address=r.address,
                    type=r.codec.name,
                    count=r.codec.width,
                    scale=r.scale,
                    unit=spec.unit,
                    access="W" if r.writable else "R",
                    service=d.service,
                    instance=d.instance,
                    path=r.path,
                    description=f"{d.label}: {r.path}{enum}",
                    device=d.label,
                    enum=spec.lookup is not None,
                    text=r.codec.form == "string",
                )
            )
    return tags


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def render_csv(tags: Sequence[Tag]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for t in tags:
        row = asdict(t)
        row["scale"] = _number(t.scale)
        writer.writerow([row[c] for c in CSV_COLUMNS])
    return out.getvalue()


def render_json(tags: Sequence[Tag], source: dict[str, Any]) -> str:
    rows = [{c: (_number(t.scale) if c == "scale" else getattr(t, c)) for c in CSV_COLUMNS} for t in tags]
    return json.dumps({**source, "tags": rows}, indent=1, ensure_ascii=False) + "\n"
