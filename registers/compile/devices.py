"""Compiles ``devices/``: one CSV per energy-meter model plus ``devices/meters.csv``, the index
that names each model's product and the probe (register, type, ids) that recognises it.

A meter file row: ``register`` (decimal or 0x hex), ``function`` (3 holding / 4 input),
``type`` and ``word_order`` (``low-first`` for meters that send the low word first), ``scale``
(value = raw / scale), the ``path`` it feeds (any path a role service declares: grid,
pvinverter, genset, acload, evcharger), the raw values that mean ``invalid``, and up to three
sample cells ``WORDS = VALUE`` (a real register dump and what it reads as), checked here so a
wrong type, word order or scale fails ``gx-gateway check``. The reads are planned here too.
Adding a meter model is a CSV file and a meters.csv row: no code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from registers.codec import Codec, CodecSyntaxError, parse_codec
from registers.compile.csvfile import Row, Shown, number, read_csv
from registers.compile.rules import Problems, rule
from registers.compile.samples import R58, check_samples
from registers.meters import HOLDING, INPUT, ROLE_SERVICES, MeterField, MeterModel, MeterProbe, MeterSample, plan_blocks
from registers.model import PathSpec
from registers.origin import Source

R50 = rule("R50", "devices/meters.csv lists every meter file once (lower-case name, a product) and no missing file")
R51 = rule("R51", "a meter register is an integer (decimal or 0x hex) and its value ends at or before 65536")
R52 = rule("R52", "a meter function code is 3 (holding registers) or 4 (input registers)")
R53 = rule(
    "R53",
    "a meter type is uint16, int16, uint32, int32, uint64, int64, float32 or string[N]; "
    "word_order is empty, high-first or low-first (multi-register numbers only)",
)
R54 = rule("R54", "a meter scale is a non-zero number (value = raw / scale)")
R55 = rule(
    "R55", "a meter path is declared by a role service (grid, pvinverter, genset, acload, evcharger), once a file"
)
R56 = rule("R56", "invalid lists raw values of the row's type (integers or 0x hex in range)")
R57 = rule("R57", "registers of one function code do not overlap in a meter file")
R59 = rule("R59", "a probe match is integer ids or ranges (integer types) or texts (string types), no id claimed twice")

INDEX: Final = "meters.csv"
INDEX_COLUMNS: Final = ("model", "product", "register", "function", "type", "word_order", "match")
SAMPLE_COLUMNS: Final = ("sample1", "sample2", "sample3")
COLUMNS: Final = ("register", "function", "type", "word_order", "scale", "path", "invalid", *SAMPLE_COLUMNS)
REQUIRED: Final = ("register", "function", "type", "scale", "path")
METER_TYPES: Final = ("uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "string")
NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9-]*$")
RANGE_RE: Final = re.compile(r"^(\d+)(?:-(\d+))?$")
MAX_GAP: Final = 32  # unread registers a planned block may span to save a request


def _address(row: Row, column: str, problems: Problems) -> int | None:
    text = row.cells[column]
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        problems.add(row.file, row.line, R51, f"{column} {text!r} is not an address 0..65535 (decimal or 0x hex)")
        return None
    return value


def _function(row: Row, problems: Problems) -> int | None:
    text = row.cells["function"]
    if text not in ("3", "4"):
        problems.add(row.file, row.line, R52, f"function {text!r} must be 3 (holding) or 4 (input registers)")
        return None
    return int(text)


def _codec(row: Row, problems: Problems) -> Codec | None:
    order = row.cells["word_order"]
    if order not in ("", "high-first", "low-first"):
        problems.add(row.file, row.line, R53, f"word_order {order!r} must be high-first or low-first")
        return None
    try:
        codec = parse_codec(row.cells["type"], low_word_first=order == "low-first")
    except CodecSyntaxError as e:
        problems.add(row.file, row.line, R53, str(e))
        return None
    if codec.name.split("[")[0] not in METER_TYPES:
        problems.add(row.file, row.line, R53, f"type {codec.name!r} is not a meter type ({', '.join(METER_TYPES)})")
        return None
    if order and (codec.form not in ("int", "float") or codec.width == 1):
        problems.add(row.file, row.line, R53, f"word_order applies to 32/64-bit numbers, not {codec.name}")
        return None
    return codec


def _invalid(row: Row, codec: Codec, problems: Problems) -> frozenset[int] | None:
    values: set[int] = set()
    for text in row.cells["invalid"].split():
        try:
            raw = int(text, 0)
        except ValueError:
            problems.add(row.file, row.line, R56, f"invalid {text!r} is not an integer or 0x hex")
            return None
        if codec.form != "int":
            problems.add(row.file, row.line, R56, f"{codec.name} takes no invalid values (NaN is always invalid)")
            return None
        bits = 16 * codec.width
        if text.lower().startswith("0x") and codec.signed and raw >= 1 << (bits - 1):
            raw -= 1 << bits  # a bit pattern, as meter manuals write it: 0x80000000
        if not codec.raw_min <= raw <= codec.raw_max:
            problems.add(row.file, row.line, R56, f"invalid {text} does not fit {codec.name}")
            return None
        values.add(raw)
    return frozenset(values)


def compile_field(row: Row, roles: dict[str, PathSpec], problems: Problems) -> MeterField | None:
    before = len(problems)
    function = _function(row, problems)
    codec = _codec(row, problems)
    address = _address(row, "register", problems)
    if address is not None and codec is not None and address + codec.width > 65536:
        problems.add(row.file, row.line, R51, f"register {address} + {codec.width} runs past 65535")
    scale = number(row.cells["scale"])
    if not scale:
        problems.add(row.file, row.line, R54, f"scale {row.cells['scale']!r} must be a non-zero number")
    path = row.cells["path"]
    spec = roles.get(path)
    if spec is None:
        problems.add(row.file, row.line, R55, f"path {path!r} is not declared by any of {', '.join(ROLE_SERVICES)}")
    elif codec is not None and spec.text != (codec.form == "string"):
        kind = "text" if spec.text else "a number"
        problems.add(row.file, row.line, R55, f"{path} is {kind}; type {codec.name} does not carry it")
    invalid = _invalid(row, codec, problems) if codec is not None else None
    if len(problems) != before:
        return None
    assert function is not None and codec is not None and address is not None and scale and invalid is not None
    return MeterField(path, function, address, codec, scale, invalid, Source(row.file, row.line))


def _overlaps(fields: list[MeterField], problems: Problems) -> list[MeterField]:
    kept: list[MeterField] = []
    paths: dict[str, MeterField] = {}
    for f in sorted(fields, key=lambda f: (f.function, f.address, f.source.line)):
        clash = next((k for k in kept if k.function == f.function and k.address < f.end and f.address < k.end), None)
        if clash is not None:
            where = f"register {f.address} ({f.codec.name} {f.path})"
            problems.add(f.source.file, f.source.line, R57, f"{where} overlaps {clash.path} at {clash.source}")
            continue
        first = paths.setdefault(f.path, f)
        if first is not f:
            problems.add(f.source.file, f.source.line, R55, f"{f.path} is read twice (first at {first.source})")
            continue
        kept.append(f)
    return kept


def compile_probe(row: Row, problems: Problems) -> MeterProbe | None:
    """The probe columns of a meters.csv row; None when the model cannot be probed (empty)."""
    c = row.cells
    if not any(c[k] for k in ("register", "function", "type", "match")):
        return None
    before = len(problems)
    function = _function(row, problems)
    codec = _codec(row, problems)
    address = _address(row, "register", problems)
    ranges: list[tuple[int, int]] = []
    texts: list[str] = []
    for item in c["match"].split():
        m = RANGE_RE.match(item)
        if codec is not None and codec.form == "string":
            texts.append(item)
        elif codec is not None and m and int(m.group(2) or m.group(1)) >= int(m.group(1)):
            ranges.append((int(m.group(1)), int(m.group(2) or m.group(1))))
        else:
            problems.add(row.file, row.line, R59, f"match {item!r} is not an id or range like 1648-1653")
    if not ranges and not texts:
        problems.add(row.file, row.line, R59, "a probe needs a match (ids, ranges or texts)")
    if len(problems) != before:
        return None
    assert function is not None and codec is not None and address is not None
    return MeterProbe(function, address, codec, tuple(ranges), tuple(texts), Source(row.file, row.line))


def _probe_clashes(probes: dict[str, MeterProbe], problems: Problems) -> None:
    seen: list[tuple[str, MeterProbe]] = []
    for name, p in probes.items():
        for other_name, o in seen:
            if o.key != p.key:
                continue
            shared = set(o.texts) & set(p.texts)
            overlap = [(a, b) for a, b in p.ranges for c, d in o.ranges if a <= d and c <= b]
            if shared or overlap:
                problems.add(p.source.file, p.source.line, R59, f"{name} claims an id {other_name} claims ({o.source})")
        seen.append((name, p))


def compile_meter(
    path: Path, shown: str, roles: dict[str, PathSpec], problems: Problems
) -> tuple[tuple[MeterField, ...], tuple[MeterSample, ...]]:
    """A meter file's fields (checked, no overlaps) and its samples (each checked: R58)."""
    rows: dict[int, Row] = {}  # by line
    fields: list[MeterField] = []
    for row in read_csv(path, shown, COLUMNS, REQUIRED, problems):
        f = compile_field(row, roles, problems)
        if f is not None:
            fields.append(f)
            rows[row.line] = row
    kept = _overlaps(fields, problems)
    samples = check_samples([(f, rows[f.source.line]) for f in kept], SAMPLE_COLUMNS, problems)
    return tuple(kept), samples


def compile_devices(
    folder: Path, shown: Shown, paths: dict[str, dict[str, PathSpec]], problems: Problems
) -> dict[str, MeterModel]:
    """Every meter model of ``folder`` (absent folder: none), checked and with its reads planned."""
    if not folder.is_dir():
        return {}
    roles: dict[str, PathSpec] = {}
    for service in ROLE_SERVICES:
        for declared, spec in paths.get(service, {}).items():
            roles.setdefault(declared, spec)
    index = folder / INDEX
    listed: dict[str, tuple[str, MeterProbe | None, Source]] = {}
    files = {p.stem: p for p in sorted(folder.glob("*.csv")) if p.name != INDEX}
    if not index.is_file():
        problems.add(shown(index), 0, R50, f"missing; it lists the meter files ({', '.join(INDEX_COLUMNS)})")
    else:
        for row in read_csv(index, shown(index), INDEX_COLUMNS, ("model", "product"), problems):
            name, product = row.cells["model"], row.cells["product"]
            if not NAME_RE.match(name) or name not in files:
                problems.add(row.file, row.line, R50, f"model {name!r} has no file devices/{name}.csv (lower-case)")
            elif name in listed:
                problems.add(row.file, row.line, R50, f"model {name} is listed twice (first at {listed[name][2]})")
            elif not product:
                problems.add(row.file, row.line, R50, f"model {name} has no product name")
            else:
                listed[name] = (product, compile_probe(row, problems), Source(row.file, row.line))
    for name, file in files.items():
        if name not in listed and index.is_file():
            problems.add(shown(file), 0, R50, f"{file.name} is not listed in devices/{INDEX}")
    _probe_clashes({n: pr for n, (_, pr, _) in listed.items() if pr is not None}, problems)
    models: dict[str, MeterModel] = {}
    for name, (product, probe, source) in listed.items():
        before = len(problems)
        fields, samples = compile_meter(files[name], shown(files[name]), roles, problems)
        if len(problems) != before or not fields:
            continue
        phases = max((n for n in (1, 2, 3) if any(f.path.startswith(f"/Ac/L{n}/") for f in fields)), default=1)
        blocks = plan_blocks(fields, MAX_GAP)
        models[name] = MeterModel(name, product, phases, fields, blocks, probe, samples, source)
    return models


__all__ = ["HOLDING", "INPUT", "R50", "R51", "R52", "R53", "R54", "R55", "R56", "R57", "R58", "R59", "compile_devices"]
