"""What ``gx-gateway scan`` prints, and how ``--gateway`` merges in what a running gateway
polls: the busy one-client device recognised, kept instances, new ones that do not clash."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from gateway.cli.scan_tables import polled, render, suggest_instances, summary, with_gateway
from gateway.config import parse_config
from gateway.sources.network_scan import BUSY, Found

URL = "http://127.0.0.1:8088"
STATUS: dict[str, Any] = {
    "devices": [
        {"service": "pvinverter", "instance": 33, "name": "SolarEdge carport"},
        {"service": "grid", "instance": 34, "name": "Grid meter"},
        {"service": "acload", "instance": 40, "name": None},
        {"service": "battery", "instance": 512, "name": "House bank"},
    ],
    "sources": [
        {"driver": "sunspec", "host": "127.0.0.1", "port": 1502, "unit": 1, "role": "pvinverter",
         "position": "ac-out", "service": "pvinverter", "instance": 33, "online": True},
        {"driver": "sunspec", "host": "127.0.0.1", "port": 1502, "unit": 1, "role": "acload", "meter": 1,
         "service": "acload", "instance": 40, "online": True},
        {"driver": "meter", "host": "127.0.0.1", "port": 502, "unit": 1, "role": "grid", "model": "em24",
         "service": "grid", "instance": 34, "online": True},
    ],
}  # fmt: skip

EM24 = Found("127.0.0.1", 502, 1, "meter", "grid", "Carlo Gavazzi EM24 Ethernet", (("model", "em24"),))
NEW_METER = Found("127.0.0.2", 502, 2, "meter", "grid", "Eastron SDM630", (("model", "sdm630"),))
NEW_PV = Found("127.0.0.3", 502, 126, "sunspec", "pvinverter", "SMA STP 10.0 (SunSpec 103)")
BUSY_SE = Found("127.0.0.1", 1502, 0, "modbus", "", f"busy: {BUSY}")
BUSY_OTHER = Found("127.0.0.9", 1502, 0, "modbus", "", f"busy: {BUSY}")


def test_a_busy_port_the_gateway_polls_becomes_its_devices_with_their_instances() -> None:
    merged = with_gateway([EM24, BUSY_SE, NEW_METER, NEW_PV, BUSY_OTHER], polled(STATUS), URL)
    text = render(merged, [(d["service"], d["instance"]) for d in STATUS["devices"]])
    tables = tomllib.loads(text)["device"]
    got = [(d["host"], d["port"], d["driver"], d["instance"], d.get("role"), d.get("position")) for d in tables]
    assert got == [
        ("127.0.0.1", 502, "meter", 34, "grid", None),  # kept: SCADA reads the same unit ids
        ("127.0.0.1", 1502, "sunspec", 33, "pvinverter", "ac-out"),  # the busy SolarEdge, as polled
        ("127.0.0.1", 1502, "sunspec", 40, "acload", None),  # and its meter
        ("127.0.0.2", 502, "meter", 41, "acload", None),  # new: free instance; the one grid is taken
        ("127.0.0.3", 502, "sunspec", 42, "pvinverter", "ac-in-1"),
    ]
    assert tables[0]["model"] == "em24" and tables[2]["meter"] == 1
    assert "# SolarEdge carport at 127.0.0.1:1502 unit 1" in text
    assert f"# polled by the gateway at {URL} as pvinverter 33; it accepts one Modbus-TCP client" in text
    assert f"# already polled by the gateway at {URL} as grid 34" in text
    assert "# 127.0.0.9:1502: busy" in text  # nobody we know polls that one
    config = parse_config(tomllib.loads(text))
    assert len(config.devices) == 5
    assert summary(merged, 9, 2, 0.3).endswith("found 2 meter, 3 sunspec (3 already polled by the gateway)")


def test_without_a_gateway_nothing_is_kept_and_instances_start_at_40() -> None:
    pairs = suggest_instances([EM24, BUSY_SE, NEW_METER], used=[("grid", 40)])
    assert [(f.host, i) for f, i in pairs] == [("127.0.0.1", 41), ("127.0.0.2", 42)]
    text = render([EM24, NEW_METER])
    assert [d.get("role") for d in tomllib.loads(text)["device"]] == ["grid", "acload"]


@pytest.mark.parametrize(
    "status",
    [{}, {"devices": []}, {"devices": [], "sources": [{"driver": "meter"}]}, {"devices": [], "sources": "x"}],
)
def test_a_status_that_is_not_a_gateways_is_one_clear_error(status: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"sources|incomplete"):
        polled(status)
