"""The ``[mqtt]`` section: its keys (the config schema and docs/config.md read them) and its
parsed form. Declared here, beside the frontend, so gateway/config.py only lists the section;
nothing here imports the MQTT client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from gateway.core.keys import ConfigError, Key, at_least, boolean, check_table, integer, parse_listen, text
from gateway.frontends.mqtt.topics import check_portal_id, check_prefix

SCHEMES: Final = {"mqtt": 1883, "mqtts": 8883}


def broker_url(where: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"{where}: expected mqtt://HOST:PORT or mqtts://HOST:PORT, got {v!r}")
    if v:
        parsed = urlsplit(v)
        try:
            parsed.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ConfigError(f"{where}: bad port in {v!r}") from None
        if parsed.scheme not in SCHEMES or not parsed.hostname or parsed.path not in ("", "/"):
            raise ConfigError(f"{where}: expected mqtt://HOST:PORT or mqtts://HOST:PORT, got {v!r}")
    return v


def optional_listen(where: str, v: Any) -> tuple[str, int] | None:
    return None if v == "" else parse_listen(where, v)


def portal(where: str, v: Any) -> str:
    try:
        return check_portal_id(where, text(where, v)) if v != "" else ""
    except ValueError as e:
        raise ConfigError(str(e)) from None


def prefix(where: str, v: Any) -> str:
    try:
        return check_prefix(where, text(where, v))
    except ValueError as e:
        raise ConfigError(str(e)) from None


MQTT: Final = (
    Key("broker", "", broker_url, "mqtt://HOST:PORT or mqtts://HOST:PORT of an existing broker to publish to"),
    Key("listen", "", optional_listen, "HOST:PORT of a broker the gateway runs itself (Mosquitto, docs/mqtt.md)"),
    Key("writes", False, boolean, "carry out W/ writes; false (the default) refuses them (logged)"),
    Key("portal_id", "", portal, "the installation's id in every topic; empty = the gateway's serial"),
    Key("topic_prefix", "", prefix, "put before N/, R/ and W/ (e.g. site/boat-1), for a shared fleet broker"),
    Key("keepalive_s", 60.0, at_least(1.0), "changes are published this long after a client's keep-alive"),
    Key("queue_limit", 50_000, integer(100, 10_000_000), "topics waiting for a slow broker; past it the oldest drop"),
    Key("client_id", "", text, "the MQTT client id; empty = gx-gateway-<portal id>"),
    Key("username", "", text, "broker user name (empty: none)"),
    Key("password", "", text, "broker password"),
    Key("ca_file", "", text, "mqtts: CA certificate(s) (PEM) to trust; empty = the system's"),
    Key("cert_file", "", text, "mqtts: client certificate (PEM), for brokers that ask for one"),
    Key("key_file", "", text, "mqtts: the client certificate's private key (PEM)"),
    Key("homeassistant_discovery", False, boolean, "publish retained Home Assistant discovery documents"),
)


@dataclass(frozen=True, slots=True)
class MqttConfig:
    broker: str = ""
    listen: tuple[str, int] | None = None
    writes: bool = False
    portal_id: str = ""
    topic_prefix: str = ""
    keepalive_s: float = 60.0
    queue_limit: int = 50_000
    client_id: str = ""
    username: str = ""
    password: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    homeassistant_discovery: bool = False


def parse_mqtt(table: Any) -> MqttConfig:
    config = MqttConfig(**check_table("mqtt", table, MQTT))
    if bool(config.broker) == (config.listen is not None):
        raise ConfigError("mqtt: set one of broker (an existing broker) or listen (run one here)")
    return config
