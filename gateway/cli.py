"""Command line: ``gx-gateway check | registers | demo | run``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from registers import CompiledMap, MappingError, compile_mappings, default_mappings_dir
from registers.docs import RENDERERS


def _load(mappings: str | None) -> CompiledMap:
    if mappings is None:
        return compile_mappings(default_mappings_dir(), shown_root="mappings")
    return compile_mappings(Path(mappings))


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
    n = sum(len(t.registers) for t in cmap.services.values())
    print(f"ok: {len(cmap.services)} services, {n} registers, {len(cmap.lookups)} lookups, compiled in {ms:.0f} ms")
    return 0


def cmd_registers(args: argparse.Namespace) -> int:
    try:
        cmap = _load(args.mappings)
    except MappingError as e:
        for p in e.problems:
            print(p, file=sys.stderr)
        return 1
    sys.stdout.write(RENDERERS[args.format](cmap))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gx-gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="compile the mappings and report every problem as file:line: Rnn message")
    p.add_argument("--mappings", metavar="DIR", help="mappings folder (default: the packaged one)")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("registers", help="print the compiled register list")
    p.add_argument("--format", choices=sorted(RENDERERS), default="csv")
    p.add_argument("--mappings", metavar="DIR", help="mappings folder (default: the packaged one)")
    p.set_defaults(func=cmd_registers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `gx-gateway registers | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
