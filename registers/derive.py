"""Derived (computed) registers, declared in the mappings' ``derive`` column.

A derivation is a named pure function applied to other paths of the same device, e.g.
``quotient(/Yield/Power, /Pv/V)``. The functions are a fixed, documented vocabulary; which
register uses which is data. Functions without path arguments (``unix_time()``) are
*volatile*: the frontend refreshes them on a clock instead of on a change.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Final

from registers.values import Scalar

PathGetter = Callable[[str], Scalar]


def _quotient(args: tuple[Scalar, ...]) -> Scalar:
    """a / b; invalid when either is invalid or b is 0 (PV current = PV power / PV voltage)."""
    a, b = args
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
        return None
    return a / b


def _unix_time(args: tuple[Scalar, ...]) -> Scalar:
    """Seconds since the Unix epoch (system /DateAndTime, uint64)."""
    return int(time.time())


def _firmware_version(args: tuple[Scalar, ...]) -> Scalar:
    """The gateway's version as 0x00MMmmpp (major, minor, patch), one byte each."""
    return encode_version(gateway_version())


def _genset_error_summary(args: tuple[Scalar, ...]) -> Scalar:
    """The numeric code of the first active genset error.

    ``/Error/0/Id`` holds the first active error as text, ``<source>:<code>`` or a bare code.
    Absent or empty means no error (0); text without a number gives 65280 (unknown error).
    """
    (first,) = args
    if first is None or first == "":
        return 0
    m = re.search(r"(\d+)\s*$", str(first))
    return int(m.group(1)) if m else 65280


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    arity: int
    fn: Callable[[tuple[Scalar, ...]], Scalar]


FUNCTIONS: Final[Mapping[str, Function]] = {
    f.name: f
    for f in (
        Function("quotient", 2, _quotient),
        Function("unix_time", 0, _unix_time),
        Function("firmware_version", 0, _firmware_version),
        Function("genset_error_summary", 1, _genset_error_summary),
    )
}

_CALL_RE: Final = re.compile(r"^([a-z_][a-z0-9_]*)\((.*)\)$")


@dataclass(frozen=True, slots=True)
class Derivation:
    """A parsed ``derive`` expression: function and the paths it reads."""

    function: Function
    paths: tuple[str, ...]

    @property
    def volatile(self) -> bool:
        return not self.paths

    def evaluate(self, get: PathGetter) -> Scalar:
        return self.function.fn(tuple(get(p) for p in self.paths))

    def __str__(self) -> str:
        return f"{self.function.name}({', '.join(self.paths)})"


class DeriveSyntaxError(ValueError):
    pass


def parse_derive(text: str, path_ok: Callable[[str], bool]) -> Derivation:
    m = _CALL_RE.match(text.strip())
    if not m:
        raise DeriveSyntaxError(f"derive {text!r} is not of the form function(/Path, ...)")
    name, argtext = m.group(1), m.group(2).strip()
    fn = FUNCTIONS.get(name)
    if fn is None:
        raise DeriveSyntaxError(f"unknown derive function {name!r} (known: {', '.join(sorted(FUNCTIONS))})")
    args = tuple(a.strip() for a in argtext.split(",")) if argtext else ()
    if len(args) != fn.arity:
        raise DeriveSyntaxError(f"{name} takes {fn.arity} path argument(s), got {len(args)}")
    for a in args:
        if not path_ok(a):
            raise DeriveSyntaxError(f"derive argument {a!r} is not a path like /Dc/0/Voltage")
    return Derivation(fn, args)


def gateway_version() -> str:
    try:
        return metadata.version("gx-gateway")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def encode_version(text: str) -> int:
    nums = [int(x) for x in re.findall(r"\d+", text)[:3]] + [0, 0, 0]
    major, minor, patch = (min(n, 255) for n in nums[:3])
    return (major << 16) | (minor << 8) | patch
