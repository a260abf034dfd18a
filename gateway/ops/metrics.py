"""Prometheus metrics at ``GET /metrics``, rendered on scrape from plain counters.

Nothing is counted through prometheus-client on a data path: the Modbus request handler bumps
integers in a flat list (``RequestHandler.requests``, ``exceptions``), the server keeps its
connection set and refusal count, the write gate its audit hook; this collector turns them into
metric families only when Prometheus asks (see docs/BENCHMARKS.md for the cost: none measurable).

A provider registry keeps it open: any component of the gateway (a source, the NMEA 2000
frontend) adds its own metrics by defining ``collect_metrics(self) -> Iterable[Metric]``
(``prometheus_client.core`` families, named ``gxgw_...``); other code calls
``MetricsCollector.register(provider)``. A provider that raises is logged and skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.core.derived import gateway_version
from gateway.core.writes import Writer, WriteRefused
from gateway.frontends.modbus.pdu import COUNTED_FUNCTIONS
from gateway.ops.health import device_online, last_update_age
from registers.values import Scalar

if TYPE_CHECKING:
    from gateway.ops.view import RunningGateway

log = logging.getLogger(__name__)

Provider = Callable[[], Iterable[Metric]]
FUNCTION_LABELS = (*(str(fc) for fc in COUNTED_FUNCTIONS), "other")
REGISTRY_KEY = web.AppKey("metrics_registry", CollectorRegistry)


class MetricsCollector(Collector):
    """The gateway's metrics: Modbus, writes, devices, and every registered provider."""

    def __init__(self, gateway: RunningGateway) -> None:
        self.gateway = gateway
        self.providers: list[Provider] = []
        self.writes_accepted: dict[str, int] = {}
        self.writes_refused: dict[tuple[str, str], int] = {}
        gateway.gate.audit_hooks.append(self._on_write)

    def register(self, provider: Provider) -> None:
        self.providers.append(provider)

    def _on_write(
        self, writer: Writer, service: str, instance: int, changes: Mapping[str, Scalar], refused: WriteRefused | None
    ) -> None:
        if refused is None:
            self.writes_accepted[writer.frontend] = self.writes_accepted.get(writer.frontend, 0) + 1
        else:
            key = (writer.frontend, refused.refusal.value)
            self.writes_refused[key] = self.writes_refused.get(key, 0) + 1

    def collect(self) -> Iterable[Metric]:
        yield InfoMetricFamily("gxgw_build", "gx-gateway version", value={"version": gateway_version()})
        yield from self._modbus()
        yield from self._writes()
        yield from self._devices()
        providers = [getattr(c, "collect_metrics", None) for c in self.gateway.components]
        for provider in [*(p for p in providers if callable(p)), *self.providers]:
            try:
                yield from provider()
            except Exception:
                log.exception("metrics provider %r failed; its metrics are left out of this scrape", provider)

    def _modbus(self) -> Iterable[Metric]:
        server = self.gateway.modbus
        requests = CounterMetricFamily(
            "gxgw_modbus_requests", "Modbus requests, by function code and unit id", labels=("function", "unit_id")
        )
        exceptions = CounterMetricFamily(
            "gxgw_modbus_exceptions",
            "Modbus exception replies, by function code, unit id and exception code",
            labels=("function", "unit_id", "code"),
        )
        connections = GaugeMetricFamily("gxgw_modbus_connections", "Open Modbus-TCP connections")
        refused = CounterMetricFamily("gxgw_modbus_connections_refused", "Modbus-TCP connections refused at accept")
        if server is not None:
            counts = server.handler.requests
            for index, n in enumerate(counts):
                if n:
                    requests.add_metric((FUNCTION_LABELS[index >> 8], str(index & 0xFF)), n)
            for (fc, unit, code), n in sorted(server.handler.exceptions.items()):
                exceptions.add_metric((str(fc), str(unit), f"0x{code:02X}"), n)
            connections.add_metric((), len(server.connections))
            refused.add_metric((), server.refused)
        yield from (requests, exceptions, connections, refused)

    def _writes(self) -> Iterable[Metric]:
        accepted = CounterMetricFamily(
            "gxgw_writes_accepted", "Writes carried out through the write gate, by frontend", labels=("frontend",)
        )
        for frontend, n in sorted(self.writes_accepted.items()):
            accepted.add_metric((frontend,), n)
        refused = CounterMetricFamily(
            "gxgw_writes_refused", "Writes refused, by frontend and reason", labels=("frontend", "reason")
        )
        for (frontend, reason), n in sorted(self.writes_refused.items()):
            refused.add_metric((frontend, reason), n)
        yield from (accepted, refused)

    def _devices(self) -> Iterable[Metric]:
        labels = ("service", "instance", "unit_id")
        online = GaugeMetricFamily("gxgw_device_online", "1 when the device is connected and publishing", labels=labels)
        age = GaugeMetricFamily(
            "gxgw_device_last_update_age_seconds", "Seconds since the device last published a value", labels=labels
        )
        now = time.monotonic()
        modbus = self.gateway.cmap.modbus
        for d in self.gateway.store.devices():
            unit = modbus.unit_for_instance(d.instance) if d.service in modbus.tables else None
            key = (d.service, str(d.instance), "" if unit is None else str(unit))
            online.add_metric(key, 1 if device_online(d) else 0)
            seconds = last_update_age(d, now)
            if seconds is not None:
                age.add_metric(key, seconds)
        yield from (online, age)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_metrics_routes(app: web.Application, gateway: RunningGateway) -> MetricsCollector:
    """``GET /metrics`` on ``app``: the gateway's collector plus process RSS/CPU (Linux)."""
    registry = CollectorRegistry(auto_describe=False)
    collector = MetricsCollector(gateway)
    registry.register(collector)
    ProcessCollector(registry=registry)
    app[REGISTRY_KEY] = registry
    app.router.add_get("/metrics", metrics)
    return collector
