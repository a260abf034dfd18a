"""Command line: ``gx-gateway check | registers | pgns | config-docs`` (maps.py), ``run | demo``
(run.py), ``simulate`` (simulate.py), ``scan`` (scan.py), ``status`` and ``export`` (the
running gateway's operations, gateway/ops/). One module per command group; this one builds
the parser from them and runs the chosen command.

``demo`` is ``run`` with the packaged demo.toml (flags override its keys) and a friendlier
ready-banner; everything between loading the config and that banner is the same code.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from gateway.cli import maps, run, scan, simulate
from gateway.cli.parser import LEVELS_HELP, command_adder
from gateway.core import loglimit
from gateway.core.derived import gateway_version
from gateway.ops import export, status
from gateway.ops.logs import FORMATS, LEVELS, setup_logging


def logging_options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--log-level", choices=LEVELS, default=default, help=LEVELS_HELP)
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
    add = command_adder(sub, parents)
    maps.register_checks(add)
    run.register(add)
    simulate.register(add)
    scan.register(add)
    status.register(sub, parents)
    export.register(sub, parents)
    maps.register_docs(add)
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
