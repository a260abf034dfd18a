"""Command line: ``gx-gateway check | registers | pgns | run | demo | simulate | scan | status | export | config-docs``.

``demo`` is ``run`` with the packaged demo.toml (flags override its keys) and a friendlier
ready-banner; everything between loading the config and that banner is the same code.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from gateway import scan_cli
from gateway.app import Gateway, StartupError, run_loop, serve
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
    render_config_docs,
)
from gateway.core import loglimit
from gateway.core.derived import gateway_version
from gateway.ops import export, status
from gateway.ops.logs import FORMATS, LEVELS, setup_logging
from gateway.sim.protocols.simulators import Simulators
from gateway.sim.protocols.sunspec_sim import PROFILES
from registers import CompiledMap, MappingError, compile_mappings, load_default
from registers.docs import RENDERERS
from registers.docs_n2k import render_pgns_markdown
from registers.meters import meter_models

log = logging.getLogger("gx-gateway")


def _load(mappings: str | None, n2k: bool = True) -> CompiledMap:
    """The compiled map. ``n2k=False`` (a gateway without [n2k]) compiles the packaged PGN
    mappings only if something asks for them: that imports the NMEA 2000 stack (about 20 MB
    resident); they are checked by `check`. A --mappings folder is checked whole, as always."""
    if mappings is not None:
        return compile_mappings(Path(mappings))
    return load_default(defer_n2k=not n2k)


def cmd_check(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    try:
        cmap = _load(args.mappings)
    except MappingError as e:
        for p in e.problems:
            print(p)
        print(f"{len(e.problems)} problem(s)", file=sys.stderr)
        return 1
    ms = (time.perf_counter() - t0) * 1000
    n = cmap.modbus.register_count
    meters = meter_models(cmap)
    samples = sum(len(m.samples) for m in meters.values())
    n2k = [d for devices in cmap.n2k.values() for d in devices]
    pgns = sum(len(d.pgns) for d in n2k)
    print(
        f"ok: {len(cmap.modbus.tables)} services, {n} registers, {len(cmap.lookups)} lookups, "
        f"{len(meters)} meter models ({samples} samples checked), "
        f"{len(n2k)} NMEA 2000 device kinds sending {pgns} PGNs (samples checked), compiled in {ms:.0f} ms"
    )
    return 0


def _render(args: argparse.Namespace, render: Callable[[CompiledMap], str]) -> int:
    """Compile the mappings and print a rendering of them; problems go to stderr."""
    try:
        cmap = _load(args.mappings)
    except MappingError as e:
        for p in e.problems:
            print(p, file=sys.stderr)
        return 1
    sys.stdout.write(render(cmap))
    return 0


def cmd_pgns(args: argparse.Namespace) -> int:
    return _render(args, render_pgns_markdown)


def cmd_registers(args: argparse.Namespace) -> int:
    return _render(args, RENDERERS[args.format])


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
    print("Devices:")
    print("\n".join(unit_table(gateway)))
    scan = scan_command(gateway)
    if scan:
        print(f"Find the simulated devices as on a real network:\n  {scan}")
    print(DEMO_HINTS.format(host=host, port=port), flush=True)


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
        cmap = _load(mappings, n2k=config.n2k is not None)
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


def cmd_simulate(args: argparse.Namespace) -> int:
    from gateway.sim.protocols.standalone import serve as serve_simulators

    try:
        host, port = parse_listen("--listen", args.listen)
    except ConfigError as e:
        print(f"gx-gateway: {e}", file=sys.stderr)
        return 2
    try:
        run_loop(lambda: serve_simulators(args.kind, host, port, args.count, args.day_s, args.start_hour))
    except OSError as e:
        print(f"gx-gateway: cannot listen on {host}:{port}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


def cmd_config_docs(args: argparse.Namespace) -> int:
    sys.stdout.write(render_config_docs())
    return 0


EXAMPLES: Final = {
    "check": """\
examples:
  gx-gateway check                      # ok: 33 services, 1003 registers, ...
  gx-gateway check --mappings ./mappings""",
    "registers": """\
examples:
  gx-gateway registers --format csv > registers.csv
  gx-gateway registers --format md      # what docs/registers.md holds""",
    "run": """\
examples:
  gx-gateway run --config /etc/gx-gateway/gateway.toml
  gx-gateway run --config gateway.toml --log-format json --log-level debug""",
    "demo": """\
examples:
  gx-gateway demo                                    # Modbus 127.0.0.1:5020, HTTP 127.0.0.1:8088
  gx-gateway demo --modbus 127.0.0.1:1502 --http off
  gx-gateway demo --state-dir ./demo-state           # keep settings between runs
  gx-gateway demo --n2k candump:n2k.log              # NMEA 2000 out to a candump -L file""",
    "pgns": """\
examples:
  gx-gateway pgns > docs/pgns.md        # the NMEA 2000 PGN map (mappings/n2k)""",
    "simulate": """\
examples:
  gx-gateway simulate fronius --listen 127.0.0.1:1502
  gx-gateway simulate solaredge --count 3 --listen 127.0.0.1:0""",
    "scan": """\
examples:
  gx-gateway scan --subnet 192.168.1.0/24                 # ports 502, 1502, 80
  gx-gateway scan --hosts 192.168.1.20,192.168.1.21 --ports 502,80 > devices.toml
  gx-gateway scan --subnet 192.168.1.0/24 --gateway http://127.0.0.1:8088  # beside a running gateway""",
    "config-docs": """\
examples:
  gx-gateway config-docs > docs/config.md""",
}


def _add(sub: Any, name: str, help: str, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=EXAMPLES[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=parents,
    )
    return parser


def logging_options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--log-level", choices=LEVELS, default=default, help="least severe events logged (run/demo default: info)"
    )
    parser.add_argument(
        "--log-format", choices=FORMATS, default=default, help="one line per event: key=value text or JSON"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gx-gateway",
        description="Modbus-TCP gateway for energy systems, compatible with the Victron GX register list.",
        epilog="Each command answers --help with examples. Logs go to stderr, one line per event.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gx-gateway {gateway_version()}")
    logging_options(parser, None)
    common = argparse.ArgumentParser(add_help=False)  # the same options after the command name
    logging_options(common, argparse.SUPPRESS)
    parents = [common]
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = _add(sub, "check", "compile the mappings and report every problem as file:line: Rnn message", parents)
    p.add_argument("--mappings", metavar="DIR", help="mappings folder (default: the packaged one)")
    p.set_defaults(func=cmd_check)
    p = _add(sub, "registers", "print the compiled register list", parents)
    p.add_argument("--format", choices=sorted(RENDERERS), default="csv")
    p.add_argument("--mappings", metavar="DIR", help="mappings folder (default: the packaged one)")
    p.set_defaults(func=cmd_registers)
    p = _add(sub, "pgns", "print the NMEA 2000 PGN map as Markdown (docs/pgns.md)", parents)
    p.add_argument("--mappings", metavar="DIR", help="mappings folder (default: the packaged one)")
    p.set_defaults(func=cmd_pgns)
    p = _add(sub, "run", "run the gateway from a TOML config file (docs/config.md)", parents)
    p.add_argument("--config", metavar="FILE", required=True)
    p.add_argument("--mappings", metavar="DIR", help="mappings folder (default: the packaged one)")
    p.set_defaults(func=cmd_run)
    p = _add(
        sub, "demo", "run a complete simulated installation on loopback (`run` with the packaged demo.toml)", parents
    )
    p.add_argument("--modbus", metavar="HOST:PORT", help="Modbus-TCP address (default: demo.toml's [modbus] listen)")
    p.add_argument("--http", metavar="HOST:PORT", help="JSON API address or off (default: demo.toml's [http] listen)")
    p.add_argument(
        "--n2k", metavar="SPEC", help="NMEA 2000 out: socketcan:can0, yden:HOST:PORT, candump:FILE, ... or off"
    )
    p.add_argument("--state-dir", metavar="DIR", help="keep settings here (default: a temporary folder)")
    p.add_argument("--mappings", metavar="DIR", help="mappings folder (default: the packaged one)")
    p.set_defaults(func=cmd_demo)
    p = _add(sub, "simulate", "run SunSpec inverter simulators (Modbus-TCP) until Ctrl-C", parents)
    p.add_argument("kind", choices=sorted(PROFILES), help="which inverter")
    p.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:1502", help="address (port 0 = any free port)")
    p.add_argument("--count", type=int, default=1, help="how many, on consecutive ports (default 1)")
    p.add_argument("--day-s", type=float, default=3600.0, help="seconds of a compressed day (default 3600)")
    p.add_argument("--start-hour", type=float, default=10.0, help="time of day to start at (default 10)")
    p.set_defaults(func=cmd_simulate)
    scan_cli.add_parser(_add(sub, "scan", scan_cli.HELP, parents))
    status.register(sub, parents)
    export.register(sub, parents)
    p = _add(sub, "config-docs", "print the configuration reference (docs/config.md)", parents)
    p.set_defaults(func=cmd_config_docs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = args.log_level or ("info" if args.command in ("run", "demo") else "warning")
    setup_logging(level, args.log_format or "text")
    loglimit.install()  # a flood of one kind of event is collapsed, not written line by line
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `gx-gateway registers | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
