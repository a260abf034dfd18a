"""PGN 126208 (NMEA Command Group Function) as a plotter or config tool sends it to change
instances: parsed strictly, so a malformed command changes nothing.

Accepted: function code 1 (Command) for
- PGN 60928 (our NAME), fields 3 (device instance lower, 0..7), 4 (device instance upper,
  0..31) and 8 (system instance, 0..15);
- a data PGN the device sends, its ``instance`` field (0..252, 0..15 where 4 bits wide).
Each value takes one byte (the fields are at most 8 bits wide). Anything else is refused
with the reason, and the frontend logs it and acknowledges with an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from registers.pgn_specs import database

NAME_FIELDS = {3: ("device_instance_lower", 7), 4: ("device_instance_upper", 31), 8: ("system_instance", 15)}


@dataclass(frozen=True, slots=True)
class InstanceCommand:
    pgn: int
    changes: dict[str, int]  # device_instance_lower/upper, system_instance, instance


class BadCommand(ValueError):
    """Why a 126208 payload is not an instance change we carry out."""


def parse_command(payload: bytes, sent_pgns: dict[int, str]) -> InstanceCommand:
    """``sent_pgns``: the device's data PGNs -> canboat ids."""
    if len(payload) < 6:
        raise BadCommand(f"{len(payload)} bytes, too short for a command")
    if payload[0] != 1:
        raise BadCommand(f"function code {payload[0]} is not 1 (Command)")
    pgn = int.from_bytes(payload[1:4], "little")
    count = payload[5]
    pairs = payload[6:]
    if count == 0 or len(pairs) < 2 * count:
        raise BadCommand(f"{count} parameter(s) announced, {len(pairs)} bytes of them present")
    changes: dict[str, int] = {}
    for i in range(count):
        index, value = pairs[2 * i], pairs[2 * i + 1]
        if pgn == 60928:
            if index not in NAME_FIELDS:
                raise BadCommand(f"field {index} of 60928 is not an instance field")
            name, most = NAME_FIELDS[index]
        elif pgn in sent_pgns:
            fields = database().pgn_info(sent_pgns[pgn]).fields
            if not 1 <= index <= len(fields) or fields[index - 1].id != "instance":
                raise BadCommand(f"field {index} of {pgn} is not its instance field")
            bits = fields[index - 1].bit_length or 8
            name, most = "instance", min(252, (1 << bits) - 1)
        else:
            raise BadCommand(f"PGN {pgn} is not sent by this device")
        if value > most:
            raise BadCommand(f"{name} {value} is above {most}")
        changes[name] = value
    return InstanceCommand(pgn, changes)


def acknowledge(pgn: int, ok: bool, parameters: int) -> bytes:
    """A 126208 Acknowledge: PGN error code 0 (acknowledge) or 1 (PGN not supported / bad)."""
    error = 0 if ok else 1
    params = bytearray()
    for i in range(0, max(parameters, 1), 2):
        params.append((0 if ok else 1) | (((0 if ok else 1) << 4) if i + 1 < parameters else 0xF0))
    return bytes([2, *pgn.to_bytes(3, "little"), error | 0xF0, max(parameters, 1), *params])
