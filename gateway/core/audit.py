"""The audit trail: every accepted or refused write, one log line each, on ``gateway.audit``.

Each line names the frontend, the source address and role (Modbus/TCP Security), the device
and path, the value before and the value asked for, and for a refusal why. Accepted writes
are never collapsed by the log rate limiter (``extra={"no_limit": True}``); refused ones are,
so a client hammering refused writes cannot flood the log. A control loop's routine writes
(``Writer.routine``: the ESS setpoint, PV limits) are logged at DEBUG.
"""

from __future__ import annotations

import logging

from gateway.core.writes import AuditRecord, WriteGate
from registers.values import Scalar

log = logging.getLogger("gateway.audit")


def _shown(v: Scalar) -> str:
    return "invalid" if v is None else repr(v) if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else str(v)


def describe(r: AuditRecord) -> str:
    who = f"{r.writer.frontend} {r.writer.peer or '-'} role={r.writer.role if r.writer.role is not None else '-'}"
    changes = "; ".join(f"{p}: {_shown(r.old.get(p))} -> {_shown(v)}" for p, v in r.changes.items())
    return f"{who} {r.service}/{r.instance} {changes}"


def log_write(r: AuditRecord) -> None:
    if r.refusal is None:
        level = logging.DEBUG if r.writer.routine else logging.INFO
        log.log(level, "write accepted: %s", describe(r), extra={"no_limit": True})
    else:
        log.warning("write refused (%s: %s): %s", r.refusal.refusal.value, r.refusal.reason, describe(r))


def install(gate: WriteGate) -> None:
    if log_write not in gate.record_hooks:
        gate.record_hooks.append(log_write)
