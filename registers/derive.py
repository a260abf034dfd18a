"""Derived (computed) paths, declared in the mappings' ``derive`` column.

A derivation names a function of a fixed, documented vocabulary and the paths of the same
device it reads, e.g. ``quotient(/Yield/Power, /Pv/V)``. The compiler only needs names and
arities, so it stays pure; the implementations live in ``gateway/core/derived.py`` (they read the
clock and the installed version). Functions without path arguments (``unix_time()``) are
*volatile*: a frontend refreshes them on a clock instead of on a change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

# name -> (number of path arguments, what it computes)
FUNCTIONS: Final[Mapping[str, tuple[int, str]]] = {
    "quotient": (2, "a / b; invalid when either is invalid or b is 0 (PV current = PV power / PV voltage)"),
    "unix_time": (0, "seconds since the Unix epoch (system /DateAndTime)"),
    "firmware_version": (0, "the gateway's version as 0x00MMmmpp (major, minor, patch)"),
    "genset_error_summary": (1, "the numeric code of the first active genset error (/Error/0/Id text)"),
}

_CALL_RE: Final = re.compile(r"^([a-z_][a-z0-9_]*)\((.*)\)$")


@dataclass(frozen=True, slots=True)
class Derivation:
    """A parsed ``derive`` expression: function name and the paths it reads."""

    function: str
    paths: tuple[str, ...]

    @property
    def volatile(self) -> bool:
        return not self.paths

    def __str__(self) -> str:
        return f"{self.function}({', '.join(self.paths)})"


class DeriveSyntaxError(ValueError):
    pass


def parse_derive(text: str, path_ok: Callable[[str], bool]) -> Derivation:
    m = _CALL_RE.match(text.strip())
    if not m:
        raise DeriveSyntaxError(f"derive {text!r} is not of the form function(/Path, ...)")
    name, argtext = m.group(1), m.group(2).strip()
    if name not in FUNCTIONS:
        raise DeriveSyntaxError(f"unknown derive function {name!r} (known: {', '.join(sorted(FUNCTIONS))})")
    arity = FUNCTIONS[name][0]
    args = tuple(a.strip() for a in argtext.split(",")) if argtext else ()
    if len(args) != arity:
        raise DeriveSyntaxError(f"{name} takes {arity} path argument(s), got {len(args)}")
    for a in args:
        if not path_ok(a):
            raise DeriveSyntaxError(f"derive argument {a!r} is not a path like /Dc/0/Voltage")
    return Derivation(name, args)
