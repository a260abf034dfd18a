"""``simulate``: protocol simulators on their own, until Ctrl-C (to point a real SCADA or a
second gateway at)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.app import run_loop
from gateway.cli.parser import AddCommand
from gateway.config import ConfigError, parse_listen
from gateway.sim.protocols.sunspec_sim import PROFILES

NATIVE = ("vedirect", "canbms")  # Victron-native devices: a pty or a CAN bus, not a TCP port


def cmd_native(args: argparse.Namespace) -> int:
    from gateway.sim import native_standalone
    from gateway.sim.vedirect_sim import PRODUCTS

    if args.kind == "vedirect":
        if args.product not in PRODUCTS:
            print(f"gx-gateway: --product {args.product!r}: known {', '.join(PRODUCTS)}", file=sys.stderr)
            return 2
        link = Path(args.link) if args.link else None
        run_loop(lambda: native_standalone.serve_vedirect(args.product, link, args.interval_s))
        return 0
    try:
        run_loop(lambda: native_standalone.serve_canbms(args.interface, args.name, args.interval_s))
    except (ValueError, OSError) as e:
        print(f"gx-gateway: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_rtu(args: argparse.Namespace) -> int:
    from gateway.sim import native_standalone

    if not args.rtu:
        print("gx-gateway: simulate meter serves meters on a Modbus RTU bus (a pty): add --rtu", file=sys.stderr)
        return 2
    try:
        meters = native_standalone.parse_meters(args.meters)
    except ValueError as e:
        print(f"gx-gateway: {e}", file=sys.stderr)
        return 2
    run_loop(lambda: native_standalone.serve_rtu_meters(meters, Path(args.link) if args.link else None))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from gateway.sim.protocols.standalone import serve as serve_simulators

    if args.kind == "meter":
        return cmd_rtu(args)
    if args.kind in NATIVE:
        return cmd_native(args)
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


def register(add: AddCommand) -> None:
    p = add(
        "simulate",
        "run SunSpec inverter simulators (Modbus-TCP), a VE.Direct device (pty), a CAN-bus BMS "
        "or RS485 energy meters (Modbus RTU on a pty) until Ctrl-C",
        """examples:
  gx-gateway simulate fronius --listen 127.0.0.1:1502
  gx-gateway simulate solaredge --count 3 --listen 127.0.0.1:0
  gx-gateway simulate vedirect --product mppt --link /tmp/ttyVE0   (stdin: unplug, plug, silence, talk, bad)
  gx-gateway simulate canbms --interface socketcan:vcan0
  gx-gateway simulate meter --rtu --meters em24:1,sdm630:2 --link /tmp/ttyRS485   (stdin: silence 2, talk 2, bad)""",
    )
    p.add_argument("kind", choices=[*sorted(PROFILES), *NATIVE, "meter"], help="which device")
    p.add_argument("--product", default="mppt", help="vedirect: mppt, smartshunt or phoenix (default mppt)")
    p.add_argument("--rtu", action="store_true", help="meter: serve Modbus RTU on a pty (required)")
    p.add_argument("--meters", default="em24:1", help="meter: MODEL:UNIT,... on the bus (default em24:1)")
    p.add_argument(
        "--link", help="vedirect, meter: a symlink to the pty, kept across unplug/plug (as /dev/serial/by-id)"
    )
    p.add_argument("--interface", default="socketcan:vcan0", help="canbms: the bus (default socketcan:vcan0)")
    p.add_argument("--name", default="PYLON", help="canbms: the manufacturer name it sends (default PYLON)")
    p.add_argument("--interval-s", type=float, default=1.0, help="vedirect, canbms: seconds between blocks")
    p.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:1502", help="address (port 0 = any free port)")
    p.add_argument("--count", type=int, default=1, help="how many, on consecutive ports (default 1)")
    p.add_argument("--day-s", type=float, default=3600.0, help="seconds of a compressed day (default 3600)")
    p.add_argument("--start-hour", type=float, default=10.0, help="time of day to start at (default 10)")
    p.set_defaults(func=cmd_simulate)
