"""Compiles ``lookups/<name>.csv`` (enums: ``value,label`` with integer values or ranges)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from registers.compile.csvfile import Shown, read_csv
from registers.compile.rules import Problems, rule
from registers.model import Lookup

R10 = rule("R10", "a lookup (enum) file has value,label rows with integer values or ranges, no repeats")

COLUMNS: Final = ("value", "label")
_RANGE_RE: Final = re.compile(r"^(-?\d+)(?:-(-?\d+))?$")


def compile_lookup(path: Path, shown: str, problems: Problems) -> Lookup | None:
    entries: list[tuple[int, int, str]] = []
    before = len(problems)
    for row in read_csv(path, shown, COLUMNS, COLUMNS, problems):
        value, label = row.cells["value"], row.cells["label"]
        m = _RANGE_RE.match(value)
        if not m:
            problems.add(shown, row.line, R10, f"value {value!r} is not an integer or range like 51-52")
            continue
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
        if last < first:
            problems.add(shown, row.line, R10, f"range {first}-{last} runs backwards")
            continue
        if not label:
            problems.add(shown, row.line, R10, f"value {value} has no label")
            continue
        clash = next((e for e in entries if e[0] <= last and first <= e[1]), None)
        if clash:
            problems.add(shown, row.line, R10, f"value {value} repeats {clash[0]}={clash[2]}")
            continue
        entries.append((first, last, label))
    if len(problems) != before:
        return None
    return Lookup(path.stem, tuple(sorted(entries)))


def compile_lookups(folder: Path, shown: Shown, problems: Problems) -> dict[str, Lookup]:
    lookups: dict[str, Lookup] = {}
    for p in sorted(folder.glob("*.csv")):
        lk = compile_lookup(p, shown(p), problems)
        if lk is not None:
            lookups[lk.name] = lk
    return lookups
