"""The gateway's protections, assembled once per Gateway (gateway/app.py calls in here so
the app module stays a plain list of components).

- the audit trail on the one write gate (gateway/core/audit.py), and the TLS roles it enforces;
- the file-descriptor budget: the soft RLIMIT_NOFILE raised at start, HTTP capped so that
  Modbus keeps its share (gateway/frontends/http/limits.py);
- the setpoint watchdog (gateway/core/watchdog.py);
- the health page's sources: settings loaded from a backup or defaults, watchdog reverts,
  connections refused or closed for policy;
- the Modbus/TCP Security listener's server (gateway/frontends/modbus/tls.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from gateway.core import audit
from gateway.core.components import StartupError
from gateway.core.health_report import Health
from gateway.core.watchdog import SetpointWatchdog
from gateway.frontends.http.fd_budget import HttpLimits, http_budget, raise_nofile
from gateway.frontends.modbus.server import ModbusServer
from gateway.frontends.modbus.tls import TlsSetupError, server_context

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.ops.view import RunningGateway

log = logging.getLogger("gateway")


class Guards:
    def __init__(self, config: Config, gateway: RunningGateway) -> None:
        self.config = config
        self.gateway = gateway
        self.health = Health()
        self.http_limits = HttpLimits()
        self.nofile = 0
        audit.install(gateway.gate)
        if config.modbus.tls is not None:
            gateway.gate.roles.update(config.modbus.tls.roles)
        self.watchdog = SetpointWatchdog(gateway.store, gateway.gate, config.setpoints.timeout_s)
        self.health.sources += [self._settings_warnings, self._watchdog_warnings]
        self.health.details["setpoints"] = self.watchdog.status
        self.health.details["connections"] = self._connections

    # --- a component of its own: the fd budget, before any frontend listens --------------
    async def start(self) -> None:
        m = self.config.modbus
        self.nofile = raise_nofile()
        modbus = m.max_connections * (2 if m.tls is not None else 1)
        if modbus + 64 > self.nofile:
            log.warning("open-file limit %d is low for modbus.max_connections %d", self.nofile, m.max_connections)
        self.http_limits = http_budget(HttpLimits(), self.nofile, modbus)
        if not m.writes:
            log.info("Modbus-TCP writes are off: set [modbus] writes = true to accept them")

    async def stop(self) -> None:
        pass

    def components(self) -> list[Any]:
        return [self, self.watchdog]

    def tls_server(self) -> ModbusServer:
        """The Modbus/TCP Security server; a bad certificate or key file stops start-up in one line."""
        gw, m = self.gateway, self.config.modbus
        assert m.tls is not None
        try:
            context = server_context(m.tls.cert, m.tls.key, m.tls.client_ca)
        except TlsSetupError as e:
            raise StartupError(str(e)) from None
        return ModbusServer(
            gw.cmap,
            gw.store,
            writes=True,  # what a client may write is its role's business, in the write gate
            allow=m.allow,
            max_connections=m.max_connections,
            max_per_address=m.max_per_address,
            idle_timeout_s=m.idle_timeout_s,
            frame_timeout_s=m.frame_timeout_s,
            invalid_zero=m.invalid == "zero",
            gate=gw.gate,
            tls=context,
        )

    # --- health ----------------------------------------------------------------------------
    def _settings_warnings(self) -> list[str]:
        report = self.gateway.settings_report
        if report is not None and report.problems:
            used = {"backup": "its backup", "none": "the defaults"}.get(report.source, "the file")
            return [f"settings: {p}" for p in report.problems] + [f"settings: loaded from {used}"]
        return []

    def _watchdog_warnings(self) -> list[str]:
        return [
            f"setpoint {r.service}/{r.instance} {r.path} not refreshed: reverted from {r.old} to {r.new}"
            for r in self.watchdog.reverts[-10:]
        ]

    def _connections(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for label, server in (("modbus", self.gateway.modbus), ("modbus_tls", self.gateway.modbus_tls)):
            if server is not None:
                out[label] = {"open": len(server.connections), **server.policy.counts}
        http = self.gateway.http
        if http is not None:
            out["http"] = {"open": len(http.guard.connections), **http.guard.counts}
        return out
