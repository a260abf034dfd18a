"""What operations read of the running gateway, as a type: ``gateway.app.Gateway`` is one.

Typed here, by the reader, so that ops depends on the rooms it reads (the Store, the write
gate, the frontends' counters, the sources' addresses) and not on the composition root that
assembles them: app.py imports ops to mount its routes, and nothing in ops imports app.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gateway.core.health_report import Health
    from gateway.core.persist import LoadReport
    from gateway.core.store import Store
    from gateway.core.writes import WriteGate
    from gateway.frontends.http.api import HttpServer
    from gateway.frontends.modbus.server import ModbusServer
    from gateway.sources.registry import DeviceConfig, SourceContext
    from registers.model import CompiledMap


class ReportsStatus(Protocol):
    """A frontend whose state ``gx-gateway status`` shows (the MQTT frontend)."""

    def status(self) -> Mapping[str, Any]: ...


class RunningGateway(Protocol):
    @property
    def cmap(self) -> CompiledMap: ...
    @property
    def store(self) -> Store: ...
    @property
    def gate(self) -> WriteGate: ...
    @property
    def sources(self) -> SourceContext: ...
    @property
    def components(self) -> Sequence[object]: ...
    @property
    def devices(self) -> Sequence[DeviceConfig]:
        """The configured ``[[device]]`` tables."""

    @property
    def running(self) -> bool:
        """Started and not (being) stopped."""

    @property
    def starting(self) -> bool:
        """Between the first component's start and the last one's."""

    @property
    def modbus(self) -> ModbusServer | None: ...
    @property
    def modbus_tls(self) -> ModbusServer | None: ...
    @property
    def http(self) -> HttpServer | None: ...
    @property
    def mqtt(self) -> ReportsStatus | None:
        """The MQTT frontend, when [mqtt] is configured."""

    @property
    def health(self) -> Health:
        """Warnings and details the protections collect (gateway/guards.py)."""

    @property
    def settings_report(self) -> LoadReport | None:
        """How the settings file loaded (None before the settings started)."""
