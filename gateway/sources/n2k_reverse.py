"""``mappings/n2k/`` read in reverse: a decoded PGN's fields back into a service's Store paths.

N2K out computes ``field = path value * factor + offset`` (or a label from a table); here the
same compiled rows give ``path value = (field - offset) / factor`` (or the table's first value
for a label). Only the roles marked ``input = y`` in ``devices.csv`` are read, and only their
plain fields (no repeating AC lines). Constants are not published; the ``instance`` field is
the sender's data instance. A field canboat decodes as "not available" (None) publishes an
invalid value, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from registers.model import CompiledMap
from registers.pgn_specs import N2kDeviceSpec, N2kPgn
from registers.values import Scalar


@dataclass(frozen=True, slots=True)
class ReverseField:
    field: str
    path: str
    factor: float
    offset: float
    values: Mapping[str, int] | None  # canboat label -> Store enum value


@dataclass(frozen=True, slots=True)
class ReversePgn:
    service: str
    device_function: int  # of the virtual device that sends it: a sender's NAME may match it
    pgn: int
    instance_field: str | None
    fields: tuple[ReverseField, ...]

    def values_of(self, decoded: Mapping[str, object]) -> tuple[int, dict[str, Scalar]]:
        """(data instance, Store values) of one decoded PGN (field id -> canboat value)."""
        raw_instance = decoded.get(self.instance_field) if self.instance_field else 0
        instance = raw_instance if isinstance(raw_instance, int) else 0
        out: dict[str, Scalar] = {}
        for f in self.fields:
            v = decoded.get(f.field)
            if f.values is not None:
                out[f.path] = f.values.get(v) if isinstance(v, str) else None
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f.path] = round((v - f.offset) / f.factor, 6)
            else:
                out.setdefault(f.path, None)  # not available (or a text where a number was mapped)
        return instance, out


def reverse_map(cmap: CompiledMap) -> dict[int, tuple[ReversePgn, ...]]:
    """PGN -> the readings it can become, in devices.csv order (the first service wins unless
    the sender's NAME names another one's device function)."""
    found: dict[int, list[ReversePgn]] = {}
    for specs in cmap.n2k.values():
        for device in specs:
            if device.reads:
                for pgn in device.pgns:
                    found.setdefault(pgn.pgn, []).append(_reverse(device, pgn))
    return {pgn: tuple(r) for pgn, r in found.items()}


def _reverse(device: N2kDeviceSpec, pgn: N2kPgn) -> ReversePgn:
    fields: list[ReverseField] = []
    instance_field = None
    for f in pgn.fields:
        if f.line:
            continue
        if f.instance:
            instance_field = instance_field or f.field
        elif f.path is not None:
            values: dict[str, int] | None = None
            if f.labels is not None:
                values = {}
                for value, label in f.labels.items():
                    values.setdefault(label, value)  # several Store values -> one label: the first
            fields.append(ReverseField(f.field, f.path, f.factor or 1.0, f.offset, values))
    return ReversePgn(device.service, device.device_function, pgn.pgn, instance_field, tuple(fields))
