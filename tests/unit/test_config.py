"""Configuration: every key validated, unknown keys and bad values named in one line.

[[device]] tables are checked against their driver's declared keys (gateway/sources); the
demo is a config file too (gateway/demo.toml), and the docs' demo column is read from it.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from unittest.mock import ANY

import pytest

from gateway.cli.main import build_parser
from gateway.cli.run import demo_config
from gateway.config import (
    Config,
    ConfigError,
    demo_toml,
    load_config,
    load_demo_config,
    parse_config,
    render_config_docs,
)
from gateway.sim.victron import DEFAULT_LAYOUT
from gateway.sources.drivers import DRIVERS
from gateway.sources.meter_rtu import PORT as METER_PORT
from gateway.sources.registry import COMMON_KEYS, SERIAL_PORT
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
service = "battery"
instance = 512
[[device]]
driver = "simulated"
service = "vebus"
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
    assert [(d.driver, d.option("service"), d.instance, d.name) for d in cfg.devices] == [
        ("simulated", "battery", 512, None),
        ("simulated", "vebus", 276, "Quattro"),
    ]


SIM_TANK = {"driver": "simulated", "service": "tank", "instance": 20}


def test_same_instance_in_another_service_is_fine() -> None:
    cfg = parse_config({"device": [SIM_TANK, {**SIM_TANK, "service": "temperature"}]})
    assert [(d.option("service"), d.instance) for d in cfg.devices] == [("tank", 20), ("temperature", 20)]


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
        ({"modbus": {"idle_timeout_s": -1}}, "modbus.idle_timeout_s: expected a number >= 1"),
        # issue 11, finding 9: what used to slip through
        ({"modbus": {"allow": [10]}}, 'modbus.allow[0]: expected a string like "192.168.1.0/24", got 10'),
        ({"modbus": {"idle_timeout_s": 1e-9}}, "modbus.idle_timeout_s: expected a number >= 1, got 1e-09"),
        ({"modbus": {"frame_timeout_s": 0.01}}, "modbus.frame_timeout_s: expected a number >= 0.5"),
        ({"modbus": {"max_per_address": 0}}, "modbus.max_per_address: expected an integer 1..10000"),
        ({"modbus": {"tls": {"roles": {"op": "admin"}}}}, "modbus.tls.roles.op: expected one of read-only, read-write"),
        ({"modbus": {"tls": {"cert": 5}}}, "modbus.tls.cert: expected a file path"),
        ({"setpoints": {"timeout_s": 0.5}}, "setpoints.timeout_s: expected a number >= 1"),
        ({"modbus": {"invalid": "nan"}}, "modbus.invalid: expected one of zero, sentinel"),
        ({"modbus": 5}, "modbus: expected a table"),
        ({"http": {"writes": 1}}, "http.writes: expected true or false"),
        ({"http": {"token": 5}}, "http.token: expected a string"),
        ({"http": {"allow": ["x"]}}, "http.allow[0]: not a network"),
        ({"http": {}, "discovery": {"navico": ["eth0"]}}, "discovery.navico[0]: not an IPv4 interface address"),
        ({"http": {}, "discovery": {"mdns": "127.0.0.1"}}, "discovery.mdns: expected a list"),
        ({"discovery": {"ssdp": ["127.0.0.1"]}}, "discovery: announces the web app, so it needs an [http] section"),
        ({"device": {"driver": "simulated"}}, "device: use [[device]] tables"),
        ({"device": [5]}, "device[0]: expected a table"),
        (
            {"device": [{"instance": 1}]},
            "device[0].driver: missing (known: simulated, sunspec, meter, fronius, sma, victron-ble, mopeka, ruuvi, vedirect, canbms)",
        ),
        (
            {"device": [{"driver": "sma-speedwire", "instance": 20}]},
            "device[0].driver: unknown driver 'sma-speedwire' (known: simulated, sunspec, meter, fronius, sma, victron-ble, mopeka, ruuvi, vedirect, canbms)",
        ),
        (
            {"device": [{"driver": 7, "instance": 20}]},
            "device[0].driver: unknown driver 7 (known: simulated, sunspec, meter, fronius, sma, victron-ble, mopeka, ruuvi, vedirect, canbms)",
        ),
        ({"device": [{"driver": "sunspec", "instance": 20}]}, "device[0].host: missing (address of the device)"),
        (
            {"device": [{"driver": "sunspec", "instance": 20, "host": "10.0.0.5", "position": "roof"}]},
            "device[0].position: expected one of ac-in-1, ac-out, ac-in-2, got 'roof'",
        ),
        (
            {"device": [{"driver": "sunspec", "instance": 20, "host": "10.0.0.5", "role": "battery"}]},
            "device[0].role: expected one of pvinverter, grid, genset, acload, evcharger",
        ),
        (
            {"simulator": [{"name": "a", "kind": "fronius"}, {"name": "a", "kind": "sma"}]},
            "simulator[1].name: 'a' is already the name of another simulator",
        ),
        ({"simulator": [{"name": "a", "kind": "huawei"}]}, "simulator[0].kind: expected one of fronius,"),
        ({"device": [{"driver": "simulated", "instance": 1}]}, "device[0].service: missing (the service type: vebus,"),
        ({"device": [{"driver": "simulated", "service": "battery"}]}, "device[0].instance: missing"),
        (
            {"device": [{"driver": "simulated", "service": "boat", "instance": 1}]},
            "device[0].service: expected one of vebus,",
        ),
        (
            {"device": [{"driver": "simulated", "service": "tank", "instance": -1}]},
            "device[0].instance: expected an integer 0..65535",
        ),
        (
            {"device": [{"driver": "simulated", "service": "tank", "instance": 1, "name": 5}]},
            "device[0].name: expected a string",
        ),
        (  # a common key of real drivers is still not a key of this one
            {"device": [SIM_TANK, SIM_TANK | {"instance": 21}, {**SIM_TANK, "instance": 22, "host": "10.0.0.9"}]},
            "device[2].host: not a key of driver 'simulated' (its keys: driver, instance, name, service, via)",
        ),
        (  # the old name of `service`
            {"device": [{"driver": "simulated", "kind": "battery", "instance": 5}]},
            "device[0].kind: not a key of driver 'simulated'",
        ),
        (
            {"device": [{"driver": "simulated", "service": "battery", "instance": i} for i in (1, 2)]},
            "device[1].service: the simulator models one battery (device[0] is one)",
        ),
        (
            {"device": [SIM_TANK, {**SIM_TANK, "name": "again"}]},
            "device[1].instance: 20 is already used by device[0] of the same service (tank)",
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


def test_every_driver_key_is_documented_and_common_keys_are_shared() -> None:
    docs = render_config_docs()
    for spec in DRIVERS.values():
        assert f'### driver = "{spec.name}"' in docs
        for key in spec.all_keys:
            assert f"| `{key.name}` |" in docs, (spec.name, key.name)
            if key is SERIAL_PORT or key is METER_PORT:  # a device path (the meter's: or a TCP port)
                continue
            if key.name in COMMON_KEYS:  # a common key is the one key (a driver may change its default)
                shared = COMMON_KEYS[key.name]
                assert key.check is shared.check and key.doc == shared.doc, (spec.name, key.name)


def test_demo_toml_loads_and_lays_out_the_demo_installation() -> None:
    cfg = load_demo_config()
    assert cfg.modbus.listen == ("127.0.0.1", 5020) and cfg.modbus.writes is True
    assert cfg.modbus.invalid == "zero"
    assert cfg.http is not None and cfg.http.listen == ("127.0.0.1", 8088)
    assert {d.driver for d in cfg.devices} == {
        "simulated",
        "sunspec",
        "meter",
        "fronius",
        "victron-ble",
        "mopeka",
        "vedirect",
        "canbms",
    }
    ble = {d.instance: (d.driver, d.option("source")) for d in cfg.devices if d.driver in ("victron-ble", "mopeka")}
    assert ble == {45: ("victron-ble", ANY), 46: ("mopeka", ANY)}  # a SmartShunt and a Mopeka tank sensor
    # written on load, looped (the demo runs for hours), read through this process's own link
    assert all(Path(source.removeprefix("replay-loop:")).is_file() for _, source in ble.values())
    assert cfg.n2k is not None and Path(cfg.n2k.input.removeprefix("candump-loop:")).is_file()
    simulated = [d for d in cfg.devices if d.driver == "simulated"]
    assert tuple((d.option("service"), d.instance, d.name) for d in simulated) == DEFAULT_LAYOUT
    pv = {
        d.instance: (d.option("simulator"), d.options.get("role", "pvinverter"), d.option("position"))
        for d in cfg.devices[len(simulated) :]
        if d.driver in ("sunspec", "meter", "fronius")
    }
    assert pv == {
        32: ("fronius", "pvinverter", "ac-in-1"),
        33: ("solaredge", "pvinverter", "ac-in-1"),
        34: ("em24", "grid", "ac-in-1"),  # a Carlo Gavazzi EM24 (driver meter) measures the site
        35: ("fronius-http", "pvinverter", "ac-out"),  # a Fronius over the Solar API (driver fronius)
    }
    native = {d.instance: (d.driver, d.option("link")) for d in cfg.devices if d.driver in ("vedirect", "canbms")}
    assert native == {
        278: ("vedirect", "mppt-roof"),  # the plant's MPPTs and bank, over VE.Direct ptys and a CAN bus
        279: ("vedirect", "mppt-bimini"),
        277: ("vedirect", "house-shunt"),
        512: ("canbms", "house-bms"),
    }
    assert {s.name: s.kind for s in cfg.simulators} == {
        "fronius": "fronius",
        "solaredge": "solaredge",
        "em24": "em24",
        "fronius-http": "fronius-solar-api",
    }


def _doc_tables(markdown: str) -> dict[str, dict[str, list[str]]]:
    """{section title: {key: [cells after the key]}} of the docs' tables."""
    tables: dict[str, dict[str, list[str]]] = {}
    title = ""
    for line in markdown.splitlines():
        if line.startswith("## "):
            title = line[3:]
        elif line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tables.setdefault(title, {})[cells[0].strip("`")] = cells[1:]
    return tables


def _toml_literal(v: object) -> str:
    return f'"{v}"' if isinstance(v, str) else str(v).lower()


def test_docs_demo_column_is_demo_toml() -> None:
    """Read independently of the renderer: the column shows demo.toml's value where it sets one."""
    committed = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    demo = tomllib.loads(demo_toml())
    tables = _doc_tables(committed)
    for section in ("modbus", "http", "discovery", "n2k"):
        rows = tables[f"[{section}]"]
        for key, (_, demo_cell, _) in rows.items():
            want = _toml_literal(demo[section][key]) if key in demo[section] else "same"
            assert demo_cell == want, (section, key)
    # state_dir is the demo command's (a temporary folder)
    assert set(demo) <= {"modbus", "http", "discovery", "device", "simulator", "n2k", "control"}
    assert "temporary folder" in tables["top level"]["state_dir"][1]
    assert f"```toml\n{demo_toml().rstrip()}\n```" in committed  # and the whole file, verbatim


def test_demo_flags_override_demo_toml(tmp_path: Path) -> None:
    parse = build_parser().parse_args
    plain = demo_config(parse(["demo"]), tmp_path)
    assert plain == dataclasses.replace(load_demo_config(), state_dir=tmp_path)
    flagged = demo_config(parse(["demo", "--modbus", "0.0.0.0:1502", "--http", "off"]), tmp_path)
    assert flagged.modbus == dataclasses.replace(plain.modbus, listen=("0.0.0.0", 1502))  # only listen changes
    assert flagged.http is None and flagged.devices == plain.devices
    assert flagged.discovery.navico == flagged.discovery.ssdp == flagged.discovery.mdns == ()  # nothing to announce
    other_http = demo_config(parse(["demo", "--http", "[::1]:9000"]), tmp_path)
    assert other_http.http is not None and other_http.http.listen == ("::1", 9000)
    assert other_http.http.writes is True  # only listen changes
    with pytest.raises(ConfigError, match=r"^--modbus: expected HOST:PORT, got '5020'$"):
        demo_config(parse(["demo", "--modbus", "5020"]), tmp_path)


def test_an_empty_config_is_read_only() -> None:
    """Issue 11, finding 9: an empty config used to accept writes from anyone."""
    cfg = parse_config({})
    assert cfg.modbus.writes is False
    assert cfg.modbus.tls is None
    assert load_demo_config().modbus.writes is True  # the demo on loopback keeps them


def test_web_writes_are_off_unless_configured_and_on_in_the_demo() -> None:
    http = parse_config({"http": {}}).http
    assert http is not None and http.writes is False and http.token == "" and http.allow == ()
    assert parse_config({}).discovery.navico == ()  # every announcement off by default
    demo = load_demo_config()
    assert demo.http is not None and demo.http.writes is True
    d = demo.discovery
    assert d.navico == d.ssdp == d.mdns == ("127.0.0.1",)  # the demo announces on loopback only
