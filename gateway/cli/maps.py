"""Commands on the mappings: ``check``, ``registers``, ``pgns`` and ``config-docs``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gateway.cli.parser import AddCommand
from gateway.config import render_config_docs
from registers import CompiledMap, MappingError, compile_mappings, load_default
from registers.docs import RENDERERS
from registers.docs_n2k import render_pgns_markdown
from registers.meters import meter_models
from registers.vedirect import VeDirectMap


def load_map(mappings: str | None, n2k: bool = True) -> CompiledMap:
    """The compiled map. ``n2k=False`` (a gateway without [n2k]) compiles the packaged PGN
    mappings only if something asks for them: that imports the NMEA 2000 stack (about 20 MB
    resident); they are checked by `check`. A --mappings folder is checked whole, as always."""
    if mappings is not None:
        return compile_mappings(Path(mappings))
    return load_default(defer_n2k=not n2k)


def cmd_check(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    try:
        cmap = load_map(args.mappings)
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
    ve = cmap.devices.get("vedirect")
    vedirect = (
        f"{len(ve.products)} VE.Direct products ({len(ve.samples)} captures checked), "
        if isinstance(ve, VeDirectMap)
        else ""
    )
    print(
        f"ok: {len(cmap.modbus.tables)} services, {n} registers, {len(cmap.lookups)} lookups, "
        f"{len(meters)} meter models ({samples} samples checked), {vedirect}"
        f"{len(n2k)} NMEA 2000 device kinds sending {pgns} PGNs (samples checked), compiled in {ms:.0f} ms"
    )
    return 0


def _render(args: argparse.Namespace, render: Callable[[CompiledMap], str]) -> int:
    """Compile the mappings and print a rendering of them; problems go to stderr."""
    try:
        cmap = load_map(args.mappings)
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


def cmd_config_docs(args: argparse.Namespace) -> int:
    sys.stdout.write(render_config_docs())
    return 0


def register_checks(add: AddCommand) -> None:
    p = add(
        "check",
        "compile the mappings and report every problem as file:line: Rnn message",
        """examples:
  gx-gateway check                      # ok: 33 services, 1003 registers, ...
  gx-gateway check --mappings ./mappings""",
    )
    p.add_argument("--mappings", metavar="DIR", help="mappings folder (default: the packaged one)")
    p.set_defaults(func=cmd_check)
    p = add(
        "registers",
        "print the compiled register list",
        """examples:
  gx-gateway registers --format csv > registers.csv
  gx-gateway registers --format md      # what docs/registers.md holds""",
    )
    p.add_argument("--format", choices=sorted(RENDERERS), default="csv")
    p.add_argument("--mappings", metavar="DIR", help="mappings folder (default: the packaged one)")
    p.set_defaults(func=cmd_registers)
    p = add(
        "pgns",
        "print the NMEA 2000 PGN map as Markdown (docs/pgns.md)",
        """examples:
  gx-gateway pgns > docs/pgns.md        # the NMEA 2000 PGN map (mappings/n2k)""",
    )
    p.add_argument("--mappings", metavar="DIR", help="mappings folder (default: the packaged one)")
    p.set_defaults(func=cmd_pgns)


def register_docs(add: AddCommand) -> None:
    p = add(
        "config-docs",
        "print the configuration reference (docs/config.md)",
        """examples:
  gx-gateway config-docs > docs/config.md""",
    )
    p.set_defaults(func=cmd_config_docs)
