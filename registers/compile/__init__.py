"""Compile ``mappings/`` (CSV) into a frozen CompiledMap, checking every numbered rule.

Pure and deterministic: files in, CompiledMap or MappingError (with *all* problems) out.
Shared machinery (CSV reading, the rule book) and one compiler per mapping kind:
``lookups.py`` (enums), ``modbus.py`` (the served register list, unit ids), ``paths.py``
(what each path means, shared by every kind), ``sunspec.py`` (SunSpec points -> paths),
``devices.py`` (energy-meter models, cmap.devices), ``vedirect_fields.py`` (VE.Direct products
and fields, ``cmap.devices["vedirect"]``), ``ble_fields.py`` (Bluetooth decoders' values,
``cmap.devices["ble"]``) and ``n2k.py`` (NMEA 2000 PGN field specs,
with ``n2k_samples.py`` checking each mapping's samples through the nmea2000 decoder).

The n2k kind needs canboat's database, i.e. the ``nmea2000`` package and python-can (about
20 MB resident); ``defer_n2k=True`` compiles it on first access of ``cmap.n2k`` instead, for
a gateway without ``[n2k]`` that never touches it. ``gx-gateway check`` compiles it at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from registers.compile.ble_fields import compile_ble
from registers.compile.csvfile import Shown
from registers.compile.devices import compile_devices
from registers.compile.lookups import compile_lookups
from registers.compile.modbus import compile_modbus
from registers.compile.n2k import compile_n2k
from registers.compile.n2k_samples import check_samples
from registers.compile.rules import RULES, MappingError, Problem, Problems
from registers.compile.sunspec_points import compile_sunspec
from registers.compile.vedirect_fields import compile_vedirect
from registers.model import CompiledMap, DeferredMap, PathSpec, frozen_map
from registers.pgn_specs import N2kDeviceSpec

N2kMap = Mapping[str, tuple[N2kDeviceSpec, ...]]

__all__ = ["RULES", "MappingError", "Problem", "compile_mappings", "default_mappings_dir", "load_default"]


def compile_mappings(root: Path | str, shown_root: str | None = None, *, defer_n2k: bool = False) -> CompiledMap:
    """Compile a mappings folder. Raises MappingError listing every problem found; with
    ``defer_n2k``, the n2k kind's problems are raised at the first access of ``cmap.n2k``."""
    root = Path(root)
    base = Path(shown_root if shown_root is not None else str(root))
    problems = Problems()

    def shown(p: Path) -> str:
        return str(base / p.relative_to(root))

    lookups = compile_lookups(root / "lookups", shown, problems)
    modbus, paths = compile_modbus(root, shown, lookups, problems)
    sunspec = compile_sunspec(root / "sunspec.csv", shown(root / "sunspec.csv"), paths, problems)
    devices: dict[str, object] = dict(compile_devices(root / "devices", shown, paths, problems))
    vedirect = compile_vedirect(root / "vedirect", shown, paths, problems)
    if vedirect is not None:
        devices["vedirect"] = vedirect
    ble = compile_ble(root / "ble", shown, paths, problems)
    if ble is not None:
        devices["ble"] = ble
    n2k: N2kMap = (
        DeferredMap(lambda: _n2k_alone(root, shown, paths)) if defer_n2k else _n2k(root, shown, paths, problems)
    )
    if problems:
        raise MappingError(problems.sorted())
    return CompiledMap(
        paths=frozen_map({name: frozen_map(specs) for name, specs in paths.items()}),
        modbus=modbus,
        lookups=frozen_map(lookups),
        sunspec=frozen_map(sunspec),
        devices=frozen_map(devices),
        n2k=n2k,
    )


def _n2k(root: Path, shown: Shown, paths: dict[str, dict[str, PathSpec]], problems: Problems) -> N2kMap:
    """The n2k kind; its samples are checked only when everything compiled cleanly so far."""
    compiled = compile_n2k(root, shown, paths, problems)
    if not problems:
        check_samples(root, shown, compiled, problems)
    return frozen_map(compiled)


def _n2k_alone(root: Path, shown: Shown, paths: dict[str, dict[str, PathSpec]]) -> N2kMap:
    """The deferred n2k kind (everything else compiled cleanly): the same problems, in the same
    words, as ``compile_mappings`` reports at once without ``defer_n2k``."""
    problems = Problems()
    n2k = _n2k(root, shown, paths, problems)
    if problems:
        raise MappingError(problems.sorted())
    return n2k


def default_mappings_dir() -> Path:
    """The mappings shipped with the package (installed), else the checkout's ``mappings/``."""
    packaged = Path(str(resources.files("registers"))) / "mappings"
    if (packaged / "modbus").is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "mappings"


def load_default(*, defer_n2k: bool = False) -> CompiledMap:
    return compile_mappings(default_mappings_dir(), shown_root="mappings", defer_n2k=defer_n2k)
