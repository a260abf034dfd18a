"""What a path means: the protocol-neutral columns of a mapping row, and one meaning per path.

Any mapping kind that declares paths (today the Modbus service files) hands the meaning
columns here; the result is ``cmap.paths``, which the write gate and every frontend share.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Final

from registers.compile.csvfile import Row, number
from registers.compile.rules import Problems, rule
from registers.derive import DeriveSyntaxError, parse_derive
from registers.model import Lookup, PathSpec
from registers.origin import Source

R11 = rule("R11", "a row names an existing lookup")
R12 = rule("R12", "a path looks like /Dc/0/Voltage; reserved blocks and only they use RESERVED")
R13 = rule("R13", "min/max are numbers, min <= max, only on numeric writable rows, within the type range")
R14 = rule("R14", "a derive expression calls a known function with paths; derived rows are read-only")
R24 = rule("R24", "a max naming a path (max=/Ac/MaxPower) names a numeric path of the same service")
R18 = rule("R18", "rows declaring the same path of a service agree on its meaning (unit, enum, range, access, derive)")

PATH_RE: Final = re.compile(r"^(/[A-Za-z0-9_]+)+$")


def path_ok(text: str) -> bool:
    return bool(PATH_RE.match(text))


def parse_meaning(
    service: str,
    row: Row,
    *,
    text: bool,
    carry: tuple[float | None, float | None],
    lookups: dict[str, Lookup],
    problems: Problems,
) -> PathSpec | None:
    """The meaning columns of a row (path, unit, lookup, min, max, access, derive), checked.
    ``carry``: the least and most value the row's encoding can carry (None: no limit)."""
    c, f, ln = row.cells, row.file, row.line
    before = len(problems)
    if not path_ok(c["path"]):
        problems.add(f, ln, R12, f"path {c['path']!r} is not like /Dc/0/Voltage")
    writable = c["access"] == "W"
    lookup = None
    if c["lookup"]:
        lookup = lookups.get(c["lookup"])
        if lookup is None:
            problems.add(f, ln, R11, f"lookup {c['lookup']!r} has no file lookups/{c['lookup']}.csv")
    bounds: dict[str, float | None] = {"min": None, "max": None}
    maximum_path = c["max"] if c["max"].startswith("/") else None
    if maximum_path is not None and not path_ok(maximum_path):
        problems.add(f, ln, R24, f"max {maximum_path!r} is not a path like /Ac/MaxPower")
    for key in bounds:
        if c[key] and not (key == "max" and maximum_path is not None):
            bounds[key] = number(c[key])
            if bounds[key] is None:
                problems.add(f, ln, R13, f"{key} {c[key]!r} is not a number")
    low, high = bounds["min"], bounds["max"]
    if c["min"] or c["max"]:
        if not writable or text:
            problems.add(f, ln, R13, "min/max apply to numeric writable (W) rows only")
        elif low is not None and high is not None and low > high:
            problems.add(f, ln, R13, f"min {low:g} is above max {high:g}")
    derivation = None
    if c["derive"]:
        try:
            derivation = parse_derive(c["derive"], path_ok)
        except DeriveSyntaxError as e:
            problems.add(f, ln, R14, str(e))
        if writable:
            problems.add(f, ln, R14, "a derived register is computed, so it must be read-only (R)")
    if len(problems) != before:
        return None
    return PathSpec(
        service=service,
        path=c["path"],
        text=text,
        unit=c["unit"],
        lookup=lookup,
        minimum=low,
        maximum=high,
        writable=writable,
        derive=derivation,
        source=Source(f, ln),
        carry_min=carry[0],
        carry_max=carry[1],
        maximum_path=maximum_path,
    )


def _meaning(s: PathSpec) -> tuple[object, ...]:
    return (s.text, s.unit, s.lookup, s.minimum, s.maximum, s.writable, s.derive, s.maximum_path)


def merge_paths(declared: Iterable[PathSpec], problems: Problems) -> dict[str, PathSpec]:
    """One PathSpec per path from every row that declares it (R18), carrying the range of the
    widest of its encodings."""
    merged: dict[str, PathSpec] = {}
    for spec in declared:
        first = merged.get(spec.path)
        if first is None:
            merged[spec.path] = spec
            continue
        if _meaning(first) != _meaning(spec):
            problems.add(
                spec.source.file,
                spec.source.line,
                R18,
                f"{spec.path} means something else at {first.source} (unit, enum, range, access or derive differ)",
            )
            continue
        low = _widest(first.carry_min, spec.carry_min, min)
        high = _widest(first.carry_max, spec.carry_max, max)
        merged[spec.path] = replace(first, carry_min=low, carry_max=high)
    for spec in merged.values():
        if spec.maximum_path is None:
            continue
        bound = merged.get(spec.maximum_path)
        if bound is None or bound.text:
            problems.add(
                spec.source.file,
                spec.source.line,
                R24,
                f"max {spec.maximum_path} is not a numeric path of this service",
            )
    return merged


def _widest(a: float | None, b: float | None, pick: Callable[[float, float], float]) -> float | None:
    if a is None or b is None:
        return None
    return float(pick(a, b))
