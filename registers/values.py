"""The scalar every layer passes around, and the one rule for when it is valid.

A ``Scalar`` is what a path holds: a number, a string, or None for "not available".
NaN and infinities are not available either: they never reach a register or a PGN.
"""

from __future__ import annotations

import math

Scalar = float | int | str | None


def is_valid(v: Scalar) -> bool:
    """Valid = present, and for a float a finite one (NaN and +-inf are invalid)."""
    if v is None:
        return False
    if isinstance(v, float):
        return math.isfinite(v)
    return True


def as_number(v: Scalar) -> float | None:
    """A valid number as float; None for absent, NaN, infinities, text and booleans."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None
