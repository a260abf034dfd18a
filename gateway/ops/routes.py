"""Mounts the operations endpoints (/healthz, /api/v1/status, /metrics) on the HTTP frontend.

Kept apart from gateway/frontends/http so the web app and the operations endpoints change independently:
app.py wraps the HTTP server's construction with ``with_ops_routes`` and that is all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.frontends.http.api import HttpServer
from gateway.ops.health import add_health_routes
from gateway.ops.metrics import add_metrics_routes

if TYPE_CHECKING:
    from gateway.ops.view import RunningGateway


def with_ops_routes(server: HttpServer, gateway: RunningGateway) -> HttpServer:
    """Add the routes to the server's application (before it starts, while routes may be added)."""
    app = server.runner.app
    add_health_routes(app, gateway)
    add_metrics_routes(app, gateway)
    return server
