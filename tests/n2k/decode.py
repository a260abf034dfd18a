"""Reading what the gateway put on the bus with an independent decoder: the nmea2000 package's
NMEA2000Decoder (canboat database), fed the candump -L lines exactly as a user's tool would be."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmea2000 import NMEA2000Decoder


@dataclass(frozen=True)
class Decoded:
    time: float
    pgn: int
    src: int
    dst: int
    fields: dict[str, Any]  # field id -> value (SI units; lookups as labels)
    lines: list[dict[str, Any]]  # repeating-set entries (AC lines)


def decode_lines(lines: list[str]) -> list[Decoded]:
    decoder = NMEA2000Decoder(units="si")
    out = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        message = decoder.decode(line)
        if message is None:
            continue
        fields: dict[str, Any] = {}
        entries: list[dict[str, Any]] = []
        for f in message.fields:
            if isinstance(f.value, list):
                entries = [{k: v.value for k, v in e.items()} for e in f.value]
            else:
                fields[f.id] = f.value
        stamp = float(line[1 : line.index(")")]) if line.startswith("(") else 0.0
        out.append(Decoded(stamp, message.PGN, message.source, message.destination, fields, entries))
    return out


def decode_candump(path: Path) -> list[Decoded]:
    return decode_lines(path.read_text(encoding="ascii").splitlines())
