"""Import directions between the layers, checked on the source text (ast), not by importing.

- ``registers`` (the map compiler) is pure: nothing under registers/ imports ``gateway``.
- Frontends (``gateway.modbus``, ``gateway.mfd``, ``gateway.n2k``) talk to sources only
  through the Store: they never import ``gateway.sources``.
- Sources (``gateway.sources``, the drivers) never import a frontend.

Packages that do not exist yet (gateway/sources, gateway/n2k) simply have nothing to check;
the rules hold as soon as they appear. ``test_the_checker_catches_each_rule`` proves the
checker on a small tree with every kind of violation.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import ROOT

FRONTENDS = ("gateway.modbus", "gateway.mfd", "gateway.n2k")
SOURCES = "gateway.sources"


def modules(root: Path) -> Iterator[tuple[str, Path]]:
    """(dotted module name, file) for every .py file of the registers and gateway packages."""
    for top in ("registers", "gateway"):
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def imported(module: str, path: Path) -> set[str]:
    """Every module name the file may import, relative imports resolved.

    ``from a.b import c`` yields both ``a.b`` and ``a.b.c`` (c may be a submodule).
    """
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, node.module] if node.module else base_parts)
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(root: Path) -> list[str]:
    found: list[str] = []
    for module, path in modules(root):
        where = path.relative_to(root).as_posix()
        for name in sorted(imported(module, path)):
            if within(module, "registers") and within(name, "gateway"):
                found.append(f"{where}: registers must not import gateway ({name})")
            if any(within(module, f) for f in FRONTENDS) and within(name, SOURCES):
                found.append(f"{where}: a frontend must not import the sources ({name})")
            if within(module, SOURCES) and any(within(name, f) for f in FRONTENDS):
                found.append(f"{where}: a source must not import a frontend ({name})")
    return found


def test_the_project_keeps_its_import_directions() -> None:
    assert any(m == "gateway.modbus.server" for m, _ in modules(ROOT))  # the walk sees the tree
    assert violations(ROOT) == []


def test_the_checker_catches_each_rule(tmp_path: Path) -> None:
    files = {
        "registers/__init__.py": "",
        "registers/ok.py": "from registers.values import Scalar\nimport json\n",
        "registers/bad.py": "import gateway.store\n",
        "registers/sub/__init__.py": "from gateway import store\n",
        "gateway/__init__.py": "",
        "gateway/store.py": "from registers import load_default\n",
        "gateway/modbus/__init__.py": "",
        "gateway/modbus/server.py": "from gateway.store import Store\nfrom ..sources import fronius\n",
        "gateway/n2k/__init__.py": "",
        "gateway/n2k/pgn.py": "from gateway import sources\n",
        "gateway/sources/__init__.py": "",
        "gateway/sources/fronius.py": "from gateway.store import Store\nfrom . import base\n",
        "gateway/sources/victron.py": "import gateway.mfd.api\n",
        "gateway/sources/meter.py": "from ..modbus.pdu import exception\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    assert violations(tmp_path) == [
        "registers/bad.py: registers must not import gateway (gateway.store)",
        "registers/sub/__init__.py: registers must not import gateway (gateway)",
        "registers/sub/__init__.py: registers must not import gateway (gateway.store)",
        "gateway/modbus/server.py: a frontend must not import the sources (gateway.sources)",
        "gateway/modbus/server.py: a frontend must not import the sources (gateway.sources.fronius)",
        "gateway/n2k/pgn.py: a frontend must not import the sources (gateway.sources)",
        "gateway/sources/meter.py: a source must not import a frontend (gateway.modbus.pdu)",
        "gateway/sources/meter.py: a source must not import a frontend (gateway.modbus.pdu.exception)",
        "gateway/sources/victron.py: a source must not import a frontend (gateway.mfd.api)",
    ]
