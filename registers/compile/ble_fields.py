"""Compile ``mappings/ble/<decoder>.csv``: a decoding library's values -> GX paths.

Columns: ``service`` (a service the Modbus map declares), ``field`` (the library's name for
the value), ``path`` (where it goes), ``scale``, ``remark``. The result is
``cmap.devices["ble"]``, a ``registers.ble.BleMap``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from registers.ble import DECODERS, BleField, BleMap
from registers.compile.csvfile import Row, Shown, number, read_csv
from registers.compile.paths import path_ok
from registers.compile.rules import Problems, rule
from registers.model import PathSpec
from registers.origin import Source

R80 = rule("R80", "a ble file is named after a BLE decoder (victron, mopeka, ruuvi)")
R81 = rule("R81", "a ble row's service is one the Modbus map declares")
R82 = rule("R82", "a ble field is a library value name (lower-case identifier), once per service in a file")
R83 = rule(
    "R83", "a ble path looks like /Dc/0/Voltage, is numeric where the Modbus map declares it, fed once a service"
)
R84 = rule("R84", "a ble scale is a non-zero number")

COLUMNS: Final = ("service", "field", "path", "scale", "remark")
REQUIRED: Final = ("service", "field", "path", "scale")
FIELD_RE: Final = re.compile(r"^[a-z][a-z0-9_]*$")


def compile_row(row: Row, paths: dict[str, dict[str, PathSpec]], problems: Problems) -> BleField | None:
    c, before = row.cells, len(problems)
    specs = paths.get(c["service"])
    if specs is None:
        problems.add(row.file, row.line, R81, f"service {c['service']!r} is not declared by the Modbus map")
    if not FIELD_RE.match(c["field"]):
        problems.add(row.file, row.line, R82, f"field {c['field']!r} is not a lower-case identifier")
    if not path_ok(c["path"]):
        problems.add(row.file, row.line, R83, f"path {c['path']!r} does not look like /Dc/0/Voltage")
    elif specs is not None and (spec := specs.get(c["path"])) is not None and spec.text:
        problems.add(row.file, row.line, R83, f"path {c['path']} is text in the Modbus map; BLE values are numbers")
    scale = number(c["scale"])
    if not scale:
        problems.add(row.file, row.line, R84, f"scale {c['scale']!r} must be a non-zero number")
    if len(problems) != before:
        return None
    assert scale
    return BleField(c["service"], c["field"], c["path"], scale, Source(row.file, row.line))


def _decoder_file(
    path: Path, shown: Shown, paths: dict[str, dict[str, PathSpec]], problems: Problems
) -> list[BleField]:
    fields: list[BleField] = []
    by_field: dict[tuple[str, str], BleField] = {}
    by_path: dict[tuple[str, str], BleField] = {}
    for row in read_csv(path, shown(path), COLUMNS, REQUIRED, problems):
        f = compile_row(row, paths, problems)
        if f is None:
            continue
        if (first := by_field.get((f.service, f.field))) is not None:
            problems.add(row.file, row.line, R82, f"field {f.field} of {f.service} is already read at {first.source}")
            continue
        if (first := by_path.get((f.service, f.path))) is not None:
            problems.add(row.file, row.line, R83, f"path {f.path} of {f.service} is already fed at {first.source}")
            continue
        by_field[(f.service, f.field)] = by_path[(f.service, f.path)] = f
        fields.append(f)
    return fields


def compile_ble(folder: Path, shown: Shown, paths: dict[str, dict[str, PathSpec]], problems: Problems) -> BleMap | None:
    """The BLE map of ``folder`` (absent folder: None)."""
    if not folder.is_dir():
        return None
    fields: dict[str, tuple[BleField, ...]] = {}
    for file in sorted(folder.glob("*.csv")):
        if file.stem not in DECODERS:
            problems.add(shown(file), 0, R80, f"{file.stem!r} is not a BLE decoder ({', '.join(DECODERS)})")
            continue
        fields[file.stem] = tuple(_decoder_file(file, shown, paths, problems))
    return BleMap(fields)


__all__ = ["R80", "R81", "R82", "R83", "R84", "compile_ble"]
