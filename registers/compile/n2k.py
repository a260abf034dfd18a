"""Compiles ``mappings/n2k/``: the virtual NMEA 2000 devices and the PGN fields they fill.

- ``n2k/devices.csv``: per service type, the virtual devices (role, device class/function as
  canboat numbers them, the data-instance pool, the model name for Product Information;
  ``input`` = y: NMEA 2000 in reads other senders' PGNs of this role, the same rows reversed).
- ``n2k/<service>.csv``: one row per PGN field: ``role,pgn,field,source,convert,required,interval``.
  ``source`` is a Store path of the service, ``instance`` (the device's data instance) or
  ``=constant`` (a number or a canboat label); ``convert`` turns the Store's unit into the
  field's SI unit (``C->K``, ``%->ratio``, ``Ah->C``, ``kWh->J``) or maps an enum to canboat
  labels (``3=Bulk;4=Absorption``); repeating fields (AC lines) are written ``L1.voltage``.

Everything is checked against canboat's database as the ``nmea2000`` package ships it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from registers.compile.csvfile import Row, Shown, number, read_csv
from registers.compile.rules import Problems, rule
from registers.model import PathSpec
from registers.origin import Source
from registers.pgn_specs import N2kDeviceSpec, N2kField, N2kPgn, database

if TYPE_CHECKING:  # imported where used: the nmea2000 package is heavy (registers/pgn_specs.py, database)
    from nmea2000 import _canboat as canboat

R30 = rule("R30", "an n2k service file or devices.csv row names a service type of the Modbus map")
R31 = rule("R31", "devices.csv: a role once per service, a device class/function canboat knows, a pool and a model")
R32 = rule("R32", "the PGN is a data PGN canboat knows (one definition; not a network-management PGN)")
R33 = rule("R33", "the field is a field of the PGN (repeating fields as L<n>.field), mapped once")
R34 = rule("R34", "the Store path's unit, through the conversion, is the field's SI unit")
R35 = rule("R35", "lookup fields get canboat's labels (a constant or value=Label;... table), and only they")
R36 = rule("R36", "the interval is whole ms 50..60000, one per PGN, or canboat's default")
R37 = rule("R37", "the source is a Store path of the service, instance, or =constant")
R38 = rule("R38", "a PGN has a required path and maps every primary-key (instance) field")
R40 = rule("R40", "every role of a service file is declared in devices.csv, every declared role has PGNs")

DEVICE_COLUMNS: Final = ("service", "role", "class", "function", "pool", "model", "input")
DEVICE_REQUIRED: Final = DEVICE_COLUMNS[:-1]
COLUMNS: Final = ("role", "pgn", "field", "source", "convert", "required", "interval")
REQUIRED: Final = ("role", "pgn", "field", "source")
PROTOCOL_PGNS: Final = frozenset({59392, 59904, 60928, 126208, 126464, 126993, 126996})
NAME_RE: Final = re.compile(r"^[a-z][a-z0-9]*$")
LINE_RE: Final = re.compile(r"^L([1-9])\.(\w+)$")
STORE_UNITS: Final = {"V DC": "V", "V AC": "V", "A DC": "A", "A AC": "A", "Degrees celsius": "C", "seconds": "s"}
# name -> (Store unit, SI unit, factor, offset)
CONVERSIONS: Final = {
    "C->K": ("C", "K", 1.0, 273.15),
    "%->ratio": ("%", "ratio", 0.01, 0.0),
    "Ah->C": ("Ah", "C", 3600.0, 0.0),
    "kWh->J": ("kWh", "J", 3.6e6, 0.0),
}
LOOKUP_TYPES: Final = ("LOOKUP", "INDIRECT_LOOKUP")


def compile_n2k(
    root: Path, shown: Shown, paths: dict[str, dict[str, PathSpec]], problems: Problems
) -> dict[str, tuple[N2kDeviceSpec, ...]]:
    """service type -> its virtual devices; empty when there is no n2k folder."""
    folder = root / "n2k"
    if not folder.is_dir():
        return {}
    declared = _devices(folder / "devices.csv", shown, paths, problems)
    pgns: dict[tuple[str, str], list[N2kPgn]] = defaultdict(list)
    with_rows: set[tuple[str, str]] = set()
    for path in sorted(folder.glob("*.csv")):
        if path.name == "devices.csv":
            continue
        service = path.stem
        if service not in paths:
            problems.add(shown(path), 0, R30, f"{service!r} is not a service type of the Modbus map")
            continue
        rows = list(read_csv(path, shown(path), COLUMNS, REQUIRED, problems))
        with_rows.update((service, r.cells["role"]) for r in rows)
        for role, pgn in _pgns(service, rows, declared, paths[service], problems):
            pgns[(service, role)].append(pgn)
    out: dict[str, list[N2kDeviceSpec]] = defaultdict(list)
    for (service, role), (cls, fn, pool, model, reads, src) in declared.items():
        found = pgns.get((service, role), [])
        if (service, role) not in with_rows:
            problems.add(src.file, src.line, R40, f"{service} role {role!r} has no PGN rows in n2k/{service}.csv")
        out[service].append(N2kDeviceSpec(service, role, cls, fn, pool, model, tuple(found), src, reads))
    return {s: tuple(d) for s, d in out.items()}


Declared = dict[tuple[str, str], tuple[int, int, str, str, bool, Source]]


def _devices(path: Path, shown: Shown, paths: dict[str, dict[str, PathSpec]], problems: Problems) -> Declared:
    found: Declared = {}
    classes = dict(database().lookup("DEVICE_CLASS"))
    for row in read_csv(path, shown(path), DEVICE_COLUMNS, DEVICE_REQUIRED, problems):
        c, f, ln = row.cells, row.file, row.line
        if c["service"] not in paths:
            problems.add(f, ln, R30, f"{c['service']!r} is not a service type of the Modbus map")
            continue
        key = (c["service"], c["role"])
        cls, fn = _int(c["class"]), _int(c["function"])
        if key in found or not NAME_RE.match(c["role"]):
            problems.add(f, ln, R31, f"role {c['role']!r} of {c['service']} is repeated or not a lower-case name")
        elif cls is None or cls not in classes:
            problems.add(f, ln, R31, f"device class {c['class']!r} is not in canboat's DEVICE_CLASS")
        elif fn is None or _function_label(cls, fn) is None:
            problems.add(f, ln, R31, f"device function {c['function']!r} is not one canboat knows for class {cls}")
        elif not NAME_RE.match(c["pool"]) or not c["model"]:
            problems.add(f, ln, R31, f"pool {c['pool']!r} must be a lower-case name and model must be given")
        elif c.get("input", "") not in ("", "y"):
            problems.add(f, ln, R31, f"input {c['input']!r} must be y (NMEA 2000 in reads this role) or empty")
        else:
            found[key] = (cls, fn, c["pool"], c["model"], c.get("input") == "y", Source(f, ln))
    return found


def _function_label(device_class: int, function: int) -> str | None:
    """canboat's label for a class/function pair (an indirect lookup: decode a NAME)."""
    from nmea2000 import _canboat as canboat
    from nmea2000 import backend

    name = canboat.iso_name(
        0, 0, device_function=function, device_class=device_class, device_instance=0, system_instance=0,
        industry_group=4, arbitrary_address_capable=True,
    )  # fmt: skip
    message = backend.decode(60928, name.to_bytes(8, "little"), units="si")
    if message is None:
        return None
    labels = {f.id: f.value for f in message.fields}
    value = labels.get("deviceFunction")
    return value if isinstance(value, str) else None


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _pgns(
    service: str, rows: list[Row], declared: Declared, specs: dict[str, PathSpec], problems: Problems
) -> list[tuple[str, N2kPgn]]:
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        if (service, row.cells["role"]) not in declared:
            problems.add(row.file, row.line, R40, f"role {row.cells['role']!r} is not declared for {service}")
            continue
        groups[(row.cells["role"], row.cells["pgn"])].append(row)
    out = []
    for (role, pgn_text), group in groups.items():
        compiled = _pgn(pgn_text, group, specs, problems)
        if compiled is not None:
            out.append((role, compiled))
    return out


def _pgn(pgn_text: str, rows: list[Row], specs: dict[str, PathSpec], problems: Problems) -> N2kPgn | None:
    first = rows[0]
    pgn = _int(pgn_text)
    variants = database().pgn_variants(pgn) if pgn is not None else []
    if pgn is None or len(variants) != 1 or pgn in PROTOCOL_PGNS or variants[0].packet_type == "ISO":
        problems.add(first.file, first.line, R32, f"PGN {pgn_text!r} is not a data PGN with one canboat definition")
        return None
    info = variants[0]
    before = len(problems)
    pairs = [(r, f) for r in rows if (f := _field(info, r, specs, problems)) is not None]
    fields = [f for _, f in pairs]
    seen: dict[tuple[int, str], Row] = {}
    for row, fld in pairs:
        if (fld.line, fld.field) in seen:
            problems.add(row.file, row.line, R33, f"{row.cells['field']} of PGN {pgn} is mapped twice")
        seen[(fld.line, fld.field)] = row
    interval = _interval(info, rows, problems)
    lines = max((f.line for f in fields), default=0)
    repeating = _repeating(info)
    keys = [fi.id for fi in info.fields if fi.part_of_primary_key and fi.id not in repeating]
    missing = [k for k in keys if (0, k) not in seen]
    if missing:
        problems.add(
            first.file, first.line, R38, f"PGN {pgn} leaves primary-key field(s) {', '.join(missing)} unmapped"
        )
    if not any(f.required and f.path for f in fields):
        problems.add(first.file, first.line, R38, f"PGN {pgn} has no required Store path (required = y)")
    if len(problems) != before or interval is None:
        return None
    return N2kPgn(
        pgn, info.id, info.packet_type == "Fast", interval, 6, tuple(fields), lines, Source(first.file, first.line)
    )


def _repeating(info: canboat.PgnInfo) -> set[str]:
    ids = [f.id for f in info.fields]
    return {i for start, count, _ in info.repeating_sets for i in ids[start : start + count]}


def _interval(info: canboat.PgnInfo, rows: list[Row], problems: Problems) -> int | None:
    given = {r.cells["interval"] for r in rows if r.cells["interval"]}
    row = next((r for r in rows if r.cells["interval"]), rows[0])
    if len(given) > 1:
        problems.add(row.file, row.line, R36, f"PGN {info.pgn} has several intervals: {', '.join(sorted(given))}")
        return None
    if not given:
        if info.transmission_interval is None:
            problems.add(row.file, row.line, R36, f"PGN {info.pgn} has no canboat default interval; give one")
        default: int | None = info.transmission_interval
        return default
    value = number(given.pop())
    if value is None or not value.is_integer() or not 50 <= value <= 60000:
        problems.add(row.file, row.line, R36, f"interval {row.cells['interval']!r} is not whole ms 50..60000")
        return None
    return int(value)


def _field(info: canboat.PgnInfo, row: Row, specs: dict[str, PathSpec], problems: Problems) -> N2kField | None:
    c, f, ln = row.cells, row.file, row.line
    name, line = c["field"], 0
    if m := LINE_RE.match(name):
        line, name = int(m[1]), m[2]
    by_id = {fi.id: fi for fi in info.fields}
    repeating = _repeating(info)
    fi = by_id.get(name)
    if fi is None or (name in repeating) != bool(line) or fi.field_type in ("RESERVED", "SPARE"):
        where = "a repeating field (write L1.field)" if fi is not None and name in repeating else "a field"
        known = ", ".join(k for k in by_id if by_id[k].field_type not in ("RESERVED", "SPARE"))
        problems.add(f, ln, R33, f"{c['field']!r} is not {where} of PGN {info.pgn} {info.id} (fields: {known})")
        return None
    is_lookup = fi.field_type in LOOKUP_TYPES
    src, conv, required = c["source"], c["convert"], c["required"]
    if required not in ("", "y"):
        problems.add(f, ln, R38, f"required {required!r} must be y or empty")
        return None
    base: dict[str, Any] = {
        "field": name, "line": line, "path": None, "constant": None, "instance": False, "factor": 1.0,
        "offset": 0.0, "labels": None, "required": required == "y", "source": Source(f, ln),
    }  # fmt: skip
    if src == "instance" or src.startswith("="):
        if conv:
            problems.add(f, ln, R37, f"a {src} source takes no conversion ({conv!r})")
            return None
        if src == "instance":
            return N2kField(**{**base, "instance": True})
        text = src[1:]
        value: Any = number(text) if not is_lookup else text
        if value is None or (is_lookup and not _label_ok(info, name, line, text)):
            rule_code = R35 if is_lookup else R37
            problems.add(f, ln, rule_code, f"constant {text!r} is not a valid value of {info.id}.{name}")
            return None
        return N2kField(
            **{**base, "constant": int(value) if isinstance(value, float) and value.is_integer() else value}
        )
    spec = specs.get(src)
    if spec is None or spec.text:
        problems.add(f, ln, R37, f"source {src!r} is not a numeric Store path of the service, instance or =constant")
        return None
    if is_lookup:
        labels = _label_table(conv)
        bad = [t for t in (labels or {}).values() if not _label_ok(info, name, line, t)]
        if labels is None or bad:
            problems.add(
                f, ln, R35, f"{info.id}.{name} needs value=Label pairs of canboat's lookup; bad: {bad or conv!r}"
            )
            return None
        return N2kField(**{**base, "path": src, "labels": labels})
    if "=" in conv:
        problems.add(f, ln, R35, f"{info.id}.{name} is not a lookup field; a label table does not apply")
        return None
    have = STORE_UNITS.get(spec.unit, spec.unit)
    want = fi.unit or ""
    if conv:
        if conv not in CONVERSIONS:
            problems.add(f, ln, R34, f"unknown conversion {conv!r} (known: {', '.join(CONVERSIONS)})")
            return None
        frm, to, factor, offset = CONVERSIONS[conv]
        if frm != have or to != want:
            problems.add(f, ln, R34, f"{conv} turns {frm} into {to}, but {src} is {have!r} and the field is {want!r}")
            return None
        return N2kField(**{**base, "path": src, "factor": factor, "offset": offset})
    if have != want:
        problems.add(f, ln, R34, f"{src} is in {have!r} but {info.id}.{name} is in {want!r}; add a conversion")
        return None
    return N2kField(**{**base, "path": src})


def _label_table(text: str) -> dict[int, str] | None:
    out: dict[int, str] = {}
    for part in text.split(";"):
        key, sep, label = part.partition("=")
        if not sep or not key.strip().isdigit() or not label.strip():
            return None
        out[int(key)] = label.strip()
    return out


def _label_ok(info: canboat.PgnInfo, name: str, line: int, label: str) -> bool:
    """Whether canboat accepts the label for the field (a trial encode of that one field)."""
    from nmea2000 import _canboat as canboat

    try:
        if line:
            database().encode(info.id, {}, sets=[[{name: label}]])
        else:
            database().encode(info.id, {name: label})
    except canboat.EncodeError:
        return False
    return True
