"""docs/modbus.md keeps its promise that every line is a test.

Test names are collected from the test files with ast (nothing is imported or run), so a
renamed or deleted test fails here with the doc line that names it.
"""

from __future__ import annotations

import ast
import re
from functools import cache

from tests.helpers import ROOT

DOC = ROOT / "docs" / "modbus.md"
BEHAVIOUR_TESTS = "tests/protocol/test_modbus_behaviour.py"
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


@cache
def collected_names(rel: str) -> frozenset[str]:
    """Names pytest would collect from a file: module-level test functions and Test* methods."""
    tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"), filename=rel)
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names.update(
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test")
            )
    return frozenset(names)


def table_rows(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the body rows of every Markdown table (header and rule left out)."""
    rows: list[tuple[int, str]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("|") or re.fullmatch(r"\|(\s*-+\s*\|)+", line):
            continue
        is_header = i + 1 < len(lines) and re.fullmatch(r"\|(\s*-+\s*\|)+", lines[i + 1]) is not None
        if not is_header:
            rows.append((i + 1, line))
    return rows


def test_every_named_test_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    refs = [(n, m.group(1), m.group(2)) for n, line in enumerate(text.splitlines(), 1) for m in TEST_REF.finditer(line)]
    assert len(refs) >= 30, "docs/modbus.md names fewer tests than expected: did the format change?"
    missing = [
        f"docs/modbus.md:{n}: {rel}::{name}"
        for n, rel, name in refs
        if not (ROOT / rel).is_file() or name not in collected_names(rel)
    ]
    assert not missing, "named tests that do not exist:\n" + "\n".join(missing)


def test_every_table_row_names_a_test() -> None:
    rows = table_rows(DOC.read_text(encoding="utf-8"))
    assert rows
    # The exception-code legend is prose; every table row is a promise with its proof.
    unproved = [f"docs/modbus.md:{n}: {line}" for n, line in rows if not TEST_REF.search(line)]
    assert not unproved, "table rows without a test:\n" + "\n".join(unproved)


def test_every_behaviour_test_is_documented() -> None:
    """The converse: a new behaviour test is a promise the doc should state."""
    named = set(TEST_REF.findall(DOC.read_text(encoding="utf-8")))
    undocumented = sorted(name for name in collected_names(BEHAVIOUR_TESTS) if (BEHAVIOUR_TESTS, name) not in named)
    assert not undocumented, f"tests in {BEHAVIOUR_TESTS} not named in docs/modbus.md: {undocumented}"


def test_the_checks_catch_a_bad_doc() -> None:
    rows = table_rows("| a | b |\n|---|---|\n| x | `tests/unit/test_docs_modbus.py::test_nope` |\n| y | none |\n")
    assert [n for n, _ in rows] == [3, 4]
    assert "test_every_named_test_exists" in collected_names("tests/unit/test_docs_modbus.py")
    assert "test_nope" not in collected_names("tests/unit/test_docs_modbus.py")


def test_no_pointers_to_the_team_folder() -> None:
    """Users never see the team's shared folder: the project points at docs/modbus.md instead."""
    needle = "shared" + "/docs"  # spelled in two parts so this file does not match itself
    files = [
        ROOT / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(p for top in ("gateway", "registers", "tests") for p in (ROOT / top).rglob("*.py")),
    ]
    hits = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in files
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if needle in line
    ]
    assert not hits, f"pointers to {needle}: {hits}"
