"""Sources and frontends meet only in the Store: neither imports the other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

SOURCES = ROOT / "gateway" / "sources"
FRONTENDS = (ROOT / "gateway" / "modbus", ROOT / "gateway" / "mfd", ROOT / "gateway" / "n2k")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize("path", sorted(SOURCES.glob("*.py")), ids=lambda p: p.name)
def test_sources_do_not_import_frontends(path: Path) -> None:
    bad = {m for m in imported(path) if any(_under(m, f"gateway.{f}") for f in ("modbus", "mfd", "n2k"))}
    assert not bad, f"{path.name} imports a frontend: {bad}"


@pytest.mark.parametrize("path", sorted(p for d in FRONTENDS for p in d.glob("*.py")), ids=lambda p: p.name)
def test_frontends_do_not_import_sources(path: Path) -> None:
    bad = {m for m in imported(path) if _under(m, "gateway.sources")}
    assert not bad, f"{path.name} imports a source: {bad}"
