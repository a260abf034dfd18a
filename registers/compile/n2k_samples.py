"""Checks ``mappings/n2k/samples/<service>.csv``: Store values in, expected decoded fields out.

A sample is a few rows sharing a name (``sample,key,value``): keys starting with ``/`` set a
Store path, ``instance`` sets the data instance, and ``[role/]PGN.field`` (``PGN.L1.field``
for a repeating field) is what canboat's decoder (the ``nmea2000`` package, SI units) must
read back from what the compiled specs encode, or ``-`` when the PGN must not be sent.
Numbers match within the field's resolution; lookup fields match canboat's label.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Final

from registers.compile.csvfile import Row, Shown, number, read_csv
from registers.compile.rules import Problems, rule
from registers.pgn_specs import N2kDeviceSpec, N2kPgn, database
from registers.values import Scalar

R39 = rule("R39", "an n2k sample is well formed and decodes (nmea2000 decoder) to its expected field values")

COLUMNS: Final = ("sample", "key", "value")
EXPECT_RE: Final = re.compile(r"^(?:([a-z][a-z0-9]*)/)?(\d+)\.(?:L([1-9])\.)?(\w+)$")


def check_samples(root: Path, shown: Shown, n2k: dict[str, tuple[N2kDeviceSpec, ...]], problems: Problems) -> int:
    """Check every sample file; returns how many expectations were checked."""
    folder = root / "n2k" / "samples"
    checked = 0
    for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        devices = n2k.get(path.stem)
        if devices is None:
            problems.add(shown(path), 0, R39, f"no n2k/{path.stem}.csv maps the service these samples are for")
            continue
        samples: dict[str, list[Row]] = defaultdict(list)
        for row in read_csv(path, shown(path), COLUMNS, COLUMNS, problems):
            samples[row.cells["sample"]].append(row)
        for rows in samples.values():
            checked += _check(devices, rows, problems)
    return checked


def _check(devices: tuple[N2kDeviceSpec, ...], rows: list[Row], problems: Problems) -> int:
    values: dict[str, Scalar] = {}
    instance = 0
    expects: list[Row] = []
    for row in rows:
        key, text = row.cells["key"], row.cells["value"]
        if key.startswith("/"):
            values[key] = number(text) if number(text) is not None else text
        elif key == "instance" and text.isdigit():
            instance = int(text)
        elif EXPECT_RE.match(key):
            expects.append(row)
        else:
            problems.add(row.file, row.line, R39, f"key {key!r} is not /path, instance or [role/]PGN.field")
    for row in expects:
        m = EXPECT_RE.match(row.cells["key"])
        assert m is not None
        role, pgn, line, name = m[1], int(m[2]), int(m[3] or 0), m[4]
        spec = _find(devices, role, pgn)
        if spec is None:
            problems.add(row.file, row.line, R39, f"no device of the service sends PGN {pgn} (role {role or 'any'})")
            continue
        payload = spec.encode(lambda p: values.get(p), instance)
        problem = _compare(pgn, payload, line, name, row.cells["value"], spec)
        if problem:
            problems.add(row.file, row.line, R39, f"sample {row.cells['sample']!r}: {problem}")
    return len(expects)


def _find(devices: tuple[N2kDeviceSpec, ...], role: str | None, pgn: int) -> N2kPgn | None:
    for device in devices:
        if role is None or device.role == role:
            for spec in device.pgns:
                if spec.pgn == pgn:
                    return spec
    return None


def _compare(pgn: int, payload: bytes | None, line: int, name: str, expected: str, spec: N2kPgn) -> str | None:
    if expected == "-":
        return None if payload is None else f"PGN {pgn} is sent but the sample expects it not to be"
    if payload is None:
        return f"PGN {pgn} is not sent (a required value is missing) but {name} = {expected} is expected"
    from nmea2000 import backend  # here, not at import: the package is heavy (registers/pgn_specs.py)

    message = backend.decode(pgn, payload, units="si")
    if message is None:
        return f"the nmea2000 decoder cannot decode PGN {pgn}"
    fields = {f.id: f for f in message.fields}
    if line:
        entries = next((f.value for f in message.fields if isinstance(f.value, list)), [])
        fields = entries[line - 1] if line <= len(entries) else {}
    got_field = fields.get(name)
    got = got_field.value if got_field is not None else None
    want = number(expected)
    if want is not None and isinstance(got, (int, float)):
        info = database().pgn_info(spec.pgn_id)
        resolution = next((f.resolution for f in info.fields if f.id == name), None) or 1e-9
        if abs(got - want) <= resolution / 2 + 1e-9:
            return None
    elif str(got) == expected:
        return None
    where = f"L{line}." if line else ""
    return f"{pgn}.{where}{name} decodes to {got!r}, expected {expected}"
