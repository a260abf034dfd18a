"""The [mqtt] section and the topic grammar: one-line refusals naming the key, and the
split of R/ and W/ topics (wildcards, unicode, other portals)."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, parse_config
from gateway.frontends.mqtt.topics import BadPayload, Request, Topics, parse_keepalive, parse_write, value_payload


def mqtt(**table: object) -> object:
    return parse_config({"mqtt": table}).mqtt


def test_a_broker_or_a_listener() -> None:
    c = mqtt(broker="mqtts://broker.example:8883", portal_id="abc123", topic_prefix="fleet/boat-1")
    assert c is not None and c.writes is False and c.keepalive_s == 60.0  # type: ignore[attr-defined]
    assert mqtt(listen="127.0.0.1:1883").listen == ("127.0.0.1", 1883)  # type: ignore[attr-defined]
    assert parse_config({}).mqtt is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, "mqtt: set one of broker"),
        ({"broker": "mqtt://h:1883", "listen": "127.0.0.1:1883"}, "mqtt: set one of broker"),
        ({"broker": "http://h:1883"}, "mqtt.broker: expected mqtt://HOST:PORT"),
        ({"broker": "mqtt://h:99999"}, "mqtt.broker: bad port"),
        ({"listen": "1883"}, "mqtt.listen: expected HOST:PORT"),
        ({"broker": "mqtt://h", "portal_id": "a/b"}, "mqtt.portal_id: portal id 'a/b'"),
        ({"broker": "mqtt://h", "portal_id": "a+#"}, "mqtt.portal_id"),
        ({"broker": "mqtt://h", "portal_id": "café"}, "mqtt.portal_id"),
        ({"broker": "mqtt://h", "topic_prefix": "site/+"}, "mqtt.topic_prefix"),
        ({"broker": "mqtt://h", "topic_prefix": "/site"}, "mqtt.topic_prefix"),
        ({"broker": "mqtt://h", "keepalive_s": 0}, "mqtt.keepalive_s"),
        ({"broker": "mqtt://h", "retain": True}, "mqtt.retain: unknown key"),
    ],
)
def test_bad_mqtt_config_is_one_line(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"mqtt": table})
    assert message in str(e.value) and "\n" not in str(e.value)


def test_topics_split_requests_of_this_portal_only() -> None:
    t = Topics("p1", "fleet/a")
    assert t.notify("battery", 512, "/Dc/0/Voltage") == "fleet/a/N/p1/battery/512/Dc/0/Voltage"
    assert t.subscriptions() == ["fleet/a/R/p1/#", "fleet/a/W/p1/#"]
    assert t.parse("fleet/a/R/p1/keepalive") == Request("R", "keepalive", None, "")
    assert t.parse("fleet/a/W/p1/vebus/276/Mode") == Request("W", "vebus", 276, "/Mode")
    assert t.parse("fleet/a/R/p1/solarcharger/279/Dc") == Request("R", "solarcharger", 279, "/Dc")
    for other in ("R/p1/keepalive", "fleet/a/R/p2/keepalive", "fleet/a/N/p1/x/1/Y", "fleet/a/W/p1/vebus/x/Mode"):
        assert t.parse(other) is None, other
    assert t.parse("fleet/a/W/p1/vebus/276//Mode") is None  # an empty level
    assert t.parse("fleet/a/W/p1/vebus/276/Modé") == Request("W", "vebus", 276, "/Modé")  # the gate refuses it


def test_payloads() -> None:
    assert value_payload(52.3) == b'{"value":52.3}'
    assert value_payload(float("nan")) == b'{"value":null}'
    assert value_payload(3, valid=False) == b'{"value":null}'
    assert parse_write(b'{"value": true}') == 1
    assert parse_write(b'{"value": "Name"}') == "Name"
    for bad in (b"", b"{", b"[1]", b'{"value": {"a": 1}}', b"\xff"):
        with pytest.raises(BadPayload):
            parse_write(bad)
    ka = parse_keepalive(b'{"keepalive-options": ["suppress-republish", {"full-publish-completed-echo": "x-1"}]}')
    assert ka.suppress_republish and ka.echo == "x-1"
    assert parse_keepalive(b"") == parse_keepalive(b"  ")
    with pytest.raises(BadPayload):
        parse_keepalive(b'{"keepalive-options": "suppress-republish"}')
