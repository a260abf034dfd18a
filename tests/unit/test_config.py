"""Configuration: every key validated, unknown keys and bad values named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import Config, ConfigError, load_config, parse_config, render_config_docs
from tests.helpers import ROOT


def test_defaults() -> None:
    cfg = parse_config({})
    assert cfg == Config()
    assert cfg.modbus.listen == ("0.0.0.0", 502)
    assert cfg.modbus.invalid == "zero" and cfg.http is None  # invalid values read as a GX reads them


def test_full_example(tmp_path: Path) -> None:
    f = tmp_path / "gw.toml"
    f.write_text(
        """
state_dir = "/tmp/gx"
[modbus]
listen = "127.0.0.1:1502"
writes = false
allow = ["192.168.1.0/24", "::1/128"]
max_connections = 8
idle_timeout_s = 30
invalid = "sentinel"
[http]
listen = "[::1]:8080"
[[device]]
driver = "simulated"
kind = "battery"
instance = 512
[[device]]
driver = "simulated"
kind = "vebus"
instance = 276
name = "Quattro"
""",
        encoding="utf-8",
    )
    cfg = load_config(f)
    assert cfg.state_dir == Path("/tmp/gx")
    assert cfg.modbus.listen == ("127.0.0.1", 1502) and cfg.modbus.writes is False
    assert cfg.modbus.allow == ("192.168.1.0/24", "::1/128")
    assert cfg.modbus.idle_timeout_s == 30.0 and cfg.modbus.invalid == "sentinel"
    assert cfg.http is not None and cfg.http.listen == ("::1", 8080)
    assert [(d.kind, d.instance, d.name) for d in cfg.devices] == [("battery", 512, None), ("vebus", 276, "Quattro")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"modbus": {"listne": "1:2"}}, "modbus.listne: unknown key"),
        ({"colour": "red"}, "colour: unknown key"),
        ({"modbus": {"listen": "502"}}, "modbus.listen: expected HOST:PORT"),
        ({"modbus": {"listen": "0.0.0.0:70000"}}, "modbus.listen: port must be 0..65535"),
        ({"modbus": {"writes": "yes"}}, "modbus.writes: expected true or false"),
        ({"modbus": {"allow": ["10.0.0.0/33"]}}, "modbus.allow[0]: not a network"),
        ({"modbus": {"allow": "10.0.0.0/8"}}, "modbus.allow: expected a list"),
        ({"modbus": {"max_connections": 0}}, "modbus.max_connections: expected an integer 1..10000"),
        ({"modbus": {"idle_timeout_s": -1}}, "modbus.idle_timeout_s: expected a number > 0"),
        ({"modbus": {"invalid": "nan"}}, "modbus.invalid: expected one of zero, sentinel"),
        ({"modbus": 5}, "modbus: expected a table"),
        ({"device": [{"driver": "simulated", "instance": 1}]}, "device[0].kind: missing"),
        ({"device": [{"driver": "simulated", "kind": "battery"}]}, "device[0].instance: missing"),
        ({"device": [{"driver": "sunspec", "instance": 20}]}, "device[0].driver: 'sunspec' is not available"),
        ({"device": [{"driver": "modbus", "instance": 20}]}, "device[0].driver: expected one of"),
        (
            {"device": [{"driver": "simulated", "kind": "battery", "instance": 5, "host": "x"}]},
            "device[0].host: unknown key",
        ),
        (
            {"device": [{"driver": "simulated", "kind": "battery", "instance": i} for i in (1, 2)]},
            "device[1].kind: the simulator models one battery (device[0] is one)",
        ),
        (
            {"device": [{"driver": "simulated", "kind": "tank", "instance": 20}] * 2},
            "device[1].instance: 20 is already used by device[0]",
        ),
    ],
)
def test_bad_config_names_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[modbus\nlisten=1", encoding="utf-8")
    with pytest.raises(ConfigError, match="TOML syntax"):
        load_config(bad)


def test_config_docs_are_current() -> None:
    committed = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert committed == render_config_docs(), "docs/config.md is stale: run `make docs` and commit"
    for key in ("listen", "writes", "allow", "max_connections", "idle_timeout_s", "invalid", "state_dir"):
        assert f"`{key}`" in committed
