"""``run`` (a config file) and ``demo`` (the packaged demo.toml, flags over its keys): one
start-up path, two ready-banners."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

from gateway.app import Gateway, StartupError, run_loop, serve
from gateway.cli.maps import load_map
from gateway.cli.parser import AddCommand
from gateway.config import (
    Config,
    ConfigError,
    DiscoveryConfig,
    HttpConfig,
    N2kConfig,
    load_config,
    load_demo_config,
    parse_interface_key,
    parse_listen,
)
from gateway.frontends.mqtt.options import parse_mqtt
from gateway.sim.protocols.simulators import Simulators
from gateway.transports.replay import unplug_file
from registers import CompiledMap, MappingError

log = logging.getLogger("gx-gateway")


DEMO_HINTS = """\
Try it (mbpoll; -0 = addresses as sent on the wire, as in the GX register list):
  mbpoll -0 -1 -p {port} -a 100 -r 840 -c 4 -t 3 {host}   battery V x10, A x10, W, SOC %
  mbpoll -0 -1 -p {port} -a 100 -r 843 -t 3 {host}        battery SOC, %
  mbpoll -0 -1 -p {port} -a 100 -r 817 -t 3 {host}        AC consumption L1, W
  mbpoll -0 -1 -p {port} -a 227 -r 33 -t 4 {host}         MultiPlus-II /Mode (3 = on, 4 = off)
  mbpoll -0 -1 -p {port} -a 227 -r 33 -t 4 {host} 4       switch it off (a write; 3 switches it on)
  mbpoll -0 -1 -p {port} -a 225 -r 259 -c 3 -t 3 {host}   battery monitor V x100, A x10, W
  mbpoll -0 -1 -p {port} -a 32 -r 1026 -c 13 -t 4 {host}  Fronius (SunSpec): position, L1-L3 V x10, A x10, W, kWh x100
  mbpoll -0 -1 -p {port} -a 32 -r 1052 -c 3 -t 4:int -B {host}   its power, max power, power limit (W)
  mbpoll -0 -1 -p {port} -a 32 -r 1056 -t 4:int -B {host} 2000   cap at 2000 W (reverts within 45 s)
  mbpoll -0 -1 -p {port} -a 100 -r 808 -c 12 -t 3 {host}  system: PV on output, PV on grid (L1-L3), ... consumption
Register list: docs/registers.md. Ctrl-C stops."""


def unit_table(gateway: Gateway) -> list[str]:
    """Where each device answers, derived from the Store and unit_ids.csv (never a copy)."""
    rows = []
    for d in gateway.store.devices():
        unit = gateway.cmap.modbus.unit_for_instance(d.instance)
        name = d.get("/CustomName")
        label = f"{d.service} {d.instance}" + (f" ({name})" if isinstance(name, str) and name else "")
        rows.append((unit if unit is not None else -1, label))
    lines = [f"  unit {unit if unit >= 0 else '-':>3}  {label}" for unit, label in sorted(rows)]
    return lines


def _demo_ready(gateway: Gateway) -> None:
    assert gateway.modbus is not None
    host, port = gateway.modbus.sockets[0]
    print("gx-gateway demo: a simulated installation laid out like a Cerbo GX, no hardware needed.")
    print(f"  Modbus-TCP  {host}:{port}")
    if gateway.http is not None:
        h_host, h_port = gateway.http.sockets[0]
        print(f"  MFD app     http://{h_host}:{h_port}/")
        print(f"  JSON API    http://{h_host}:{h_port}/api/v1/devices  (OpenAPI: /api/v1/openapi.json)")
    if gateway.n2k is not None:
        print(f"  NMEA 2000   {gateway.n2k.settings.interface} (PGN map: docs/pgns.md)")
    mqtt = gateway.mqtt.status() if gateway.mqtt is not None else None
    if mqtt is not None:
        print(f"  MQTT        {mqtt['broker']}, portal id {mqtt['portal_id']} (docs/mqtt.md)")
    print("Devices:")
    print("\n".join(unit_table(gateway)))
    unplug = unplug_lines(gateway)
    if unplug:
        print("Pull a cable (VE.Direct, CAN-bus BMS): /Connected 0 within 3-5 s; rm the file to plug it back:")
        print("\n".join(unplug))
    replays = replay_lines(gateway)
    if replays:
        print("Stop a replay (NMEA 2000 senders, Bluetooth sensors): /Connected 0 within 10 s; rm the file to resume:")
        print("\n".join(replays))
    scan = scan_command(gateway)
    if scan:
        print(f"Find the simulated devices as on a real network:\n  {scan}")
    if mqtt is not None and gateway.mqtt is not None and gateway.mqtt.address is not None:
        a = gateway.mqtt.address
        print(f"Watch MQTT (a keep-alive every 30 s keeps values coming):\n  {mqtt_hint(a.host, a.port, mqtt)}")
    print(DEMO_HINTS.format(host=host, port=port), flush=True)


def mqtt_hint(host: str, port: int, status: dict[str, object]) -> str:
    portal = status["portal_id"]
    return (
        f"mosquitto_sub -h {host} -p {port} -v -t 'N/{portal}/#' &"
        f" mosquitto_pub -h {host} -p {port} -t 'R/{portal}/keepalive' -n"
    )


def unplug_lines(gateway: Gateway) -> list[str]:
    """How to unplug each device the demo feeds over VE.Direct or CAN (its ``link``)."""
    lines = []
    for d in gateway.config.devices:
        link = d.options.get("link")
        if not link:
            continue
        try:
            control = gateway.sources.endpoints.address(f"{link}.unplug")[0]
        except StartupError:
            continue
        unit = gateway.cmap.modbus.unit_for_instance(d.instance)
        lines.append(f"  touch {control}   # {d.driver} {link} (unit {unit})")
    return lines


REPLAYS: Final = ("candump-replay:", "candump-loop:", "replay:", "replay-loop:")


def replay_lines(gateway: Gateway) -> list[str]:
    """How to stop each replay the demo reads (N2K in, a BLE source): ``touch`` its unplug file."""
    units: dict[str, list[str]] = {}  # spec -> what it feeds
    n2k = gateway.config.n2k
    if n2k is not None and n2k.input.startswith(REPLAYS):
        senders = [  # the senders heard so far (their claims open the replay)
            f"{d.service} unit {gateway.cmap.modbus.unit_for_instance(d.instance)}"
            for d in gateway.store.devices()
            if d.get("/Mgmt/ProcessName") == "n2k-in"
        ]
        units[n2k.input] = ["NMEA 2000 in", *senders]
    for d in gateway.config.devices:
        source = str(d.options.get("source", ""))
        if source.startswith(REPLAYS):
            unit = gateway.cmap.modbus.unit_for_instance(d.instance)
            units.setdefault(source, []).append(f"{d.driver} unit {unit}")
    return [
        f"  touch {unplug_file(Path(spec.partition(':')[2]))}   # {', '.join(feeds)}" for spec, feeds in units.items()
    ]


def scan_command(gateway: Gateway) -> str | None:
    """The `gx-gateway scan` command that finds the demo's [[simulator]]s (their ports); with
    ``--gateway`` when the HTTP API is on, so the SolarEdge (one client: the demo polls it) is
    recognised through the gateway."""
    addresses = sorted(
        sim.address for c in gateway.components if isinstance(c, Simulators) for sim in c.by_name.values()
    )
    if not addresses:
        return None
    hosts = ",".join(dict.fromkeys(h for h, _ in addresses))
    command = f"gx-gateway scan --hosts {hosts} --ports {','.join(str(p) for _, p in addresses)}"
    if gateway.http is not None:
        h_host, h_port = gateway.http.sockets[0]
        h_host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(h_host, f"[{h_host}]" if ":" in h_host else h_host)
        command += f" --gateway http://{h_host}:{h_port}"
    return command


def _run_ready(gateway: Gateway) -> None:
    assert gateway.modbus is not None
    host, port = gateway.modbus.sockets[0]
    log.info("Modbus-TCP listening on %s:%d", host, port)
    for label, server in (("Modbus/TCP Security", gateway.modbus_tls), ("HTTP", gateway.http)):
        if server is not None:
            log.info("%s listening on %s:%d", label, *server.sockets[0][:2])


def _serve(cmap: CompiledMap, config: Config, on_ready: Callable[[Gateway], None]) -> int:
    """The one start-up path of `run` and `demo`."""
    gateway = Gateway(cmap, config)
    try:
        run_loop(lambda: serve(gateway, on_ready))
    except StartupError as e:
        print(f"gx-gateway: {e}", file=sys.stderr)
        return 1
    return 0


def _load_config(load: Callable[[], Config], mappings: str | None) -> tuple[Config, CompiledMap] | int:
    """The config and the compiled map, or the exit code after saying why not."""
    try:
        config = load()
        cmap = load_map(mappings, n2k=config.n2k is not None)
    except ConfigError as e:
        print(f"gx-gateway: {e}", file=sys.stderr)
        return 2
    except MappingError as e:
        for p in e.problems:
            print(p, file=sys.stderr)
        print("gx-gateway: the mappings do not compile; not starting", file=sys.stderr)
        return 1
    return config, cmap


def cmd_run(args: argparse.Namespace) -> int:
    loaded = _load_config(lambda: load_config(Path(args.config)), args.mappings)
    if isinstance(loaded, int):
        return loaded
    return _serve(loaded[1], loaded[0], _run_ready)


def demo_config(args: argparse.Namespace, state_dir: Path) -> Config:
    """demo.toml with the flags given on the command line applied over its keys."""
    config = dataclasses.replace(load_demo_config(), state_dir=state_dir)
    if args.modbus is not None:
        modbus = dataclasses.replace(config.modbus, listen=parse_listen("--modbus", args.modbus))
        config = dataclasses.replace(config, modbus=modbus)
    if args.n2k == "off":
        config = dataclasses.replace(config, n2k=None)
    elif args.n2k is not None:
        n2k = dataclasses.replace(config.n2k or N2kConfig(), interface=parse_interface_key("--n2k", args.n2k))
        config = dataclasses.replace(config, n2k=n2k)
    if args.mqtt_broker or args.mqtt_listen:  # the demo takes W/ writes as it takes Modbus writes
        table = {"broker": args.mqtt_broker or "", "listen": args.mqtt_listen or "", "writes": True}
        config = dataclasses.replace(config, mqtt=parse_mqtt(table))
    if args.http == "off":  # no web app, so nothing to announce either
        config = dataclasses.replace(config, http=None, discovery=DiscoveryConfig())
    elif args.http is not None:
        http = dataclasses.replace(config.http or HttpConfig(), listen=parse_listen("--http", args.http))
        config = dataclasses.replace(config, http=http)
    return config


def cmd_demo(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        state_dir = (
            Path(args.state_dir)
            if args.state_dir
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gx-gateway-demo-")))
        )
        loaded = _load_config(lambda: demo_config(args, state_dir), args.mappings)
        if isinstance(loaded, int):
            return loaded
        return _serve(loaded[1], loaded[0], _demo_ready)


def register(add: AddCommand) -> None:
    p = add(
        "run",
        "run the gateway from a TOML config file (docs/config.md)",
        """examples:
  gx-gateway run --config /etc/gx-gateway/gateway.toml
  gx-gateway run --config gateway.toml --log-format json --log-level debug""",
    )
    p.add_argument("--config", metavar="FILE", required=True)
    p.add_argument("--mappings", metavar="DIR", help="mappings folder (default: the packaged one)")
    p.set_defaults(func=cmd_run)
    p = add(
        "demo",
        "run a complete simulated installation on loopback (`run` with the packaged demo.toml)",
        """examples:
  gx-gateway demo                                    # Modbus 127.0.0.1:5020, HTTP 127.0.0.1:8088
  gx-gateway demo --modbus 127.0.0.1:1502 --http off
  gx-gateway demo --state-dir ./demo-state           # keep settings between runs
  gx-gateway demo --n2k candump:n2k.log              # NMEA 2000 out to a candump -L file
  gx-gateway demo --mqtt-listen 127.0.0.1:1883       # Venus MQTT topics (Home Assistant, Node-RED)""",
    )
    p.add_argument("--modbus", metavar="HOST:PORT", help="Modbus-TCP address (default: demo.toml's [modbus] listen)")
    p.add_argument("--http", metavar="HOST:PORT", help="JSON API address or off (default: demo.toml's [http] listen)")
    p.add_argument(
        "--n2k", metavar="SPEC", help="NMEA 2000 out: socketcan:can0, yden:HOST:PORT, candump:FILE, ... or off"
    )
    p.add_argument("--mqtt-broker", metavar="URL", help="publish to this MQTT broker (mqtt://HOST:PORT)")
    p.add_argument("--mqtt-listen", metavar="HOST:PORT", help="run an MQTT broker here (Mosquitto) and publish to it")
    p.add_argument("--state-dir", metavar="DIR", help="keep settings here (default: a temporary folder)")
    p.add_argument("--mappings", metavar="DIR", help="mappings folder (default: the packaged one)")
    p.set_defaults(func=cmd_demo)
