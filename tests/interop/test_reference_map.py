"""Every row of the GX register list against `gx-gateway registers`.

The list is carried in tests/data/victron/ (origin in tests/data/README.md), so these
comparisons run on any clone. Differences are allowed only where mappings/deviations.csv lists
them, and every listed deviation must still be a real difference (no stale entries). The one
interop check here: when the team's reference folder (../shared/reference) is beside the
checkout, the copies in tests/data are byte-identical to it.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys

import pytest

from tests.helpers import DATA, MAPPINGS, need_reference, reference_data

EXPORT_HEADER = ["service", "path", "register", "type", "scale", "access", "unit"]


def _scale(text: str) -> float:
    return 1.0 if text in ("", "0") else float(text)


def _enum(text: str) -> dict[int, str]:
    """Parse 0=Off;1=On (ranges 51-52=X) into value -> label, the first label winning."""
    out: dict[int, str] = {}
    for part in text.split(";"):
        value, _, label = part.strip().partition("=")
        m = re.match(r"^(-?\d+)(?:-(-?\d+))?$", value.strip())
        assert m, part
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else first
        for v in range(first, last + 1):
            out.setdefault(v, label.strip())
    return out


def _width(t: str) -> int:
    m = re.match(r"^(\w+)(?:\[(\d+)\])?$", t)
    assert m, t
    if m.group(2):
        return int(m.group(2))
    return {"uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "uint64": 4}[m.group(1)]


@pytest.fixture(scope="module")
def exported() -> dict[tuple[str, int], dict[str, str]]:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "registers", "--format", "csv"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == EXPORT_HEADER
    return {(r[0], int(r[2])): dict(zip(EXPORT_HEADER, r, strict=True)) for r in rows[1:]}


@pytest.fixture(scope="module")
def deviations() -> dict[tuple[str, int, str], dict[str, str]]:
    with open(MAPPINGS / "deviations.csv", encoding="utf-8") as f:
        return {(r["service"], int(r["register"]), r["field"]): r for r in csv.DictReader(f)}


def test_every_reference_row_matches(exported: dict, deviations: dict) -> None:
    path = reference_data("victron/attributes.csv")
    with open(path, encoding="utf-8") as f:
        reference = list(csv.reader(f))
    assert len(reference) == 1003
    used: set[tuple[str, int, str]] = set()
    mismatches: list[str] = []

    def differ(service: str, reg: int, field: str, ref: str, ours: str) -> None:
        key = (service.split(".")[-1], reg, field)
        if key in deviations:
            dev = deviations[key]
            if field == "enum":  # an enum deviation names the differing entries only
                assert dev["reference"] in ref and dev["ours"] in ours, f"deviations.csv {key} out of date"
            else:
                assert (dev["reference"], dev["ours"]) == (ref, ours), f"deviations.csv {key} out of date"
            used.add(key)
        else:
            mismatches.append(f"{service} {reg} {field}: reference {ref!r}, ours {ours!r}")

    for service, p, _dbus, unit, reg_text, rtype, scale, access in reference:
        reg = int(reg_text)
        ours = exported.get((service, reg))
        if ours is None:
            mismatches.append(f"{service} {reg} {p}: missing from the export")
            continue
        assert ours["path"] == p, (service, reg)
        assert ours["access"] == access, (service, reg)
        assert _scale(ours["scale"]) == _scale(scale), (service, reg)
        if rtype.startswith("INTERNAL"):
            assert _width(ours["type"]) == _width(rtype), (service, reg)
        if ours["type"] != rtype:
            differ(service, reg, "type", rtype, ours["type"])
        if "=" in unit:
            if _enum(unit) != _enum(ours["unit"]):
                differ(service, reg, "enum", unit, ours["unit"])
            elif unit.replace("; ", ";") != ours["unit"]:
                # Same meaning, other spelling: only the overlap fix may do this.
                differ(service, reg, "enum", unit, ours["unit"])
        elif unit != ours["unit"]:
            differ(service, reg, "unit", unit, ours["unit"])
    assert not mismatches, "\n".join(mismatches)
    assert len(exported) == len(reference), "the export has rows the reference does not"
    stale = set(deviations) - used
    assert not stale, f"deviations.csv lists differences that no longer exist: {sorted(stale)}"


def test_all_33_services_present(exported: dict) -> None:
    path = reference_data("victron/attributes.csv")
    with open(path, encoding="utf-8") as f:
        services = {r[0] for r in csv.reader(f)}
    assert len(services) == 33
    assert {s for s, _ in exported} == services


def test_unit_ids_match_reference() -> None:
    path = reference_data("victron/unitid2di.csv")
    from registers import load_default

    cmap = load_default()
    with open(path, encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    expected = {int(r[0]): int(r[1]) for r in rows}
    assert dict(cmap.modbus.unit_ids) == expected
    assert cmap.modbus.instance_for_unit(100) == 0
    assert cmap.modbus.instance_for_unit(227) == 276
    assert cmap.modbus.instance_for_unit(20) == 20


@pytest.mark.interop
def test_copies_match_the_shared_reference() -> None:
    copies = sorted(p for p in DATA.rglob("*.csv"))
    assert {p.relative_to(DATA).as_posix() for p in copies} >= {"victron/attributes.csv", "victron/unitid2di.csv"}
    for copy in copies:
        rel = copy.relative_to(DATA).as_posix()
        original = need_reference(rel)
        assert copy.read_bytes() == original.read_bytes(), f"tests/data/{rel} differs from {original}"
