"""Every writable setting has a range (issue 11, finding 7): no 6553.4 V charge voltage.

Ranges come from Venus OS's own services (tests/data/victron/settings-ranges.csv, with
sources). Where that has none, or the register cannot carry it, ours is chosen here and
documented in docs/RELIABILITY.md; a row without either fails.
"""

from __future__ import annotations

import csv

import pytest

from gateway.core.settings import DEFAULTS
from registers import CompiledMap
from tests.helpers import ROOT

# Our range where Venus OS gives none, or where the register cannot carry Venus OS's range.
CHOSEN = {
    "/Settings/CGwacs/AcPowerSetPoint": "register 2700 (int16) carries +-32767 W; hub4control clamps to +-32700 W",
    "/Settings/CGwacs/MaxFeedInPower": "no public range: -1 (no limit) .. 300000 W, the GUI's spin box",
    "/Settings/CGwacs/AcExportLimit": "no public range: -1 (disabled) .. 5000 A, the GUI's spin box",
    "/Settings/CGwacs/AcInputLimit": "no public range: -1 (disabled) .. 5000 A, the GUI's spin box",
    "/Settings/DynamicEss/FullChargeDuration": "-1 does not fit uint16 register 5421: 0..12",
    "/Settings/DynamicEss/FullChargeInterval": "-1 does not fit uint16 register 5422: 0..99",
    "/Settings/DynamicEss/Schedule/0/Duration": "no range in Venus OS: 0..65534 s, what uint16 5425 carries",
    "/Settings/DynamicEss/Schedule/0/Start": "no range in Venus OS: 0..2147483646, what int32 5428 carries",
}


def reference() -> dict[str, tuple[float, float]]:
    with open(ROOT / "tests" / "data" / "victron" / "settings-ranges.csv", encoding="utf-8") as f:
        return {r["path"]: (float(r["min"]), float(r["max"])) for r in csv.DictReader(f) if r["min"] and r["max"]}


def test_every_writable_setting_has_a_range(cmap: CompiledMap) -> None:
    ref = reference()
    missing, outside = [], []
    for path, spec in sorted(cmap.paths["settings"].items()):
        if not spec.writable or spec.text or spec.lookup is not None:
            continue  # text has no range; an enum's range is its lookup
        if spec.minimum is None or spec.maximum is None:
            missing.append(f"{spec.source}: {path}")
            continue
        if path in CHOSEN:
            continue
        if path not in ref:
            missing.append(f"{spec.source}: {path} has a range but no source (add it to CHOSEN and the docs)")
        elif (spec.minimum, spec.maximum) != ref[path]:
            outside.append(f"{path}: ours {spec.minimum:g}..{spec.maximum:g}, Venus OS {ref[path]}")
    assert not missing, missing
    assert not outside, outside


def test_chosen_ranges_are_documented() -> None:
    text = (ROOT / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")
    for path in CHOSEN:
        assert f"`{path}`" in text, path


def test_defaults_lie_in_their_ranges(cmap: CompiledMap) -> None:
    for path, value in DEFAULTS.items():
        spec = cmap.paths["settings"][path]
        if spec.writable:
            assert spec.refuse(value) is None, (path, value)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/Settings/SystemSetup/MaxChargeVoltage", 6553.4),
        ("/Settings/Pump0/StartValue", 500),
        ("/Settings/SystemSetup/MaxChargeCurrent", -5),
    ],
)
def test_the_issue_examples_are_refused(cmap: CompiledMap, path: str, value: float) -> None:
    assert cmap.paths["settings"][path].refuse(value) is not None
