"""SunSpec model layouts, read from the JSON model definitions that pysunspec2 ships.

Offsets are never written by hand: each point's offset is summed from the sizes of the points
before it in the model's definition, counted from the model's ID register (0 = ID, 1 = L), as
pysunspec2 counts. Only the fixed (top-level) block of a model is laid out here; repeating
groups (model 160's modules) are laid out by ``repeating`` from the same definition.

Used by the SunSpec compiler (mappings/sunspec.csv), the driver and the simulators, so the
three agree on every address by construction.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from registers.codec import Codec, parse_codec

# SunSpec point types -> our codecs; enum/bitfield/count/pad are unsigned integers of their width.
_TYPES: Final = {
    "uint16": "uint16",
    "int16": "int16",
    "uint32": "uint32",
    "int32": "int32",
    "uint64": "uint64",
    "int64": "int64",
    "acc16": "uint16",
    "acc32": "acc32",
    "acc64": "acc64",
    "sunssf": "sunssf",
    "enum16": "uint16",
    "enum32": "uint32",
    "bitfield16": "uint16",
    "bitfield32": "uint32",
    "count": "uint16",
    "pad": "uint16",
    "float32": "float32",
    "float64": "uint64",  # read as raw bits; no model we map uses it
    "ipaddr": "uint32",
    "ipv6addr": "reserved[8]",
    "eui48": "reserved[4]",
}
HEADER: Final = 2  # ID and L


class UnknownModel(LookupError):
    """pysunspec2 has no definition for this model id."""


@dataclass(frozen=True, slots=True)
class Point:
    name: str
    offset: int  # from the model's ID register
    sunspec_type: str  # as the definition says (uint16, acc32, enum16, string, sunssf ...)
    codec: Codec
    sf: str | int | None  # the scale factor: a point name, a fixed exponent, or None

    @property
    def numeric(self) -> bool:
        return self.codec.form in ("int", "float") and self.sunspec_type not in ("pad",)


@dataclass(frozen=True, slots=True)
class ModelLayout:
    """The fixed block of one model: its points by name and its length L (registers after ID, L)."""

    id: int
    name: str
    length: int  # L of the fixed block (what a device without repeating groups announces)
    points: dict[str, Point]

    @property
    def size(self) -> int:
        """Registers including the 2-register header."""
        return HEADER + self.length


def _layout_points(points: list[dict[str, Any]], start: int) -> tuple[dict[str, Point], int]:
    out: dict[str, Point] = {}
    offset = start
    for p in points:
        size = int(p.get("size", 1))
        kind = str(p["type"])
        codec = (
            parse_codec(f"string[{size}]") if kind == "string" else parse_codec(_TYPES.get(kind, f"reserved[{size}]"))
        )
        if codec.width != size:
            codec = parse_codec(f"reserved[{size}]")
        sf = p.get("sf")
        out[str(p["name"])] = Point(str(p["name"]), offset, kind, codec, sf if isinstance(sf, (str, int)) else None)
        offset += size
    return out, offset


@functools.cache
def _definition(model_id: int) -> dict[str, Any]:
    folder = resources.files("sunspec2").joinpath("models", "json")
    try:
        text = folder.joinpath(f"model_{model_id}.json").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        raise UnknownModel(f"pysunspec2 defines no SunSpec model {model_id}") from None
    data: dict[str, Any] = json.loads(text)
    return data


@functools.cache
def layout(model_id: int) -> ModelLayout:
    """The fixed block of ``model_id`` (UnknownModel if pysunspec2 does not define it)."""
    group = _definition(model_id)["group"]
    points, end = _layout_points(group["points"], 0)
    for sub in group.get("groups", []):  # groups that occur once (model 704's) follow the points
        if "count" not in sub:
            more, end = _layout_points(sub["points"], end)
            points.update(
                {f"{sub['name']}.{n}": dataclasses.replace(p, name=f"{sub['name']}.{n}") for n, p in more.items()}
            )
    return ModelLayout(model_id, str(group["name"]), end - HEADER, points)


def repeating(model_id: int) -> tuple[str, ModelLayout] | None:
    """The first repeating group of a model (model 160's ``module``): its name and one
    instance's points, offsets counted from the instance's first register."""
    for sub in _definition(model_id)["group"].get("groups", []):
        if "count" in sub:
            points, end = _layout_points(sub["points"], 0)
            return str(sub["name"]), ModelLayout(model_id, str(sub["name"]), end, points)
    return None


def defined(model_id: int) -> bool:
    try:
        _definition(model_id)
    except UnknownModel:
        return False
    return True
