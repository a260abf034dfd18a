"""NMEA 2000 PGN field specs (``cmap.n2k``): which Store paths fill which PGN fields.

Compiled once from ``mappings/n2k/`` by ``registers.compile.n2k``; the N2K frontend only runs
``N2kPgn.fields_of`` and the canboat ``Database.encode`` per interval: every lookup (field ids,
conversions, label tables, constants) is resolved at compile time. Field ids and labels are
the canboat database's, as the ``nmea2000`` package names them; values are canboat's SI units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from registers.origin import Source
from registers.values import Scalar

if TYPE_CHECKING:
    from nmea2000 import _canboat as canboat

__all__ = ["N2kDeviceSpec", "N2kField", "N2kPgn", "database"]

Get = Callable[[str], Scalar]  # a path's valid, fresh value, or None
FieldValues = dict[str, Any]

# NAME fields every virtual device of ours shares (the ISO industry group: marine).
INDUSTRY_MARINE: Final = 4


@cache
def database() -> canboat.Database:
    """canboat's PGN database in SI units, loaded once, on first use: importing the ``nmea2000``
    package pulls in python-can (about 20 MB resident), which a gateway without ``[n2k]`` never
    needs (docs/BENCHMARKS.md, memory)."""
    from nmea2000 import _canboat

    return _canboat.Database("si")


@dataclass(frozen=True, slots=True)
class N2kField:
    """One mapped field of a PGN: a constant, the data instance, or a converted Store path."""

    field: str  # canboat field id
    line: int  # 0: a plain field; N: the N-th entry of the PGN's repeating set (AC line N)
    path: str | None  # Store path; None for a constant or the instance
    constant: Scalar  # with path None and not instance
    instance: bool  # the virtual device's data instance
    factor: float  # SI value = Store value * factor + offset
    offset: float
    labels: Mapping[int, str] | None  # Store enum value -> canboat label
    required: bool  # the PGN is not sent while this path is invalid or stale
    source: Source


@dataclass(frozen=True, slots=True)
class N2kPgn:
    """A PGN one virtual device sends, precompiled for ``fields_of``."""

    pgn: int
    pgn_id: str  # canboat's id, e.g. batteryStatus
    fast: bool  # fast-packet (127507 and 127509 are, even though they fit one frame)
    interval_ms: int
    priority: int
    fields: tuple[N2kField, ...]
    lines: int  # entries of the repeating set (0: none)
    source: Source
    # Precomputed for the hot path:
    constants: tuple[tuple[int, str, Any], ...] = ()  # (line, field, value): constants and labels
    instances: tuple[tuple[int, str], ...] = ()
    dynamic: tuple[tuple[int, str, str, float, float, Mapping[int, str] | None, bool, bool], ...] = ()

    def __post_init__(self) -> None:
        consts = tuple((f.line, f.field, f.constant) for f in self.fields if f.path is None and not f.instance)
        object.__setattr__(self, "constants", consts)
        object.__setattr__(self, "instances", tuple((f.line, f.field) for f in self.fields if f.instance))
        dyn = tuple(
            (f.line, f.field, f.path, f.factor, f.offset, f.labels, f.required, _takes_negative(self.pgn_id, f))
            for f in self.fields
            if f.path
        )
        object.__setattr__(self, "dynamic", dyn)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(f.path for f in self.fields if f.path is not None)

    def fields_of(self, get: Get, instance: int) -> tuple[FieldValues, list[FieldValues]] | None:
        """Field values (plain, repeating-set entries) from the Store, or None when a required
        value is missing: the PGN is then not sent at all (never stale numbers)."""
        plain: FieldValues = {}
        entries: list[FieldValues] = [{} for _ in range(self.lines)]
        for line, name, value in self.constants:
            (entries[line - 1] if line else plain)[name] = value
        for line, name in self.instances:
            (entries[line - 1] if line else plain)[name] = instance
        for line, name, path, factor, offset, labels, required, negative_ok in self.dynamic:
            v = get(path)
            if v is None or isinstance(v, str):
                if required:
                    return None
                continue
            if labels is not None:
                label = labels.get(int(v))
                if label is None:
                    if required:
                        return None
                    continue
                out: Any = label
            else:
                out = v * factor + offset
                if out < 0 and not negative_ok:  # e.g. grid feed-in in 127503's unsigned power
                    if required:
                        return None
                    continue  # sent as "not available", never as a wrong number
            (entries[line - 1] if line else plain)[name] = out
        return plain, entries

    def encode(self, get: Get, instance: int, src: int = 0) -> bytes | None:
        """The PGN's payload (not fragmented), or None when it must not be sent now."""
        values = self.fields_of(get, instance)
        if values is None:
            return None
        plain, entries = values
        db = database()
        payload: bytes = (
            db.encode(self.pgn_id, plain, src=src, sets=[entries])
            if entries
            else db.encode(self.pgn_id, plain, src=src)
        )
        return payload


@dataclass(frozen=True, slots=True)
class N2kDeviceSpec:
    """A virtual NMEA 2000 device made for every Store device of a service type."""

    service: str
    role: str  # e.g. "inverter" and "acinput" for the two devices of a vebus
    device_class: int
    device_function: int
    pool: str  # data instances are numbered 0, 1, 2 ... per pool (dc, ac, tank, ...)
    model: str  # Product Information model id
    pgns: tuple[N2kPgn, ...]
    source: Source
    reads: bool = False  # NMEA 2000 in decodes other senders' PGNs into this service (devices.csv input=y)

    @property
    def key(self) -> str:
        return f"{self.service}/{self.role}"


def _takes_negative(pgn_id: str, f: N2kField) -> bool:
    """Whether canboat's field can carry a negative value (probed once, at compile time): some
    power fields are unsigned (127503/127504 real power), others have an offset (J1939)."""
    if f.labels is not None:
        return True
    try:
        if f.line:
            database().encode(pgn_id, {}, sets=[[{f.field: -1}]])
        else:
            database().encode(pgn_id, {f.field: -1})
    except Exception:
        return False
    return True
