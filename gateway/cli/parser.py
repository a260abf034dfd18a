"""The shape every command group registers in: ``add(name, help, examples)`` gives the group
a sub-parser with the common options (logging) and its examples as the epilog."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

AddCommand = Callable[[str, str, str], argparse.ArgumentParser]

LEVELS_HELP = "least severe events logged (run/demo default: info)"


def command_adder(sub: Any, parents: list[argparse.ArgumentParser]) -> AddCommand:
    def add(name: str, help: str, examples: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(
            name,
            help=help,
            description=help[0].upper() + help[1:] + ".",
            epilog=examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=parents,
        )
        return parser

    return add
