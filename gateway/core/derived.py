"""Implementations of the derive functions the register map names (``registers/derive.py``).

They live here, not in the compiler, because they read the world: the wall clock and the
installed version. Every name the compiler accepts must have an implementation (a test
checks), so a map that compiles never meets an unknown function at run time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Final

from registers.derive import Derivation
from registers.values import Scalar

PathGetter = Callable[[str], Scalar]
Implementation = Callable[[tuple[Scalar, ...]], Scalar]


def _quotient(args: tuple[Scalar, ...]) -> Scalar:
    a, b = args
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
        return None
    return a / b


def _unix_time(args: tuple[Scalar, ...]) -> Scalar:
    return int(time.time())


def _firmware_version(args: tuple[Scalar, ...]) -> Scalar:
    return encode_version(gateway_version())


def _genset_error_summary(args: tuple[Scalar, ...]) -> Scalar:
    """``/Error/0/Id`` holds the first active error as text, ``<source>:<code>`` or a bare
    code. Absent or empty means no error (0); text without a number gives 65280 (unknown)."""
    (first,) = args
    if first is None or first == "":
        return 0
    m = re.search(r"(\d+)\s*$", str(first))
    return int(m.group(1)) if m else 65280


IMPLEMENTATIONS: Final[Mapping[str, Implementation]] = {
    "quotient": _quotient,
    "unix_time": _unix_time,
    "firmware_version": _firmware_version,
    "genset_error_summary": _genset_error_summary,
}


def evaluate(derivation: Derivation, get: PathGetter) -> Scalar:
    return IMPLEMENTATIONS[derivation.function](tuple(get(p) for p in derivation.paths))


def gateway_version() -> str:
    try:
        return metadata.version("gx-gateway")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def encode_version(text: str) -> int:
    nums = [int(x) for x in re.findall(r"\d+", text)[:3]] + [0, 0, 0]
    major, minor, patch = (min(n, 255) for n in nums[:3])
    return (major << 16) | (minor << 8) | patch
