"""Reading mapping CSV files: rows with physical line numbers, and the cells' small parsers."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from registers.compile.rules import Problems, rule

R01 = rule("R01", "a mapping file must be readable UTF-8 CSV")
R02 = rule("R02", "the header names only known columns and has every required one")


Shown = Callable[[Path], str]  # a file's name as messages show it (relative to the mappings)


@dataclass(frozen=True, slots=True)
class Row:
    file: str  # as shown in messages
    line: int
    cells: dict[str, str]


def read_csv(
    path: Path, shown: str, columns: tuple[str, ...], required: tuple[str, ...], problems: Problems
) -> Iterator[Row]:
    """Rows of a CSV file (header = line 1; blank rows skipped); R01/R02 on failure."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        problems.add(shown, 0, R01, f"cannot read: {e}")
        return
    reader = csv.reader(text.splitlines())
    try:
        header = next(reader)
    except StopIteration:
        problems.add(shown, 1, R02, f"empty file; expected header {','.join(columns)}")
        return
    except csv.Error as e:
        problems.add(shown, 1, R01, f"CSV syntax: {e}")
        return
    header = [h.strip() for h in header]
    unknown = [h for h in header if h not in columns]
    missing = [c for c in required if c not in header]
    if unknown:
        problems.add(shown, 1, R02, f"unknown column(s) {', '.join(unknown)} (known: {', '.join(columns)})")
    if missing:
        problems.add(shown, 1, R02, f"missing column(s) {', '.join(missing)}")
    if unknown or missing:
        return
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                problems.add(shown, line, R01, f"{len(cells)} cells but the header has {len(header)}")
                continue
            row = dict.fromkeys(columns, "")
            row.update({h: c.strip() for h, c in zip(header, cells, strict=False)})
            yield Row(shown, line, row)
    except csv.Error as e:
        problems.add(shown, reader.line_num, R01, f"CSV syntax: {e}")


def number(text: str) -> float | None:
    """A finite number, or None."""
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None
