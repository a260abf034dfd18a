"""Inline sample dumps of meter files: ``WORDS = VALUE`` cells, checked against the decoder.

A sample cell holds the register words a real meter sent for that row (4-digit hex, wire
order, space separated) and the value it reads as: a number, a text, or ``-`` for "not
available". Decoding the words with the row's type, word order, scale and invalid values must
give that value, so a wrong word order or scale fails ``gx-gateway check`` at the row.
The samples are kept in the compiled model: the meter simulators serve them as images.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Final

from registers.compile.csvfile import Row, number
from registers.compile.rules import Problems, rule
from registers.meters import MeterField, MeterSample, words_hex
from registers.values import Scalar

R58 = rule("R58", "a meter sample cell reads WORDS = VALUE (one 4-digit hex word per register) and decodes to VALUE")

WORD_RE: Final = re.compile(r"^[0-9A-Fa-f]{4}$")
INVALID: Final = "-"


def _close(got: Scalar, want: Scalar) -> bool:
    if isinstance(got, (int, float)) and isinstance(want, (int, float)):
        return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)
    return got == want


def check_sample(field: MeterField, row: Row, column: str, problems: Problems) -> tuple[bytes, Scalar] | None:
    cell = row.cells[column]
    words, eq, value = cell.partition("=")
    tokens = words.split()
    want_text = value.strip()
    where = f"{column} {cell!r}"
    if not eq or not want_text or not all(WORD_RE.match(t) for t in tokens):
        problems.add(row.file, row.line, R58, f"{where} is not WORDS = VALUE (e.g. 08FE 0000 = 230.2)")
        return None
    if len(tokens) != field.codec.width:
        problems.add(row.file, row.line, R58, f"{where}: {field.codec.name} takes {field.codec.width} word(s)")
        return None
    data = bytes.fromhex("".join(tokens))
    want: Scalar
    if want_text == INVALID:
        want = None
    elif field.codec.form == "string":
        want = want_text
    else:
        want = number(want_text)
        if want is None:
            problems.add(row.file, row.line, R58, f"{where}: {want_text!r} is not a number or -")
            return None
    got = field.decode(data)
    if not _close(got, want):
        shown = INVALID if got is None else got
        problems.add(row.file, row.line, R58, f"{where}: {words_hex(data)} decodes to {shown}, not {want_text}")
        return None
    return data, want


def check_samples(
    pairs: Sequence[tuple[MeterField, Row]], columns: Sequence[str], problems: Problems
) -> tuple[MeterSample, ...]:
    """The file's samples (a column some row fills), each row's cell checked."""
    samples: list[MeterSample] = []
    for column in columns:
        if not any(row.cells[column] for _, row in pairs):
            continue
        words: dict[tuple[int, int], bytes] = {}
        expected: dict[str, Scalar] = {}
        for field, row in pairs:
            if not row.cells[column]:
                continue
            checked = check_sample(field, row, column, problems)
            if checked is not None:
                words[(field.function, field.address)] = checked[0]
                expected[field.path] = checked[1]
        samples.append(MeterSample(column, words, expected))
    return tuple(samples)
