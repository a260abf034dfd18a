"""Shared test helpers: interop gating, paths, test data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAPPINGS = ROOT / "mappings"
DATA = ROOT / "tests" / "data"  # reference facts carried in the project (tests/data/README.md)
SHARED = ROOT.parent / "shared"
REFERENCE = SHARED / "reference"


def interop_required() -> bool:
    return os.environ.get("GXGW_REQUIRE_INTEROP") == "1"


def need_interop(available: bool, reason: str) -> None:
    """Skip (locally) or fail (GXGW_REQUIRE_INTEROP=1) when an interop peer is missing."""
    if available:
        return
    if interop_required():
        pytest.fail(f"interop peer missing and GXGW_REQUIRE_INTEROP=1: {reason}")
    pytest.skip(reason)


def need_reference(rel: str) -> Path:
    path = REFERENCE / rel
    need_interop(path.is_file(), f"shared reference data not found at {path} (clone ../shared beside the checkout)")
    return path


def reference_data(rel: str) -> Path:
    """A reference file carried in tests/data (always present: a fresh clone runs every test)."""
    path = DATA / rel
    assert path.is_file(), f"{path} is missing from the checkout"
    return path


def need_tool(name: str) -> str:
    exe = shutil.which(name)
    need_interop(exe is not None, f"{name} not installed (Debian: apt-get install {name})")
    assert exe is not None
    return exe
