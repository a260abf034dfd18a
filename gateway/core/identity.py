"""The gateway's identity: numbers that must stay the same for the life of an installation.

A GX device's serial is derived from its MAC address, and VRM, Modbus clients and plotters
tell devices apart by it. Ours is made once at random (``secrets``), 12 lower-case hex digits
shaped like a locally administered MAC, and kept in ``<state_dir>/identity.json`` through
``gateway.core.persist``; a hostname-derived one would change with the host or collide between
containers. Later numbers (NMEA 2000 unique numbers) become new optional fields: an older file
without them gets them made and saved once.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from gateway.core.persist import JsonFile

__all__ = ["FILE_NAME", "Identity", "load_or_create_identity", "n2k_unique_base", "new_serial", "parse_identity"]

log = logging.getLogger(__name__)

FILE_NAME: Final = "identity.json"
_SERIAL: Final = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True)
class Identity:
    serial: str  # 12 lower-case hex digits, like a GX's MAC-derived serial


def n2k_unique_base(serial: str) -> int:
    """The first of this gateway's 256 NMEA 2000 NAME unique numbers (a 21-bit field), from the
    serial: N2K out numbers its virtual devices from it, N2K in knows them by it."""
    return (int(serial, 16) % ((1 << 21) // 256 - 1) + 1) * 256


def new_serial() -> str:
    """Random, with the first octet marked locally administered and unicast (no real vendor's MAC)."""
    octets = bytearray(secrets.token_bytes(6))
    octets[0] = (octets[0] & 0xFC) | 0x02
    return octets.hex()


def parse_identity(data: object) -> Identity:
    """The file's shape: ``{"serial": "<12 hex digits>"}``; other keys are for later versions."""
    if not isinstance(data, dict):
        raise ValueError(f"expected an object, not {type(data).__name__}")
    serial = data.get("serial")
    if not isinstance(serial, str) or not _SERIAL.fullmatch(serial):
        raise ValueError(f"serial {serial!r} is not 12 lower-case hex digits")
    return Identity(serial=serial)


def load_or_create_identity(state_dir: Path | None) -> Identity:
    """The saved identity, or a new one saved for next time. Without a state_dir (or when it
    cannot be written) the identity is new at every start, which is logged."""
    if state_dir is None:
        return Identity(serial=new_serial())
    file = JsonFile(state_dir / FILE_NAME, parse_identity, asdict)
    found = file.load()
    if found is not None:
        return found
    identity = Identity(serial=new_serial())
    report = file.load_report
    try:
        file.save_now(identity)
    except OSError as e:
        log.error(
            "cannot save the gateway identity to %s (%s); serial %s changes at the next start",
            file.path,
            e,
            identity.serial,
        )
        return identity
    if report is not None and not report.ok:
        log.warning("%s was unusable; made a new gateway identity, serial %s", file.path, identity.serial)
    else:
        log.info("made the gateway identity, serial %s, saved in %s", identity.serial, file.path)
    return identity
