"""The rooms of the tree and the directions between them, checked on the source text (ast).

Every ``import`` and ``from ... import`` counts: at module level, inside functions and under
``if TYPE_CHECKING:``, since a type-only import is a dependency all the same.

- No import cycle between modules (Tarjan's strongly connected components over the graph).
- Each room imports only the rooms below it (``ALLOWED``); frontends never import each other.
- At most 8 loose modules at ``gateway/``'s top; no two modules share a file name.
``test_the_checker_catches_each_rule`` proves the checker on a small tree with every violation.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import ROOT

# room -> the rooms it may import (besides itself). "frontends.*" stands for each frontend.
ALLOWED: dict[str, frozenset[str]] = {
    "registers": frozenset(),
    "gateway.core": frozenset({"registers"}),
    "gateway.transports": frozenset({"registers", "gateway.core"}),
    "gateway.control": frozenset({"registers", "gateway.core"}),
    "gateway.sim": frozenset({"registers", "gateway.core", "gateway.transports"}),
    "gateway.sources": frozenset({"registers", "gateway.core", "gateway.transports", "gateway.sim"}),
    "gateway.frontends": frozenset({"registers", "gateway.core", "gateway.transports"}),
    "gateway.ops": frozenset(
        {"registers", "gateway.core", "gateway.transports", "gateway.frontends", "gateway.sources", "gateway.control"}
    ),
}
TOP_LEVEL = frozenset({"gateway"})  # the composition root (app, config, guards) may import any room but the CLI
MAX_LOOSE = 8


def modules(root: Path) -> Iterator[tuple[str, Path]]:
    """(dotted module name, file) for every .py file of the registers and gateway packages."""
    for top in ("registers", "gateway"):
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def imported(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules the file imports, relative imports resolved; ``from a import b``
    means module ``a.b`` when that is a module, else ``a``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, node.module] if node.module else parts)
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                names.add(sub if sub in known else base)
    found = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return found


def graph(root: Path) -> dict[str, set[str]]:
    files = dict(modules(root))
    known = set(files)
    return {m: imported(m, p, known) for m, p in files.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def room_of(module: str) -> str:
    """The room a module lives in: ``gateway.frontends.modbus`` for its modules, ``gateway``
    for the loose top-level ones, ``gateway.cli`` for the commands."""
    parts = module.split(".")
    if parts[0] == "registers":
        return "registers"
    if len(parts) == 1 or (len(parts) == 2 and parts[1] not in ROOMS):
        return "gateway"
    if parts[1] == "frontends" and len(parts) > 2:
        return ".".join(parts[:3])
    return ".".join(parts[:2])


ROOMS = frozenset({"core", "transports", "control", "sim", "sources", "frontends", "ops", "cli"})


def direction_violations(edges: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(edges.items()):
        here = room_of(module)
        for target in sorted(targets):
            there = room_of(target)
            if there == here:
                continue
            if here == "gateway.cli":
                continue  # the commands may use anything
            if here in TOP_LEVEL:
                if there == "gateway.cli":
                    found.append(f"{module}: the composition root must not import the CLI ({target})")
                continue
            rule = "gateway.frontends" if here.startswith("gateway.frontends.") else here
            goal = "gateway.frontends" if there.startswith("gateway.frontends.") else there
            if rule == "gateway.frontends" and goal == "gateway.frontends":
                found.append(f"{module}: a frontend must not import another frontend ({target})")
            elif goal not in ALLOWED.get(rule, frozenset()) and goal != rule:
                found.append(f"{module}: {rule} must not import {goal} ({target})")
    return found


def loose_modules(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "gateway").glob("*.py") if p.name != "__init__.py")


def shared_file_names(root: Path) -> dict[str, list[str]]:
    by_name: dict[str, list[str]] = {}
    for _module, path in modules(root):
        if path.name not in ("__init__.py", "__main__.py"):
            by_name.setdefault(path.name, []).append(path.relative_to(root).as_posix())
    return {name: paths for name, paths in sorted(by_name.items()) if len(paths) > 1}


def test_no_import_cycles() -> None:
    edges = graph(ROOT)
    assert "gateway.frontends.modbus.server" in edges  # the walk sees the tree
    assert cycles(edges) == []


def test_rooms_import_only_the_rooms_below_them() -> None:
    assert direction_violations(graph(ROOT)) == []


def test_few_loose_modules_and_no_shared_file_names() -> None:
    assert len(loose_modules(ROOT)) <= MAX_LOOSE, loose_modules(ROOT)
    assert shared_file_names(ROOT) == {}


def test_the_checker_catches_each_rule(tmp_path: Path) -> None:
    files = {
        "registers/__init__.py": "",
        "registers/model.py": "from registers import origin\n",
        "registers/origin.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from registers.model import X\n",
        "registers/bad.py": "import gateway.core.store\n",
        "gateway/__init__.py": "",
        "gateway/app.py": "from gateway.cli import main\n",
        "gateway/cli/__init__.py": "",
        "gateway/cli/main.py": "from gateway import app\n",
        "gateway/core/__init__.py": "",
        "gateway/core/store.py": "def f():\n    from gateway.sources import drivers\n",
        "gateway/core/keys.py": "",
        "gateway/frontends/__init__.py": "",
        "gateway/frontends/modbus/__init__.py": "",
        "gateway/frontends/modbus/server.py": "from ...core.store import Store\nfrom ..http import api\n",
        "gateway/frontends/http/__init__.py": "",
        "gateway/frontends/http/api.py": "from gateway.sources.drivers import DRIVERS\n",
        "gateway/sources/__init__.py": "",
        "gateway/sources/drivers.py": "from gateway.frontends.modbus import server\n",
        "gateway/sources/keys.py": "",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    edges = graph(tmp_path)
    assert cycles(edges) == [
        ["gateway.app", "gateway.cli.main"],
        [
            "gateway.core.store",
            "gateway.frontends.http.api",
            "gateway.frontends.modbus.server",
            "gateway.sources.drivers",
        ],
        ["registers.model", "registers.origin"],
    ]
    assert direction_violations(edges) == [
        "gateway.app: the composition root must not import the CLI (gateway.cli.main)",
        "gateway.core.store: gateway.core must not import gateway.sources (gateway.sources.drivers)",
        "gateway.frontends.http.api: gateway.frontends must not import gateway.sources (gateway.sources.drivers)",
        "gateway.frontends.modbus.server: a frontend must not import another frontend (gateway.frontends.http.api)",
        "gateway.sources.drivers: gateway.sources must not import gateway.frontends (gateway.frontends.modbus.server)",
        "registers.bad: registers must not import gateway.core (gateway.core.store)",
    ]
    assert shared_file_names(tmp_path) == {"keys.py": ["gateway/core/keys.py", "gateway/sources/keys.py"]}
    assert loose_modules(tmp_path) == ["app.py"]
