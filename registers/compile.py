"""Compile ``mappings/`` (CSV) into a frozen CompiledMap, checking every rule in rules.py.

Pure and deterministic: files in, CompiledMap or MappingError (with *all* problems) out.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

from registers.derive import DeriveSyntaxError, parse_derive
from registers.model import (
    RESERVED_PATH,
    AddressRun,
    CompiledMap,
    Lookup,
    Register,
    ServiceTable,
    Source,
    frozen_map,
)
from registers.rules import Problem, Problems
from registers.types import TypeSyntaxError, parse_type

SERVICE_COLUMNS: Final = ("register", "path", "type", "scale", "access", "unit", "lookup", "min", "max", "derive")
SERVICE_REQUIRED: Final = ("register", "path", "type", "scale", "access")
LOOKUP_COLUMNS: Final = ("value", "label")
UNIT_ID_COLUMNS: Final = ("unit_id", "instance", "remark")
PATH_RE: Final = re.compile(r"^(/[A-Za-z0-9_]+)+$")
SERVICE_RE: Final = re.compile(r"^[a-z][a-z0-9]*$")
_RANGE_RE: Final = re.compile(r"^(-?\d+)(?:-(-?\d+))?$")


class MappingError(Exception):
    """The mappings do not compile; ``problems`` lists every one, sorted by file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class _Row:
    file: str
    line: int
    cells: dict[str, str]


def _read_csv(
    path: Path, shown: str, columns: tuple[str, ...], required: tuple[str, ...], problems: Problems
) -> Iterator[_Row]:
    """Rows of a CSV file with physical line numbers (header = line 1); R01/R02 on failure."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        problems.add(shown, 0, "R01", f"cannot read: {e}")
        return
    lines = text.splitlines()
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        problems.add(shown, 1, "R02", f"empty file; expected header {','.join(columns)}")
        return
    except csv.Error as e:
        problems.add(shown, 1, "R01", f"CSV syntax: {e}")
        return
    header = [h.strip() for h in header]
    unknown = [h for h in header if h not in columns]
    missing = [c for c in required if c not in header]
    if unknown or missing:
        if unknown:
            problems.add(shown, 1, "R02", f"unknown column(s) {', '.join(unknown)} (known: {', '.join(columns)})")
        if missing:
            problems.add(shown, 1, "R02", f"missing column(s) {', '.join(missing)}")
        return
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                problems.add(shown, line, "R01", f"{len(cells)} cells but the header has {len(header)}")
                continue
            row = {h: "" for h in columns}
            row.update({h: c.strip() for h, c in zip(header, cells, strict=False)})
            yield _Row(shown, line, row)
    except csv.Error as e:
        problems.add(shown, reader.line_num, "R01", f"CSV syntax: {e}")


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if v == v and v not in (float("inf"), float("-inf")) else None


def _compile_lookup(path: Path, shown: str, problems: Problems) -> Lookup | None:
    entries: list[tuple[int, int, str]] = []
    before = len(problems.items)
    for row in _read_csv(path, shown, LOOKUP_COLUMNS, LOOKUP_COLUMNS, problems):
        m = _RANGE_RE.match(row.cells["value"])
        if not m:
            problems.add(shown, row.line, "R10", f"value {row.cells['value']!r} is not an integer or range like 51-52")
            continue
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
        if last < first:
            problems.add(shown, row.line, "R10", f"range {first}-{last} runs backwards")
            continue
        if not row.cells["label"]:
            problems.add(shown, row.line, "R10", f"value {row.cells['value']} has no label")
            continue
        clash = next((e for e in entries if e[0] <= last and first <= e[1]), None)
        if clash:
            problems.add(shown, row.line, "R10", f"value {row.cells['value']} repeats {clash[0]}={clash[2]}")
            continue
        entries.append((first, last, row.cells["label"]))
    if len(problems.items) != before:
        return None
    return Lookup(path.stem, tuple(sorted(entries)))


def _compile_service(
    name: str, path: Path, shown: str, lookups: dict[str, Lookup], problems: Problems
) -> list[Register]:
    registers: list[Register] = []
    for row in _read_csv(path, shown, SERVICE_COLUMNS, SERVICE_REQUIRED, problems):
        reg = _compile_row(name, row, lookups, problems)
        if reg is not None:
            registers.append(reg)
    return registers


def _compile_row(service: str, row: _Row, lookups: dict[str, Lookup], problems: Problems) -> Register | None:
    c, f, ln = row.cells, row.file, row.line
    ok = True

    def bad(rule: str, msg: str) -> None:
        nonlocal ok
        ok = False
        problems.add(f, ln, rule, msg)

    try:
        rtype = parse_type(c["type"])
    except TypeSyntaxError as e:
        rtype = None
        bad("R04" if "[" in c["type"] and c["type"].split("[")[0] in _WIDTH_BASES else "R03", str(e))
    address = int(c["register"]) if c["register"].isdigit() else None
    if address is None:
        bad("R05", f"register {c['register']!r} is not a non-negative integer")
    elif rtype is not None and address + rtype.width > 65536:
        bad("R05", f"register {address} + {rtype.width} runs past 65535")
    scale = _number(c["scale"])
    if scale is None or scale == 0:
        bad("R08", f"scale {c['scale']!r} must be a non-zero number (register = value * scale)")
    if c["access"] not in ("R", "W"):
        bad("R09", f"access {c['access']!r} must be R or W")
    p = c["path"]
    is_reserved = rtype is not None and rtype.kind == "reserved"
    if is_reserved and p != RESERVED_PATH:
        bad("R12", f"a {rtype.name if rtype else ''} block takes the path {RESERVED_PATH}, not {p!r}")
    elif not is_reserved and p == RESERVED_PATH and rtype is not None:
        bad("R12", f"path {RESERVED_PATH} is only for reserved[N] blocks, not {rtype.name}")
    elif p != RESERVED_PATH and not PATH_RE.match(p):
        bad("R12", f"path {p!r} is not like /Dc/0/Voltage")
    lookup = None
    if c["lookup"]:
        lookup = lookups.get(c["lookup"])
        if lookup is None:
            bad("R11", f"lookup {c['lookup']!r} has no file lookups/{c['lookup']}.csv")
    minimum = maximum = None
    for key in ("min", "max"):
        if c[key]:
            v = _number(c[key])
            if v is None:
                bad("R13", f"{key} {c[key]!r} is not a number")
            elif key == "min":
                minimum = v
            else:
                maximum = v
    if (c["min"] or c["max"]) and ok:
        assert rtype is not None and scale is not None
        if c["access"] != "W" or rtype.kind != "int":
            bad("R13", "min/max apply to numeric writable (W) rows only")
        elif minimum is not None and maximum is not None and minimum > maximum:
            bad("R13", f"min {minimum:g} is above max {maximum:g}")
        else:
            for v in (x for x in (minimum, maximum) if x is not None):
                raw = rtype.raw_of(v, scale)
                if not rtype.raw_min <= raw < rtype.raw_max:
                    bad("R13", f"{v:g} * scale {scale:g} does not fit {rtype.name}")
    derivation = None
    if c["derive"]:
        try:
            derivation = parse_derive(c["derive"], lambda a: bool(PATH_RE.match(a)))
        except DeriveSyntaxError as e:
            bad("R14", str(e))
        if c["access"] == "W":
            bad("R14", "a derived register is computed, so it must be read-only (R)")
    if not ok:
        return None
    assert rtype is not None and address is not None and scale is not None
    return Register(
        service=service,
        address=address,
        path=p,
        type=rtype,
        scale=scale,
        writable=c["access"] == "W",
        unit=c["unit"],
        lookup=lookup,
        minimum=minimum,
        maximum=maximum,
        derive=derivation,
        source=Source(f, ln),
    )


_WIDTH_BASES: Final = ("uint16", "int16", "uint32", "int32", "uint64", "string", "reserved")


def _compile_unit_ids(path: Path, shown: str, problems: Problems) -> dict[int, int]:
    units: dict[int, tuple[int, int]] = {}
    for row in _read_csv(path, shown, UNIT_ID_COLUMNS, UNIT_ID_COLUMNS[:2], problems):
        u, i = row.cells["unit_id"], row.cells["instance"]
        if not (u.isdigit() and int(u) <= 255):
            problems.add(shown, row.line, "R15", f"unit id {u!r} must be an integer 0..255")
            continue
        if not i.isdigit():
            problems.add(shown, row.line, "R15", f"instance {i!r} must be a non-negative integer")
            continue
        if int(u) in units:
            problems.add(shown, row.line, "R15", f"unit id {u} appears twice (first at line {units[int(u)][1]})")
            continue
        units[int(u)] = (int(i), row.line)
    return {u: inst for u, (inst, _) in units.items()}


def _index(
    tables: dict[str, list[Register]], problems: Problems
) -> tuple[dict[str, ServiceTable], dict[int, AddressRun]]:
    """Check overlaps (R06, R07) and build the address index with contiguous-run ends."""
    owner: dict[int, Register] = {}
    services: dict[str, ServiceTable] = {}
    for name, regs in sorted(tables.items()):
        regs.sort(key=lambda r: (r.address, r.source.line))
        kept: list[Register] = []
        for r in regs:
            clash = next((owner[a] for a in range(r.address, r.end) if a in owner), None)
            if clash is not None:
                rule = "R06" if clash.service == r.service else "R07"
                what = "overlaps" if rule == "R06" else f"is taken by service {clash.service}:"
                problems.add(
                    r.source.file,
                    r.source.line,
                    rule,
                    f"register {r.address} ({r.type.name} {r.path}) {what} register {clash.address} "
                    f"({clash.type.name} {clash.path}) at {clash.source}",
                )
                continue
            for a in range(r.address, r.end):
                owner[a] = r
            kept.append(r)
        if not kept:
            continue
        by_path: dict[str, list[Register]] = {}
        for r in kept:
            if not r.reserved:
                by_path.setdefault(r.path, []).append(r)
        services[name] = ServiceTable(
            name=name,
            registers=tuple(kept),
            by_path=frozen_map({k: tuple(v) for k, v in by_path.items()}),
            low=kept[0].address,
            high=max(r.end for r in kept),
        )
    runs: dict[int, AddressRun] = {}
    for table in services.values():
        addrs = sorted(a for r in table.registers for a in range(r.address, r.end))
        cover = {a: owner[a] for a in addrs}
        run_end = 0
        for a in reversed(addrs):
            if a + 1 not in cover:
                run_end = a + 1
            runs[a] = AddressRun(table, run_end, cover[a])
    return services, runs


def compile_mappings(root: Path | str, shown_root: str | None = None) -> CompiledMap:
    """Compile a mappings folder. Raises MappingError listing every problem found."""
    root = Path(root)
    shown_base = shown_root if shown_root is not None else str(root)
    problems = Problems()

    def shown(p: Path) -> str:
        return str(Path(shown_base) / p.relative_to(root))

    lookups: dict[str, Lookup] = {}
    for p in sorted((root / "lookups").glob("*.csv")):
        lk = _compile_lookup(p, shown(p), problems)
        if lk is not None:
            lookups[lk.name] = lk
    modbus = root / "modbus"
    files = sorted(modbus.glob("*.csv")) if modbus.is_dir() else []
    service_files = [p for p in files if p.name != "unit_ids.csv"]
    if not service_files:
        problems.add(str(Path(shown_base) / "modbus"), 0, "R16", "no service files (modbus/<service>.csv)")
    tables: dict[str, list[Register]] = {}
    for p in service_files:
        if not SERVICE_RE.match(p.stem):
            problems.add(
                shown(p), 0, "R17", f"{p.name}: a service file is named <type>.csv, lower-case letters and digits"
            )
            continue
        tables[p.stem] = _compile_service(p.stem, p, shown(p), lookups, problems)
    unit_file = modbus / "unit_ids.csv"
    if unit_file.is_file():
        unit_ids = _compile_unit_ids(unit_file, shown(unit_file), problems)
    else:
        unit_ids = {}
        problems.add(str(Path(shown_base) / "modbus" / "unit_ids.csv"), 0, "R16", "missing (unit_id,instance,remark)")
    services, runs = _index(tables, problems)
    if problems:
        raise MappingError(problems.sorted())
    return CompiledMap(
        services=frozen_map(services),
        by_address=frozen_map(runs),
        unit_ids=frozen_map(unit_ids),
        lookups=frozen_map(lookups),
    )


def default_mappings_dir() -> Path:
    """The mappings shipped with the package (installed), else the checkout's ``mappings/``."""
    packaged = Path(str(resources.files("registers"))) / "mappings"
    if (packaged / "modbus").is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "mappings"


def load_default() -> CompiledMap:
    return compile_mappings(default_mappings_dir(), shown_root="mappings")
