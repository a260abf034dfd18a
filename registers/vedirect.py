"""VE.Direct as data: the compiled form of ``mappings/vedirect/`` and the text-protocol framing.

- ``TextFramer``: bytes in, checked blocks (label -> value) out. A block is every byte from its
  first ``\\r\\n`` to the byte after ``Checksum\\t``; their sum is 0 mod 256 or the block is
  dropped whole (counted). HEX frames (``:`` ... ``\\n``, command + data + check summing to
  0x55) may sit between fields: they are taken out of the stream (and out of the checksum) and
  handed on. Garbage, cut blocks and endless lines cost a bounded buffer and a counted drop.
- ``VeDirectMap``: product ids -> product and service; per service, label -> path rows
  (``VeField``) that turn a block into GX paths (scales, ON/OFF, bit masks, range checks).

Pure: the compiler checks the sample captures with the same framer and decoder the driver runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from registers.origin import Source
from registers.values import Scalar

MAX_LABEL: Final = 16
MAX_VALUE: Final = 64
MAX_FIELDS: Final = 48
MAX_HEX: Final = 600
CHECKSUM_LABEL: Final = b"Checksum"
# What text carries about the device itself: handled by the driver for every service.
IDENTITY_LABELS: Final = frozenset({"PID", "SER#", "FW", "FWE", "BMV"})
SERVICES: Final = ("solarcharger", "battery", "inverter", "dcdc", "charger")
KINDS: Final = ("number", "onoff", "flag", "text")

_LABEL, _VALUE, _CHECKSUM, _HEX, _SKIP = range(5)


@dataclass(frozen=True, slots=True)
class HexFrame:
    command: int  # 0..15 (4 product id, 7 get, 8 set, A async ...)
    data: bytes


def parse_hex(line: bytes) -> HexFrame | None:
    """``:`` + command nibble + data bytes + check byte (bytes sum to 0x55); None when not one."""
    text = line.strip()
    if len(text) < 4 or text[:1] != b":" or len(text) % 2:
        return None
    try:
        command = int(text[1:2], 16)
        body = bytes.fromhex(text[2:].decode("ascii"))
    except ValueError:
        return None
    if (command + sum(body)) & 0xFF != 0x55:
        return None
    return HexFrame(command, body[:-1])


def hex_command(command: int, data: bytes = b"") -> bytes:
    """A HEX frame to send (e.g. ``hex_command(4)`` asks for the product id)."""
    check = (0x55 - command - sum(data)) & 0xFF
    return b":" + f"{command:X}".encode() + (data + bytes([check])).hex().upper().encode() + b"\n"


def block_bytes(fields: Mapping[str, str], corrupt: bool = False) -> bytes:
    """The bytes a device sends for ``fields``, checksum included (``corrupt``: a wrong one)."""
    body = b"".join(b"\r\n" + k.encode("ascii") + b"\t" + v.encode("ascii") for k, v in fields.items())
    body += b"\r\n" + CHECKSUM_LABEL + b"\t"
    check = (-sum(body)) & 0xFF
    return body + bytes([(check + 1) & 0xFF if corrupt else check])


class TextFramer:
    """Incremental: ``feed(bytes)`` returns the blocks completed by them, checksum passed."""

    def __init__(self) -> None:
        self.blocks = 0
        self.bad_checksum = 0
        self.garbage = 0  # blocks dropped for overlong lines, binary noise, too many fields
        self.hex_frames: list[HexFrame] = []  # taken out of the stream since the last take_hex()
        self.bad_hex = 0
        self._synced = False  # the first block end after start may close a block we joined midway
        self._reset()
        self._state = _LABEL

    def _reset(self) -> None:
        self._sum = 0
        self._fields: dict[str, str] = {}
        self._label = bytearray()
        self._value = bytearray()
        self._corrupt = False
        self._hex = bytearray()
        self._resume = _LABEL

    def take_hex(self) -> list[HexFrame]:
        frames, self.hex_frames = self.hex_frames, []
        return frames

    def feed(self, data: bytes) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        for b in data:
            state = self._state
            if state == _HEX:
                if b == 0x0A:
                    frame = parse_hex(bytes(self._hex))
                    if frame is None:
                        self.bad_hex += 1
                    else:
                        self.hex_frames.append(frame)
                    self._hex = bytearray()
                    self._state = self._resume
                elif len(self._hex) < MAX_HEX:
                    self._hex.append(b)
                else:
                    self.bad_hex += 1
                    self._hex = bytearray()
                    self._state = _SKIP
                continue
            if b == 0x3A and state != _CHECKSUM and (state == _VALUE or not self._label):  # ':' starts HEX
                if state == _VALUE:
                    self._end_value()
                self._hex = bytearray(b":")
                self._resume = _LABEL
                self._state = _HEX
                continue
            self._sum += b
            if state == _CHECKSUM:
                self._end_block(out)
            elif state == _SKIP:
                if b == 0x0A:
                    self._state = _LABEL
            elif state == _LABEL:
                if b == 0x09:
                    if bytes(self._label) == CHECKSUM_LABEL:
                        self._state = _CHECKSUM
                    else:
                        self._state = _VALUE
                elif b in (0x0D, 0x0A):
                    if self._label:  # a label without a value: not a field
                        self._corrupt = True
                        self._label = bytearray()
                elif 0x20 < b < 0x7F and len(self._label) < MAX_LABEL:
                    self._label.append(b)
                else:
                    self._overlong()
            else:  # _VALUE
                if b in (0x0D, 0x0A):
                    self._end_value()
                elif 0x20 <= b < 0x7F and len(self._value) < MAX_VALUE:
                    self._value.append(b)
                else:
                    self._overlong()
        return out

    def _overlong(self) -> None:
        self._corrupt = True
        self._label = bytearray()
        self._value = bytearray()
        self._state = _SKIP

    def _end_value(self) -> None:
        if len(self._fields) >= MAX_FIELDS:
            self._corrupt = True
        else:
            self._fields[self._label.decode("ascii")] = self._value.decode("ascii")
        self._label = bytearray()
        self._value = bytearray()
        self._state = _LABEL

    def _end_block(self, out: list[dict[str, str]]) -> None:
        ok = self._sum & 0xFF == 0
        if not self._synced:
            self._synced = True
            if ok and self._fields and not self._corrupt:
                self.blocks += 1
                out.append(self._fields)
        elif self._corrupt:
            self.garbage += 1
        elif not ok:
            self.bad_checksum += 1
        elif self._fields:
            self.blocks += 1
            out.append(self._fields)
        self._reset()
        self._state = _LABEL


@dataclass(frozen=True, slots=True)
class VeProduct:
    pid: int
    name: str
    service: str
    source: Source


@dataclass(frozen=True, slots=True)
class VeField:
    """One row of a service file: a label's value -> a GX path.

    ``number``: integer * scale; ``onoff``: ON -> scale, OFF -> 0; ``flag``: scale when bit
    ``bit`` of the (decimal or 0x) mask is set, else 0 (rows feeding one path: the highest);
    ``text``: as sent. Raw values in ``invalid`` and results outside min..max are None."""

    label: str
    path: str
    kind: str
    scale: float
    bit: int
    invalid: frozenset[int]
    minimum: float | None
    maximum: float | None
    source: Source

    def decode(self, raw: str) -> Scalar:
        if self.kind == "text":
            return raw
        if self.kind == "onoff":
            if raw not in ("ON", "OFF"):
                return None
            value: float = self.scale if raw == "ON" else 0
        else:
            try:
                number = int(raw, 0) if self.kind == "flag" else int(raw)
            except ValueError:
                return None
            if number in self.invalid:
                return None
            if self.kind == "flag":
                value = self.scale if number >> self.bit & 1 else 0
            else:
                value = number * self.scale
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            return None
        return int(value) if float(value).is_integer() and abs(self.scale) >= 1 else round(value, 6)


@dataclass(frozen=True, slots=True)
class VeDirectMap:
    products: Mapping[int, VeProduct]
    fields: Mapping[str, tuple[VeField, ...]]  # service -> its rows
    samples: Mapping[str, bytes] = field(default_factory=dict)  # sample name -> capture bytes

    def decode(self, service: str, block: Mapping[str, str]) -> tuple[dict[str, Scalar], int]:
        """The paths a block gives (labels the block lacks leave their paths out) and how many
        of its values were refused (unparseable or out of range)."""
        values: dict[str, Scalar] = {}
        refused = 0
        for f in self.fields.get(service, ()):
            raw = block.get(f.label)
            if raw is None:
                continue
            value = f.decode(raw)
            if value is None and raw not in {str(i) for i in f.invalid}:
                refused += 1
            if f.kind == "flag" and f.path in values:
                old = values[f.path]
                if isinstance(old, (int, float)) and isinstance(value, (int, float)):
                    value = max(old, value)
            values[f.path] = value
        return values, refused


def parse_pid(text: str) -> int | None:
    try:
        return int(text, 16)
    except ValueError:
        return None


def vedirect_map(cmap: object) -> VeDirectMap:
    """The VE.Direct map of a compiled map (``cmap.devices["vedirect"]``), typed."""
    found = getattr(cmap, "devices", {}).get("vedirect")
    if not isinstance(found, VeDirectMap):
        raise LookupError("the compiled map has no mappings/vedirect")
    return found
