"""The ``scan`` command's terminal side: argument checks, a progress bar (rich), the output.

The tables go to stdout (paste them into a config file); the progress bar and the summary go
to stderr, so ``gx-gateway scan ... > devices.toml`` keeps only the config.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from gateway.cli.parser import AddCommand
from gateway.cli.scan_tables import Polled, polled, render, summary, with_gateway
from gateway.ops.client import ApiError, base_url, get_json
from gateway.sources.network_scan import DEFAULT_PORTS, expand_hosts, scan
from registers import MappingError, compile_mappings, load_default
from registers.meters import meter_models

HELP = "find inverters, meters and datamanagers; print [[device]] tables for them"


EXAMPLES = """examples:
  gx-gateway scan --subnet 192.168.1.0/24                 # ports 502, 1502, 80
  gx-gateway scan --hosts 192.168.1.20,192.168.1.21 --ports 502,80 > devices.toml
  gx-gateway scan --subnet 192.168.1.0/24 --gateway http://127.0.0.1:8088  # beside a running gateway
  gx-gateway scan --ble --seconds 20 > sensors.toml           # Bluetooth LE sensors nearby
  gx-gateway scan --serial                                # VE.Direct, RTU meters on by-id/*, ttyUSB*
  gx-gateway scan --serial /dev/ttyUSB0,/dev/ttyUSB1"""


def register(add: AddCommand) -> None:
    p = add("scan", HELP, EXAMPLES)
    p.add_argument("--hosts", metavar="LIST", help="comma-separated addresses, e.g. 192.168.1.20,192.168.1.21")
    p.add_argument("--subnet", metavar="CIDR", help="every address of a network, e.g. 192.168.1.0/24 (at most /20)")
    p.add_argument("--ports", metavar="LIST", default=",".join(map(str, DEFAULT_PORTS)), help="TCP ports to try")
    p.add_argument("--timeout", type=float, default=0.5, metavar="S", help="seconds per connect and request")
    p.add_argument("--concurrency", type=int, default=64, metavar="N", help="host:port pairs probed at once")
    p.add_argument("--mappings", metavar="DIR", help="mappings folder (default: the packaged one)")
    p.add_argument(
        "--serial",
        nargs="?",
        const="",
        metavar="PATHS",
        help="serial ports instead: VE.Direct by listening, else Modbus RTU meters by probing "
        "(comma-separated; default /dev/serial/by-id/*, /dev/ttyUSB*)",
    )
    p.add_argument(
        "--gateway",
        metavar="URL",
        help="a running gateway's HTTP API, e.g. http://127.0.0.1:8088: devices it polls keep their instances, "
        "and a device that takes one client (SolarEdge) is recognised while that gateway polls it",
    )
    p.add_argument(
        "--ble", action="store_true", help="listen for Bluetooth LE sensors instead (Victron, Mopeka, Ruuvi)"
    )
    p.add_argument("--seconds", type=float, default=10.0, metavar="S", help="with --ble: how long to listen")
    p.add_argument("--ble-source", default="bluez", metavar="SPEC", help="with --ble: bluez, bluez:hciN or replay:FILE")
    p.set_defaults(func=cmd_scan)


def cmd_scan_serial(args: argparse.Namespace) -> int:
    import dataclasses

    from gateway.cli.scan_tables import FIRST_INSTANCE
    from gateway.sources.rtu_scan import probe_bus
    from gateway.sources.serial_scan import default_paths, listen, render_serial
    from registers.meters import meter_models
    from registers.vedirect import vedirect_map

    paths = [p.strip() for p in args.serial.split(",") if p.strip()] or default_paths()
    if not paths:
        print("gx-gateway scan: no serial ports found (give --serial PATHS)", file=sys.stderr)
        return 1
    try:
        cmap = load_default(defer_n2k=True) if args.mappings is None else compile_mappings(args.mappings)
        vmap = vedirect_map(cmap)
        models = meter_models(cmap)
    except (MappingError, LookupError) as e:
        print(f"gx-gateway scan: {e}", file=sys.stderr)
        return 1

    async def all_ports() -> list[Any]:
        async def one(i: int, path: str) -> Any:
            def say(line: str) -> None:
                print(f"[{i + 1}/{len(paths)}] {line}", file=sys.stderr, flush=True)

            found = await listen(path, vmap)
            say(f"{path}: {found.note}")
            if found.product is None and found.opened:  # no VE.Direct text: a bus of meters?
                meters, note = await probe_bus(path, models, progress=say)
                found = dataclasses.replace(found, meters=tuple(meters), note=f"{found.note}; {note}")
                say(f"{path}: {note}")
            return found

        return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(paths))))

    print(f"listening on {len(paths)} serial port(s) for up to 2.5 s ...", file=sys.stderr, flush=True)
    findings = asyncio.run(all_ports())
    sys.stdout.write(render_serial(findings, FIRST_INSTANCE))
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    if args.serial is not None:
        return cmd_scan_serial(args)
    if args.ble:
        from gateway.cli.scan_ble import cmd_scan_ble

        return cmd_scan_ble(args)
    try:
        hosts = expand_hosts(args.hosts, args.subnet)
        ports = [int(p) for p in args.ports.split(",") if p.strip()]
        if not hosts:
            raise ValueError("give --hosts LIST or --subnet CIDR")
        if not ports or not all(1 <= p <= 65535 for p in ports):
            raise ValueError(f"--ports: expected ports 1..65535, got {args.ports!r}")
        if not 1 <= args.concurrency <= 1024 or not 0 < args.timeout <= 10:
            raise ValueError("--concurrency 1..1024 and --timeout 0..10 s")
    except ValueError as e:
        print(f"gx-gateway scan: {e}", file=sys.stderr)
        return 2
    try:
        cmap = load_default(defer_n2k=True) if args.mappings is None else compile_mappings(args.mappings)
    except MappingError as e:
        for p in e.problems:
            print(p, file=sys.stderr)
        return 1
    models = meter_models(cmap)
    known: list[Polled] = []
    used: list[tuple[str, int]] = []
    if args.gateway is not None:
        try:
            url = base_url(args.gateway)
            status = get_json(url, "/api/v1/status", timeout=5.0)
            known = polled(status)
        except (ApiError, ValueError) as e:
            print(f"gx-gateway scan: --gateway: {e}", file=sys.stderr)
            return 2
        used = [(str(d["service"]), int(d["instance"])) for d in status["devices"]]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    t0 = time.perf_counter()
    columns = (TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True, console=None, redirect_stdout=False) as bar:
        task = bar.add_task("scan", total=len(hosts) * len(ports))
        found = asyncio.run(
            scan(
                hosts,
                ports,
                models,
                concurrency=args.concurrency,
                timeout=args.timeout,
                progress=lambda: bar.advance(task),
            )
        )
    if args.gateway is not None:
        found = with_gateway(found, known, url)
    sys.stdout.write(render(found, used))
    print(summary(found, len(hosts), len(ports), time.perf_counter() - t0), file=sys.stderr)
    return 0
