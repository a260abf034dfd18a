"""Compile ``mappings/`` (CSV) into a frozen CompiledMap, checking every numbered rule.

Pure and deterministic: files in, CompiledMap or MappingError (with *all* problems) out.
Shared machinery (CSV reading, the rule book) and one compiler per mapping kind:
``lookups.py`` (enums), ``modbus.py`` (the served register list, unit ids), ``paths.py``
(what each path means, shared by every kind), ``sunspec.py`` (SunSpec points -> paths) and
``devices.py`` (energy-meter models, cmap.devices).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from registers.compile.devices import compile_devices
from registers.compile.lookups import compile_lookups
from registers.compile.modbus import compile_modbus
from registers.compile.rules import RULES, MappingError, Problem, Problems
from registers.compile.sunspec import compile_sunspec
from registers.model import CompiledMap, frozen_map

__all__ = ["RULES", "MappingError", "Problem", "compile_mappings", "default_mappings_dir", "load_default"]


def compile_mappings(root: Path | str, shown_root: str | None = None) -> CompiledMap:
    """Compile a mappings folder. Raises MappingError listing every problem found."""
    root = Path(root)
    base = Path(shown_root if shown_root is not None else str(root))
    problems = Problems()

    def shown(p: Path) -> str:
        return str(base / p.relative_to(root))

    lookups = compile_lookups(root / "lookups", shown, problems)
    modbus, paths = compile_modbus(root, shown, lookups, problems)
    sunspec = compile_sunspec(root / "sunspec.csv", shown(root / "sunspec.csv"), paths, problems)
    devices = compile_devices(root / "devices", shown, paths, problems)
    if problems:
        raise MappingError(problems.sorted())
    return CompiledMap(
        paths=frozen_map({name: frozen_map(specs) for name, specs in paths.items()}),
        modbus=modbus,
        lookups=frozen_map(lookups),
        sunspec=frozen_map(sunspec),
        devices=frozen_map(dict(devices)),
    )


def default_mappings_dir() -> Path:
    """The mappings shipped with the package (installed), else the checkout's ``mappings/``."""
    packaged = Path(str(resources.files("registers"))) / "mappings"
    if (packaged / "modbus").is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "mappings"


def load_default() -> CompiledMap:
    return compile_mappings(default_mappings_dir(), shown_root="mappings")
