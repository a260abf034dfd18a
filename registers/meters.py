"""Energy meters as data: the compiled form of ``mappings/devices/`` and its pure decoding.

A meter model (one CSV) becomes a ``MeterModel``: its fields (register, function code, codec
with word order, scale, path, raw values that mean "not available"), the reads the compiler
planned (blocks of at most 125 registers per function code), the probe that recognises it and
the sample dumps it was checked against. The meter driver reads ``model.blocks`` and calls
``block.decode``; the meter simulators build their register images with ``field.encode``.
Nothing here is computed per poll that could be computed once: offsets are fixed at compile time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from registers.codec import Codec
from registers.model import CompiledMap
from registers.origin import Source
from registers.values import Scalar

MAX_READ: Final = 125  # registers in one FC 3/4 request (Modbus application protocol)
HOLDING, INPUT = 3, 4
ROLE_SERVICES: Final = ("grid", "pvinverter", "genset", "acload", "evcharger")
# What a meter says about itself rather than measures: read once when it is found, never mixed
# into a measurement block, and optional (a meter that refuses it is still a working meter).
IDENTITY_PATHS: Final = frozenset({"/Serial", "/FirmwareVersion", "/HardwareVersion"})


@dataclass(frozen=True, slots=True)
class MeterField:
    """One row of a meter file: where a value sits on the meter and which path it feeds."""

    path: str
    function: int  # 3 holding, 4 input
    address: int
    codec: Codec  # word order included (codec.low_word_first)
    scale: float  # value = raw / scale
    invalid: frozenset[int]  # raw values the meter sends for "not available"
    source: Source

    @property
    def end(self) -> int:
        return self.address + self.codec.width

    def decode(self, data: bytes) -> Scalar:
        """The value in this field's register bytes; a declared invalid raw value or a
        non-finite float is None."""
        raw = self.codec.unpack(data)
        if isinstance(raw, str):
            text = raw.strip(" \x00")
            return text or None
        if isinstance(raw, float):
            return raw / self.scale if math.isfinite(raw) else None
        if raw in self.invalid:
            return None
        return raw if self.scale == 1 else raw / self.scale

    def encode(self, value: Scalar) -> bytes:
        """Register bytes a meter would send for ``value`` (None: its "not available" value)."""
        codec = self.codec
        if codec.form == "string":
            return codec.pack(value if isinstance(value, str) else "")
        if value is None or isinstance(value, str) or (isinstance(value, float) and not math.isfinite(value)):
            if codec.form == "float":
                return codec.pack(math.nan)
            return codec.pack(min(self.invalid) if self.invalid else 0)
        avoid = min(self.invalid) if self.invalid else None
        return codec.pack(codec.to_raw(float(value), self.scale, avoid))


@dataclass(frozen=True, slots=True)
class MeterBlock:
    """One planned read: ``count`` registers from ``address`` with function code ``function``."""

    function: int
    address: int
    count: int
    fields: tuple[tuple[int, int, MeterField], ...]  # (byte start, byte end, field) in the answer

    @property
    def identity(self) -> bool:
        """Only identity fields (IDENTITY_PATHS): read once at probe, a refusal is not a miss."""
        return all(f.path in IDENTITY_PATHS for _, _, f in self.fields)

    def decode(self, data: bytes) -> dict[str, Scalar]:
        """Every field of the block from the answer's register bytes (2 * count bytes)."""
        if len(data) != 2 * self.count:
            raise ValueError(f"block {self.function}/{self.address}+{self.count}: got {len(data)} bytes")
        return {f.path: f.decode(data[a:b]) for a, b, f in self.fields}


@dataclass(frozen=True, slots=True)
class MeterProbe:
    """Which register tells this model apart: read it, and the model is this one when the
    value is in ``ranges`` (integer ids) or ``texts`` (a model string)."""

    function: int
    address: int
    codec: Codec
    ranges: tuple[tuple[int, int], ...]
    texts: tuple[str, ...]
    source: Source

    @property
    def key(self) -> tuple[int, int, str, bool]:
        """Probes with the same key are answered by one read."""
        return (self.function, self.address, self.codec.name, self.codec.low_word_first)

    def value(self, data: bytes) -> int | str:
        raw = self.codec.unpack(data)
        if isinstance(raw, str):
            return raw.strip(" \x00")
        return int(raw)

    def matches(self, value: int | str) -> bool:
        if isinstance(value, str):
            return value in self.texts
        return any(lo <= value <= hi for lo, hi in self.ranges)

    def example(self) -> bytes:
        """Register bytes that match (what a simulator of this model answers)."""
        return self.codec.pack(self.texts[0] if self.texts else self.ranges[0][0])


@dataclass(frozen=True, slots=True)
class MeterSample:
    """A register dump of a real-world reading and what it decodes to (checked at compile)."""

    name: str  # the column, e.g. "sample1"
    words: Mapping[tuple[int, int], bytes]  # (function, address) -> the field's register bytes
    expected: Mapping[str, Scalar]  # path -> decoded value (None = invalid)


@dataclass(frozen=True, slots=True)
class MeterModel:
    name: str  # the file's name without .csv: the `model` config key
    product: str  # shown as /ProductName
    phases: int  # 1..3: the highest Ln a field feeds
    fields: tuple[MeterField, ...]
    blocks: tuple[MeterBlock, ...]
    probe: MeterProbe | None  # None: cannot be probed (the config names it)
    samples: tuple[MeterSample, ...]
    source: Source

    def decode(self, answers: Mapping[int, bytes]) -> dict[str, Scalar]:
        """Decode one poll: block index -> answer bytes (a block missing from ``answers``
        leaves its paths out)."""
        values: dict[str, Scalar] = {}
        for i, block in enumerate(self.blocks):
            data = answers.get(i)
            if data is not None:
                values.update(block.decode(data))
        return values


def plan_blocks(fields: tuple[MeterField, ...], max_gap: int) -> tuple[MeterBlock, ...]:
    """Pack fields into as few reads as possible: per function code, by address, a block grows
    while it stays within MAX_READ registers and the gap to the next field is at most ``max_gap``.
    Identity fields are planned apart (their own blocks, after the measurements)."""
    measured = tuple(f for f in fields if f.path not in IDENTITY_PATHS)
    identity = tuple(f for f in fields if f.path in IDENTITY_PATHS)
    return _plan(measured, max_gap) + _plan(identity, max_gap)


def _plan(fields: tuple[MeterField, ...], max_gap: int) -> tuple[MeterBlock, ...]:
    blocks: list[MeterBlock] = []
    for function in sorted({f.function for f in fields}):
        todo = sorted((f for f in fields if f.function == function), key=lambda f: f.address)
        group: list[MeterField] = []
        for f in todo:
            if group and (f.end - group[0].address > MAX_READ or f.address - max(g.end for g in group) > max_gap):
                blocks.append(_block(function, group))
                group = []
            group.append(f)
        if group:
            blocks.append(_block(function, group))
    return tuple(blocks)


def _block(function: int, group: list[MeterField]) -> MeterBlock:
    start = group[0].address
    end = max(f.end for f in group)
    spans = tuple((2 * (f.address - start), 2 * (f.end - start), f) for f in group)
    return MeterBlock(function, start, end - start, spans)


def meter_models(cmap: CompiledMap) -> Mapping[str, MeterModel]:
    """The meter models of a compiled map (``cmap.devices``), typed."""
    models: dict[str, MeterModel] = {}
    for name, model in cmap.devices.items():
        if isinstance(model, MeterModel):
            models[name] = model
    return models


def words_hex(data: bytes) -> str:
    """Register bytes as the sample notation writes them: ``08FE 0000``."""
    return " ".join(data[i : i + 2].hex().upper() for i in range(0, len(data), 2))
