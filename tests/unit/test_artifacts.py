"""Committed generated artifacts match what the code generates; the wheel carries the data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from registers import load_default
from registers.docs import render_markdown
from registers.docs_n2k import render_pgns_markdown
from tests.helpers import MAPPINGS, ROOT


def test_register_docs_are_current() -> None:
    committed = (ROOT / "docs" / "registers.md").read_text(encoding="utf-8")
    assert committed == render_markdown(load_default()), "docs/registers.md is stale: run `make docs` and commit"


def test_pgn_docs_are_current() -> None:
    committed = (ROOT / "docs" / "pgns.md").read_text(encoding="utf-8")
    assert committed == render_pgns_markdown(load_default()), "docs/pgns.md is stale: run `make docs` and commit"


def test_wheel_carries_mappings_and_every_package(tmp_path: Path) -> None:
    """A plain (non-editable) install must carry everything read at run time."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("gx_gateway-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for csv_file in MAPPINGS.rglob("*.csv"):
        assert f"registers/mappings/{csv_file.relative_to(MAPPINGS)}" in names, csv_file
    assert "gateway/demo.toml" in names  # `gx-gateway demo` reads it at run time
    for web_file in [ROOT / "gateway/frontends/http/openapi.json", *(ROOT / "gateway/frontends/http/static").iterdir()]:
        assert str(web_file.relative_to(ROOT)) in names, f"{web_file} missing from the wheel (package data)"
    for pkg in ("gateway", "registers"):
        for init in (ROOT / pkg).rglob("*.py"):
            assert str(init.relative_to(ROOT)) in names, f"{init} missing from the wheel (pyproject packages list)"
    # Installed from the wheel alone (no checkout on the path), the default map compiles.
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "import registers, sys; m = registers.load_default(); "
        "assert 'site' in registers.default_mappings_dir().parts, registers.default_mappings_dir(); "
        "import gateway.config as c; assert 'site' in c.__file__, c.__file__; d = c.load_demo_config(); "
        "import gateway.frontends.http.api as a; assert 'site' in a.__file__; assert a.openapi_document()['openapi']; "
        "assert a.PACKAGE.joinpath('static', 'index.html').read_bytes().startswith(b'<!DOCTYPE html>'); "
        "print(len(m.modbus.tables), m.modbus.register_count, len(d.devices), len(m.sunspec), len(m.devices))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {probe}"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    # the map (with mappings/sunspec.csv: 12 models, mappings/devices: 7 meter files, and
    # mappings/vedirect with its sample captures, mappings/ble) compiles and demo.toml loads from the install
    assert out.split() == ["33", "1003", "19", "12", "9"]
