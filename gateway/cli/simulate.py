"""``simulate``: protocol simulators on their own, until Ctrl-C (to point a real SCADA or a
second gateway at)."""

from __future__ import annotations

import argparse
import sys

from gateway.app import run_loop
from gateway.cli.parser import AddCommand
from gateway.config import ConfigError, parse_listen
from gateway.sim.protocols.sunspec_sim import PROFILES


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


def register(add: AddCommand) -> None:
    p = add(
        "simulate",
        "run SunSpec inverter simulators (Modbus-TCP) until Ctrl-C",
        """examples:
  gx-gateway simulate fronius --listen 127.0.0.1:1502
  gx-gateway simulate solaredge --count 3 --listen 127.0.0.1:0""",
    )
    p.add_argument("kind", choices=sorted(PROFILES), help="which inverter")
    p.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:1502", help="address (port 0 = any free port)")
    p.add_argument("--count", type=int, default=1, help="how many, on consecutive ports (default 1)")
    p.add_argument("--day-s", type=float, default=3600.0, help="seconds of a compressed day (default 3600)")
    p.add_argument("--start-hour", type=float, default=10.0, help="time of day to start at (default 10)")
    p.set_defaults(func=cmd_simulate)
