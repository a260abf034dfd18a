"""Venus OS topic names and payloads: ``N/<portal>/<service>/<instance>/<path>`` and friends.

Pure functions, no I/O: the behaviour (venus.py) and the tests share them. A D-Bus path
``/Dc/0/Voltage`` becomes the topic tail ``Dc/0/Voltage``; a value is ``{"value": v}`` with
``null`` for an invalid one, and a device that disappears leaves an empty payload (b"").
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final

from registers.values import Scalar

EMPTY: Final = b""
# MQTT forbids wildcards in a topic name, and a slash would split the portal id; Venus ids are hex.
_PORTAL: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def check_portal_id(where: str, portal: str) -> str:
    """The portal id, or ValueError saying what MQTT (or a Venus client) could not carry."""
    if not _PORTAL.fullmatch(portal):
        raise ValueError(
            f"{where}: portal id {portal!r} must be 1-64 letters, digits or _ . : - (no /, +, # or spaces)"
        )
    return portal


def check_prefix(where: str, prefix: str) -> str:
    """A topic prefix like ``site/boat-1`` (no wildcards, no leading or trailing slash)."""
    if prefix and (
        any(c in prefix for c in "+#\0") or prefix.startswith("/") or prefix.endswith("/") or "//" in prefix
    ):
        raise ValueError(f"{where}: topic prefix {prefix!r} may not hold + # or empty levels")
    return prefix


@dataclass(frozen=True, slots=True)
class Request:
    """An incoming ``R/`` or ``W/`` topic, split: kind, service, instance, path ('' = everything)."""

    kind: str  # "R" or "W"
    service: str
    instance: int | None  # None: the keep-alive (or the portal as a whole)
    path: str  # "/Dc/0/Voltage", a subtree "/Dc", or "" (the whole device)


class Topics:
    """Topic names for one portal id under an optional prefix."""

    def __init__(self, portal: str, prefix: str = "") -> None:
        self.portal = portal
        self.prefix = f"{prefix}/" if prefix else ""

    def notify(self, service: str, instance: int, path: str) -> str:
        return f"{self.prefix}N/{self.portal}/{service}/{instance}{path}"

    @property
    def completed(self) -> str:
        return f"{self.prefix}N/{self.portal}/full_publish_completed"

    @property
    def serial(self) -> str:
        return self.notify("system", 0, "/Serial")

    def subscriptions(self) -> list[str]:
        """What the gateway listens to: its own R/ and W/ trees."""
        return [f"{self.prefix}R/{self.portal}/#", f"{self.prefix}W/{self.portal}/#"]

    def parse(self, topic: str) -> Request | None:
        """An R/ or W/ topic of this portal, split; None for anything else (other portals too)."""
        if not topic.startswith(self.prefix):
            return None
        parts = topic[len(self.prefix) :].split("/")
        if len(parts) < 3 or parts[0] not in ("R", "W") or parts[1] != self.portal or "" in parts[2:]:
            return None
        if len(parts) == 3:  # R/<portal>/keepalive
            return Request(parts[0], parts[2], None, "")
        try:
            instance = int(parts[3])
        except ValueError:
            return None
        return Request(parts[0], parts[2], instance, "".join("/" + p for p in parts[4:]))


def value_payload(value: Scalar, valid: bool = True, extra: dict[str, Any] | None = None) -> bytes:
    """``{"value": v}``; null when invalid (NaN and infinities cannot be JSON numbers)."""
    if not valid or (isinstance(value, float) and not math.isfinite(value)):
        value = None
    body: dict[str, Any] = dict(extra) if extra else {}
    body["value"] = value
    return json.dumps(body, separators=(",", ":")).encode()


class BadPayload(ValueError):
    """A W/ or R/ payload that is not what Venus documents (the message says why)."""


def parse_write(payload: bytes) -> Scalar:
    """The value of a W/ payload ``{"value": x}``."""
    body = _json(payload)
    if not isinstance(body, dict) or "value" not in body:
        raise BadPayload('expected {"value": ...}')
    value = body["value"]
    if isinstance(value, bool):
        return int(value)
    if value is not None and not isinstance(value, (int, float, str)):
        raise BadPayload(f"value must be a number or a string, not {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class KeepaliveOptions:
    suppress_republish: bool = False
    echo: str | None = None  # full-publish-completed-echo, returned in full_publish_completed


def parse_keepalive(payload: bytes) -> KeepaliveOptions:
    """Empty, or ``{"keepalive-options": ["suppress-republish", {"full-publish-completed-echo": "id"}]}``."""
    if not payload.strip():
        return KeepaliveOptions()
    body = _json(payload)
    options = body.get("keepalive-options", []) if isinstance(body, dict) else None
    if not isinstance(options, list):
        raise BadPayload('expected {"keepalive-options": [...]}')
    suppress, echo = False, None
    for option in options:
        if option == "suppress-republish":
            suppress = True
        elif isinstance(option, dict) and isinstance(option.get("full-publish-completed-echo"), str):
            echo = option["full-publish-completed-echo"]
    return KeepaliveOptions(suppress, echo)


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadPayload(f"not JSON ({e})") from None
