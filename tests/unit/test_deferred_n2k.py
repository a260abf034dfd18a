"""``compile_mappings(defer_n2k=True)``: the n2k kind compiles at the first access of
``cmap.n2k`` (a gateway without [n2k] never imports the NMEA 2000 stack), with exactly the
problems an eager compile reports, and an eager compile (``gx-gateway check``) is unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from registers import MappingError, compile_mappings, load_default
from registers.model import DeferredMap
from tests.unit.test_rules import N2K_CASES, make_n2k


def test_deferred_n2k_compiles_on_first_access(tmp_path: Path) -> None:
    root = make_n2k(tmp_path)
    cmap = compile_mappings(root, defer_n2k=True)
    assert isinstance(cmap.n2k, DeferredMap) and not cmap.n2k.built
    (device,) = cmap.n2k["battery"]
    assert cmap.n2k.built
    assert device == compile_mappings(root).n2k["battery"][0]


def test_the_packaged_pgn_map_is_the_same_deferred() -> None:
    deferred = load_default(defer_n2k=True).n2k
    assert dict(deferred) == dict(load_default().n2k) and len(deferred) > 0


@pytest.mark.parametrize(
    ("rule", "file", "line", "change"), N2K_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(N2K_CASES)]
)
def test_deferred_n2k_reports_the_same_problems(
    tmp_path: Path, rule: str, file: str, line: int, change: dict[str, str]
) -> None:
    root = make_n2k(tmp_path, **change)
    with pytest.raises(MappingError) as eager:
        compile_mappings(root)
    cmap = compile_mappings(root, defer_n2k=True)  # the other kinds are fine: it compiles
    for _ in range(2):  # and keeps failing the same way, never half-built
        with pytest.raises(MappingError) as deferred:
            cmap.n2k.get("battery")
        assert [str(p) for p in deferred.value.problems] == [str(p) for p in eager.value.problems]
    assert any(str(p).startswith(f"{root / file}:{line}: {rule} ") for p in deferred.value.problems)


def test_problems_elsewhere_still_fail_at_once(tmp_path: Path) -> None:
    root = make_n2k(tmp_path)
    (root / "modbus" / "battery.csv").write_text("register,path\n", encoding="utf-8")
    with pytest.raises(MappingError):
        compile_mappings(root, defer_n2k=True)
