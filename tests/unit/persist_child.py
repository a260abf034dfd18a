"""The process test_persist kills mid-save: it saves increasing counters and prints each one
only once its save has returned (is acknowledged), so the parent knows a lower bound."""

from __future__ import annotations

import sys
from pathlib import Path

from gateway.core.persist import JsonFile


def parse_counter(data: object) -> int:
    if not isinstance(data, dict) or not isinstance(data.get("n"), int):
        raise ValueError("expected {'n': <int>}")
    return int(data["n"])


def main(path: Path) -> None:
    file = JsonFile(path, parse_counter)
    n = file.load() or 0
    padding = "x" * 4000  # a few pages, so a kill can land inside a write too
    while True:
        n += 1
        file.save_now({"n": n, "padding": padding})
        print(n, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
