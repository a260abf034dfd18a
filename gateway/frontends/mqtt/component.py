"""The MQTT frontend as a gateway component: an embedded broker (``listen``) or an existing one
(``broker``), the Venus behaviour on the Store, and the connection between them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from gateway.core.components import StartupError
from gateway.core.store import Store
from gateway.core.writes import WriteGate
from gateway.frontends.mqtt.broker import Broker
from gateway.frontends.mqtt.connection import BrokerAddress, Connection, Credentials
from gateway.frontends.mqtt.ha_discovery import Discovery
from gateway.frontends.mqtt.options import MqttConfig
from gateway.frontends.mqtt.outbox import Outbox
from gateway.frontends.mqtt.topics import Topics
from gateway.frontends.mqtt.venus import Venus
from registers.model import CompiledMap

log = logging.getLogger(__name__)


class MqttFrontend:
    def __init__(
        self, store: Store, cmap: CompiledMap, gate: WriteGate, config: MqttConfig, serial: Callable[[], str]
    ) -> None:
        self.store = store
        self.cmap = cmap
        self.gate = gate
        self.config = config
        self.serial = serial
        self.broker: Broker | None = None
        self.venus: Venus | None = None
        self.connection: Connection | None = None
        self.outbox = Outbox(config.queue_limit)

    @property
    def address(self) -> BrokerAddress | None:
        return self.connection.address if self.connection is not None else None

    async def start(self) -> None:
        c = self.config
        if c.listen is not None:
            self.broker = Broker(*c.listen)
            await self.broker.start()
            host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.broker.host, self.broker.host)
            address = BrokerAddress(host, self.broker.port, tls=False)
        else:
            address = BrokerAddress.parse(c.broker)
        portal = c.portal_id or self.serial()
        topics = Topics(portal, c.topic_prefix)
        discovery = Discovery(self.cmap, topics, c.writes) if c.homeassistant_discovery else None
        self.venus = Venus(
            self.store,
            self.cmap,
            self.gate,
            topics,
            self.outbox,
            writes=c.writes,
            keepalive_s=c.keepalive_s,
            discovery=discovery,
        )
        credentials = Credentials(
            c.client_id or f"gx-gateway-{portal}", c.username, c.password, c.ca_file, c.cert_file, c.key_file
        )
        self.connection = Connection(address, credentials, self.venus, self.outbox)
        try:
            self.connection.start()
        except (OSError, ValueError) as e:  # a TLS file that is missing or not PEM
            await self.stop()
            raise StartupError(f"mqtt: TLS files: {e}") from None
        self.venus.start(f"{address.host}:{address.port}")

    async def stop(self) -> None:
        if self.connection is not None:
            await self.connection.stop()
        if self.venus is not None:
            await self.venus.stop()
        if self.broker is not None:
            await self.broker.stop()

    def status(self) -> dict[str, Any]:
        """For ``gx-gateway status`` and /api/v1/status: connected, queued, dropped, keep-alive."""
        conn, venus = self.connection, self.venus
        last = venus.last_keepalive_wall if venus is not None else None
        return {
            "broker": str(conn.address) if conn is not None else None,
            "embedded": self.broker is not None,
            "portal_id": venus.topics.portal if venus is not None else None,
            "connected": bool(conn and conn.connected),
            "last_error": conn.last_error if conn is not None else None,
            "queued": len(self.outbox),
            "sent": self.outbox.sent,
            "dropped": self.outbox.dropped,
            "last_keepalive_s_ago": round(time.time() - last, 1) if last is not None else None,
            "publishing": bool(venus and venus.alive),
            "full_publishes": venus.full_publishes if venus is not None else 0,
            "writes_refused": venus.refused if venus is not None else 0,
        }
