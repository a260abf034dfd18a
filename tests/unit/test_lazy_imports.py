"""A gateway imports the heavy parts only when its config asks for them.

The NMEA 2000 stack (nmea2000 + python-can, about 20 MB resident), the web frontend
(aiohttp), discovery (zeroconf, async_upnp_client), metrics (prometheus_client), TLS
(cryptography) and the Solar API simulator (aiohttp) cost memory that a gateway without [n2k], [http],
[[simulator]], TLS or such drivers should not pay (docs/BENCHMARKS.md, memory). Each case
starts ``gx-gateway run`` in its own process and reads that process's ``sys.modules`` once
it is ready; the [http] and [n2k] cases show that the probe sees modules that are loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

CHILD = Path(__file__).with_name("modules_child.py")
BASE = """
[modbus]
listen = "127.0.0.1:0"

[[device]]
driver = "simulated"
service = "battery"
instance = 512
"""
N2K_STACK = ("nmea2000", "can", "gateway.frontends.n2k", "gateway.transports.can", "serial_asyncio")
WEB = ("aiohttp", "gateway.frontends.http.api", "gateway.ops.routes", "prometheus_client")
DISCOVERY = ("zeroconf", "async_upnp_client", "gateway.frontends.http.discovery")
TLS = ("cryptography",)
# The simulators' config keys come with their module (0.6 MB, stdlib only); the Solar API
# simulator's aiohttp web server comes with a fronius-solar-api [[simulator]] only.
SIMULATORS = ("gateway.sim.protocols.fronius_sim",)
SCAN = ("rich", "gateway.cli.scan.rich")  # the scan command's progress bar
MQTT = ("aiomqtt", "paho", "gateway.frontends.mqtt.connection")


def loaded_modules(tmp_path: Path, extra: str = "") -> set[str]:
    config = tmp_path / "gateway.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n{BASE}{extra}', encoding="utf-8")
    res = subprocess.run(
        [sys.executable, str(CHILD), str(config)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 1, res.stdout + res.stderr
    names = set(json.loads(lines[0]))
    assert "gateway.frontends.modbus.server" in names  # it ran the gateway
    return names


def test_a_plain_gateway_imports_none_of_the_heavy_parts(tmp_path: Path) -> None:
    names = loaded_modules(tmp_path)
    for module in (*N2K_STACK, *WEB, *DISCOVERY, *TLS, *SIMULATORS, *SCAN, *MQTT):
        assert module not in names, f"{module} is imported by a gateway without the part that needs it"


def test_mqtt_loads_the_mqtt_client_only(tmp_path: Path) -> None:
    names = loaded_modules(tmp_path, '\n[mqtt]\nbroker = "mqtt://127.0.0.1:1"\n')  # refused: it retries
    assert set(MQTT) <= names
    for module in (*N2K_STACK, *WEB, *DISCOVERY, *TLS):
        assert module not in names, f"{module} is imported by a gateway with [mqtt] alone"


def test_http_loads_the_web_frontend_only(tmp_path: Path) -> None:
    names = loaded_modules(tmp_path, '\n[http]\nlisten = "127.0.0.1:0"\n')
    assert set(WEB) <= names
    for module in (*N2K_STACK, *DISCOVERY, *TLS, *SIMULATORS):
        assert module not in names, f"{module} is imported by a gateway with [http] alone"


def test_n2k_loads_the_nmea2000_stack(tmp_path: Path) -> None:
    names = loaded_modules(tmp_path, '\n[n2k]\ninterface = "virtual:lazy-imports"\n')
    assert {"nmea2000", "can", "gateway.frontends.n2k"} <= names
    for module in (*WEB, *DISCOVERY, *TLS, *SIMULATORS):
        assert module not in names, f"{module} is imported by a gateway with [n2k] alone"


@pytest.mark.parametrize("kind", ["fronius-solar-api", "fronius"])
def test_a_simulator_loads_its_own_protocol_only(tmp_path: Path, kind: str) -> None:
    names = loaded_modules(tmp_path, f'\n[[simulator]]\nname = "sim"\nkind = "{kind}"\n')
    web_sim = "gateway.sim.protocols.fronius_sim"  # the Solar API simulator is an aiohttp web server
    assert (web_sim in names) == (kind == "fronius-solar-api")
    for module in (*N2K_STACK, *DISCOVERY, *TLS):
        assert module not in names
