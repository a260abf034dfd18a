"""Compiles the served GX register list: ``modbus/<service>.csv`` and ``modbus/unit_ids.csv``.

A row is split in two: its meaning goes to ``paths.py`` (cmap.paths), its encoding (address,
codec, scale) becomes a ModbusRegister with the GX "not available" value of its type.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from registers.codec import BadWidth, Codec, CodecSyntaxError, UnknownType, gx_not_available, parse_codec
from registers.compile.csvfile import Row, Shown, number, read_csv
from registers.compile.paths import R12, R13, merge_paths, parse_meaning
from registers.compile.rules import Problems, rule
from registers.model import (
    RESERVED_PATH,
    AddressRun,
    Lookup,
    ModbusMap,
    ModbusRegister,
    ModbusTable,
    PathSpec,
    frozen_map,
)
from registers.origin import Source

R03 = rule("R03", "the type is one of uint16, int16, uint32, int32, uint64, string[N], reserved[N]")
R04 = rule("R04", "register width fits the type: string[N]/reserved[N] take 1..125 registers, fixed types take no [N]")
R05 = rule("R05", "the register address is an integer and the block ends at or before 65536")
R06 = rule("R06", "registers of one service type do not overlap")
R07 = rule("R07", "an address belongs to one service type only")
R08 = rule("R08", "scale is a non-zero number")
R09 = rule("R09", "access is R or W")
R15 = rule("R15", "unit_ids.csv: unit ids 0..255 and instances >= 0, each unit id once")
R16 = rule("R16", "the mappings folder has modbus/*.csv service files and modbus/unit_ids.csv")
R17 = rule("R17", "service file names are lower-case service types (battery.csv, vebus.csv)")

COLUMNS: Final = ("register", "path", "type", "scale", "access", "unit", "lookup", "min", "max", "derive")
REQUIRED: Final = ("register", "path", "type", "scale", "access")
UNIT_ID_COLUMNS: Final = ("unit_id", "instance", "remark")
SERVED_TYPES: Final = ("uint16", "int16", "uint32", "int32", "uint64", "string", "reserved")
SERVICE_RE: Final = re.compile(r"^[a-z][a-z0-9]*$")
CODEC_RULES: Final[dict[type[CodecSyntaxError], str]] = {UnknownType: R03, BadWidth: R04}


def _codec(row: Row, problems: Problems) -> Codec | None:
    text = row.cells["type"]
    try:
        codec = parse_codec(text)
    except CodecSyntaxError as e:
        problems.add(row.file, row.line, CODEC_RULES[type(e)], str(e))
        return None
    if codec.name.split("[")[0] not in SERVED_TYPES:
        problems.add(row.file, row.line, R03, f"type {text!r} is not served by the GX list ({', '.join(SERVED_TYPES)})")
        return None
    return codec


def compile_row(
    service: str, row: Row, lookups: dict[str, Lookup], problems: Problems
) -> tuple[ModbusRegister, PathSpec | None] | None:
    c, f, ln = row.cells, row.file, row.line
    before = len(problems)
    codec = _codec(row, problems)
    address = int(c["register"]) if c["register"].isdigit() else None
    if address is None:
        problems.add(f, ln, R05, f"register {c['register']!r} is not a non-negative integer")
    elif codec is not None and address + codec.width > 65536:
        problems.add(f, ln, R05, f"register {address} + {codec.width} runs past 65535")
    scale = number(c["scale"])
    if scale is None or scale == 0:
        problems.add(f, ln, R08, f"scale {c['scale']!r} must be a non-zero number (register = value * scale)")
    if c["access"] not in ("R", "W"):
        problems.add(f, ln, R09, f"access {c['access']!r} must be R or W")
    reserved = codec is not None and codec.form == "reserved"
    carry: tuple[float | None, float | None] = (None, None)
    if codec is not None and codec.form == "int" and scale:
        ends = sorted((codec.raw_min / scale, (codec.raw_max - 1) / scale))  # raw_max is the sentinel
        carry = (ends[0], ends[1])
    spec = None
    if reserved and c["path"] != RESERVED_PATH:
        problems.add(
            f, ln, R12, f"a {codec.name if codec else ''} block takes the path {RESERVED_PATH}, not {c['path']!r}"
        )
    elif c["path"] == RESERVED_PATH and codec is not None and not reserved:
        problems.add(f, ln, R12, f"path {RESERVED_PATH} is only for reserved[N] blocks, not {codec.name}")
    elif not reserved and c["path"] != RESERVED_PATH:
        text = codec is not None and codec.form == "string"
        spec = parse_meaning(service, row, text=text, carry=carry, lookups=lookups, problems=problems)
    if len(problems) != before or codec is None or address is None or scale is None:
        return None
    lo, hi = carry
    if spec is not None and lo is not None and hi is not None:
        for v in (x for x in (spec.minimum, spec.maximum) if x is not None):
            if not lo <= v <= hi:
                problems.add(f, ln, R13, f"{v:g} * scale {scale:g} does not fit {codec.name}")
                return None
    register = served_register(service, address, c["path"], codec, scale, c["access"] == "W", Source(f, ln), spec)
    return register, spec


def served_register(
    service: str,
    address: int,
    path: str,
    codec: Codec,
    scale: float,
    writable: bool,
    source: Source,
    spec: PathSpec | None,
) -> ModbusRegister:
    """A register of the served map, with the GX's "not available" value of its type."""
    na_raw = gx_not_available(codec)
    na = bytes(2 * codec.width) if codec.form == "string" else codec.pack(na_raw if na_raw is not None else 0)
    zero = na if codec.form == "reserved" else bytes(2 * codec.width)
    return ModbusRegister(service, address, path, codec, scale, writable, source, spec, na_raw, na, zero)


def compile_unit_ids(path: Path, shown: str, problems: Problems) -> dict[int, int]:
    units: dict[int, tuple[int, int]] = {}
    for row in read_csv(path, shown, UNIT_ID_COLUMNS, UNIT_ID_COLUMNS[:2], problems):
        u, i = row.cells["unit_id"], row.cells["instance"]
        if not (u.isdigit() and int(u) <= 255):
            problems.add(shown, row.line, R15, f"unit id {u!r} must be an integer 0..255")
        elif not i.isdigit():
            problems.add(shown, row.line, R15, f"instance {i!r} must be a non-negative integer")
        elif int(u) in units:
            problems.add(shown, row.line, R15, f"unit id {u} appears twice (first at line {units[int(u)][1]})")
        else:
            units[int(u)] = (int(i), row.line)
    return {u: inst for u, (inst, _) in units.items()}


def _index(
    tables: dict[str, list[ModbusRegister]], problems: Problems
) -> tuple[dict[str, ModbusTable], dict[int, AddressRun]]:
    """Check overlaps (R06, R07) and build the address index with contiguous-run ends."""
    owner: dict[int, ModbusRegister] = {}
    services: dict[str, ModbusTable] = {}
    for name, regs in sorted(tables.items()):
        regs.sort(key=lambda r: (r.address, r.source.line))
        kept: list[ModbusRegister] = []
        for r in regs:
            clash = next((owner[a] for a in range(r.address, r.end) if a in owner), None)
            if clash is not None:
                code = R06 if clash.service == r.service else R07
                what = "overlaps" if code == R06 else f"is taken by service {clash.service}:"
                problems.add(
                    r.source.file,
                    r.source.line,
                    code,
                    f"register {r.address} ({r.codec.name} {r.path}) {what} register {clash.address} "
                    f"({clash.codec.name} {clash.path}) at {clash.source}",
                )
                continue
            for a in range(r.address, r.end):
                owner[a] = r
            kept.append(r)
        if not kept:
            continue
        by_path: dict[str, list[ModbusRegister]] = {}
        for r in kept:
            if not r.reserved:
                by_path.setdefault(r.path, []).append(r)
        services[name] = ModbusTable(
            name=name,
            registers=tuple(kept),
            by_path=frozen_map({k: tuple(v) for k, v in by_path.items()}),
            low=kept[0].address,
            high=max(r.end for r in kept),
        )
    runs: dict[int, AddressRun] = {}
    for table in services.values():
        addrs = sorted(a for r in table.registers for a in range(r.address, r.end))
        run_end = 0
        for a in reversed(addrs):
            if a + 1 not in owner or owner[a + 1].service != table.name:
                run_end = a + 1
            runs[a] = AddressRun(table, run_end, owner[a])
    return services, runs


def compile_modbus(
    root: Path, shown: Shown, lookups: dict[str, Lookup], problems: Problems
) -> tuple[ModbusMap, dict[str, dict[str, PathSpec]]]:
    """The served map and the meaning of every path it declares, per service type."""
    folder = root / "modbus"
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    service_files = [p for p in files if p.name != "unit_ids.csv"]
    if not service_files:
        problems.add(shown(folder), 0, R16, "no service files (modbus/<service>.csv)")
    tables: dict[str, list[ModbusRegister]] = {}
    paths: dict[str, dict[str, PathSpec]] = {}
    for p in service_files:
        if not SERVICE_RE.match(p.stem):
            problems.add(
                shown(p), 0, R17, f"{p.name}: a service file is named <type>.csv, lower-case letters and digits"
            )
            continue
        declared: list[PathSpec] = []
        registers = tables.setdefault(p.stem, [])
        for row in read_csv(p, shown(p), COLUMNS, REQUIRED, problems):
            compiled = compile_row(p.stem, row, lookups, problems)
            if compiled is not None:
                registers.append(compiled[0])
                if compiled[1] is not None:
                    declared.append(compiled[1])
        paths[p.stem] = merge_paths(declared, problems)
    unit_file = folder / "unit_ids.csv"
    unit_ids: dict[int, int] = {}
    if unit_file.is_file():
        unit_ids = compile_unit_ids(unit_file, shown(unit_file), problems)
    else:
        problems.add(shown(unit_file), 0, R16, "missing (unit_id,instance,remark)")
    services, runs = _index(tables, problems)
    return ModbusMap(tables=frozen_map(services), by_address=frozen_map(runs), unit_ids=frozen_map(unit_ids)), paths
