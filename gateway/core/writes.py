"""The write gate: one validation in front of every owner, for every frontend.

Modbus, the web API and (later) NMEA 2000 commands all write through ``WriteGate.write``:
it checks the changes against ``cmap.paths`` (the path exists for that service type, is
writable, the value has the right type and lies in the enum or range), then hands them to
the Store, which routes them to the device's owner (a driver, the simulator, the settings).
Owners therefore receive only valid values and keep only device-specific refusals.

Every write carries its ``Writer`` (frontend, peer address, role), so per-role allow-lists,
Modbus/TCP Security roles and the audit log have one place to live. A refusal says why and
what kind of refusal it is, so each frontend can map it: Modbus 02/03/0A, HTTP 403/404/422.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.core.store import NoDevice, Store, WriteRejected, WriteTimeout
from registers.model import CompiledMap
from registers.values import Scalar, as_number

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Writer:
    """Who writes: ``modbus``, ``http``, ``n2k`` or ``internal``; the peer; its role."""

    frontend: str
    peer: str | None = None
    role: str | None = None
    # A control loop's routine writes (the ESS setpoint, PV limits, about once a second while it
    # regulates): audited at DEBUG, else they would drown every other line; counted all the same.
    routine: bool = False

    def __str__(self) -> str:
        who = self.frontend + (f" {self.peer}" if self.peer else "")
        return who + (f" ({self.role})" if self.role else "")


INTERNAL = Writer("internal")


class Refusal(enum.Enum):
    """Why a write was refused, in the categories frontends map to their own codes."""

    UNKNOWN_PATH = "unknown path"  # Modbus 02, HTTP 404
    READ_ONLY = "read-only"  # Modbus 02, HTTP 422
    BAD_VALUE = "bad value"  # Modbus 03, HTTP 422
    NO_DEVICE = "no device"  # Modbus 0A, HTTP 404
    FORBIDDEN = "forbidden"  # Modbus 02 (writes disabled / role), HTTP 403
    OWNER_REFUSED = "refused by the device"  # Modbus 04, HTTP 422
    TIMEOUT = "no answer"  # Modbus 0B, HTTP 504


class WriteRefused(Exception):
    def __init__(self, refusal: Refusal, reason: str) -> None:
        super().__init__(reason)
        self.refusal = refusal
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One write decision: who, what, the values before, and the refusal (None: accepted)."""

    writer: Writer
    service: str
    instance: int
    changes: Mapping[str, Scalar]
    old: Mapping[str, Scalar]
    refusal: WriteRefused | None


# An audit hook hears every write decision: (writer, service, instance, changes, refusal or None).
AuditHook = Callable[[Writer, str, int, Mapping[str, Scalar], "WriteRefused | None"], None]
# A record hook hears the same, with the values before, as one AuditRecord (gateway/core/audit.py).
RecordHook = Callable[[AuditRecord], None]


def _above_device_maximum(path: str, value: Scalar, bound_path: str, bound: Scalar) -> str | None:
    """A range that depends on the device (/Ac/PowerLimit <= its /Ac/MaxPower); an unknown
    bound is left to the owner, which knows what it can carry out."""
    limit = as_number(bound)
    number = as_number(value)
    if limit is None or number is None or number <= limit:
        return None
    return f"{path}: {number:g} is above {bound_path} {limit:g} of this device"


class WriteGate:
    def __init__(self, store: Store, cmap: CompiledMap) -> None:
        self.store = store
        self.paths = cmap.paths
        self.audit_hooks: list[AuditHook] = []
        self.record_hooks: list[RecordHook] = []
        # Modbus/TCP Security: role name -> "read-only" | "read-write". A writer with a role
        # (a TLS client) may write only when its role maps to read-write.
        self.roles: dict[str, str] = {}
        # Paths a control rule owns (a relay with a function other than manual): (service,
        # path) -> (the one frontend name that may write it, why the others may not).
        self.reserved: dict[tuple[str, str], tuple[str, str]] = {}
        self.accepted = 0
        self.refused = 0

    def check(
        self, service: str, instance: int, changes: Mapping[str, Scalar], writer: Writer | None = None
    ) -> dict[str, Scalar]:
        """The changes as owners get them (an enum value as int), or WriteRefused unless every
        change may be written (all or nothing).

        Order as the Modbus spec checks: the writer's role, paths and access first, then
        values, then the device.
        """
        if writer is not None and writer.role is not None and self.roles.get(writer.role) != "read-write":
            shown = writer.role or "no role"
            raise WriteRefused(Refusal.FORBIDDEN, f"{writer}: role {shown!r} may not write")
        specs = self.paths.get(service, {})
        for path in changes:
            spec = specs.get(path)
            if spec is None:
                raise WriteRefused(Refusal.UNKNOWN_PATH, f"{service} has no path {path}")
            if not spec.writable:
                raise WriteRefused(Refusal.READ_ONLY, f"{path} of {service} is read-only")
            owner = self.reserved.get((service, path))
            if owner is not None and writer is not None and writer.frontend != owner[0]:
                raise WriteRefused(Refusal.OWNER_REFUSED, owner[1])
        device = self.store.device(service, instance)
        clean: dict[str, Scalar] = {}
        for path, value in changes.items():
            spec = specs[path]
            why = spec.refuse(value)
            if why is None and spec.maximum_path is not None and device is not None:
                why = _above_device_maximum(spec.path, value, spec.maximum_path, device.get(spec.maximum_path))
            if why is not None:
                raise WriteRefused(Refusal.BAD_VALUE, why)
            clean[path] = int(value) if spec.lookup is not None and isinstance(value, float) else value
        if device is None:
            raise WriteRefused(Refusal.NO_DEVICE, f"no device {service} instance {instance}")
        if device.get("/Connected") == 0:  # a driver's device that stopped answering
            raise WriteRefused(Refusal.NO_DEVICE, f"{service} instance {instance} is disconnected")
        return clean

    async def write(
        self,
        service: str,
        instance: int,
        changes: Mapping[str, Scalar],
        writer: Writer,
        timeout: float = 2.0,
        *,
        checked: bool = False,
    ) -> None:
        """Validate (unless the caller just did, ``checked``), then carry out through the owner."""
        old = self._current(service, instance, changes)
        try:
            if not checked:
                changes = self.check(service, instance, changes, writer)
            try:
                await self.store.write(service, instance, changes, timeout=timeout)
            except NoDevice as e:
                raise WriteRefused(Refusal.NO_DEVICE, str(e)) from None
            except WriteRejected as e:
                raise WriteRefused(Refusal.OWNER_REFUSED, str(e)) from None
            except WriteTimeout as e:
                raise WriteRefused(Refusal.TIMEOUT, str(e)) from None
        except WriteRefused as refused:
            self.refused += 1
            self._audit(AuditRecord(writer, service, instance, changes, old, refused))
            raise
        self.accepted += 1
        self._audit(AuditRecord(writer, service, instance, changes, old, None))

    def refuse(
        self, writer: Writer, service: str, instance: int, changes: Mapping[str, Scalar], e: WriteRefused
    ) -> None:
        """Record a refusal decided before ``write`` (a frontend's own check failed)."""
        self.refused += 1
        self._audit(AuditRecord(writer, service, instance, changes, self._current(service, instance, changes), e))

    def _current(self, service: str, instance: int, changes: Mapping[str, Scalar]) -> dict[str, Scalar]:
        device = self.store.device(service, instance)
        return {p: device.get(p) for p in changes} if device is not None else {}

    def _audit(self, r: AuditRecord) -> None:
        for hook in self.audit_hooks:
            try:
                hook(r.writer, r.service, r.instance, r.changes, r.refusal)
            except Exception:
                log.exception("write audit hook failed")
        for record_hook in self.record_hooks:
            try:
                record_hook(r)
            except Exception:
                log.exception("write audit hook failed")
