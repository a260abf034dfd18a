"""The gateway's health: what went wrong that a person should know, for ``GET /healthz``.

Components register ``warnings`` sources (each returns lines, empty when all is well) and
``details`` (counters, watchdog state). A fallback at start (a corrupt or out-of-range
settings file), a setpoint the watchdog reverted, connections refused for policy: each is
logged when it happens and stays visible here afterwards; gateway/ops/health.py adds this
report to ``/healthz`` (status stays "ok": warnings are for people, not for restarts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

WarningSource = Callable[[], list[str]]
Detail = Callable[[], object]


class Health:
    def __init__(self) -> None:
        self.sources: list[WarningSource] = []
        self.details: dict[str, Detail] = {}

    def warnings(self) -> list[str]:
        return [line for source in self.sources for line in source()]

    def report(self) -> dict[str, Any]:
        warnings = self.warnings()
        body: dict[str, Any] = {"warnings": warnings}
        body.update({name: detail() for name, detail in self.details.items()})
        return body
