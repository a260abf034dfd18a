"""``gx-gateway scan --ble``: the BLE sensors nearby as ``[[device]]`` tables (stdout) and a
table of everything heard with its kind, RSSI and whether it needs a key (stderr)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from gateway.sources.ble_discover import Seen, discover
from gateway.transports.ble_scan import parse_source

FIRST_INSTANCE = 45
SERVICE_OF = {"mopeka": "tank", "ruuvi": "temperature"}


def render(found: list[Seen], source: str) -> str:
    lines: list[str] = []
    instance = FIRST_INSTANCE
    for s in found:
        if s.driver is None:
            continue
        lines += ["[[device]]", f'driver = "{s.driver}"', f'address = "{s.address}"']
        if s.needs_key:
            lines.append('key = "PASTE-32-HEX-DIGITS"  # VictronConnect: Product info > Instant readout details')
            lines.append(f'service = "{s.service}"')
        if source != "bluez":
            lines.append(f'source = "{source}"')
        lines += [f"instance = {instance}", f'name = "{s.name or s.kind}"', ""]
        instance += 1
    return "\n".join(lines)


def listing(found: list[Seen]) -> str:
    rows = [f"  {'address':17}  {'rssi':>4}  {'kind':28}  key?  name"]
    for s in found:
        rows.append(f"  {s.address:17}  {s.rssi:>4}  {s.kind:28}  {'yes' if s.needs_key else 'no ':3}   {s.name}")
    return "\n".join(rows)


def cmd_scan_ble(args: argparse.Namespace) -> int:
    try:
        source = parse_source("--ble-source", args.ble_source)
        if not 0 < args.seconds <= 300:
            raise ValueError("--seconds: expected 0..300")
    except ValueError as e:
        print(f"gx-gateway scan: {e}", file=sys.stderr)
        return 2
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    logging.getLogger("gateway.transports.ble_scan").setLevel(logging.ERROR)  # the error below says it once

    columns = (TextColumn("listening for Bluetooth LE"), BarColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, transient=True, console=Console(stderr=True), redirect_stdout=False) as bar:
            task = bar.add_task("ble", total=args.seconds)
            found = asyncio.run(discover(source, args.seconds, lambda t: bar.update(task, completed=t)))
    except OSError as e:
        print(f"gx-gateway scan: {e}", file=sys.stderr)
        return 1
    sensors = [s for s in found if s.driver is not None]
    print(listing(found), file=sys.stderr)
    sys.stdout.write(render(found, source))
    print(f"{len(found)} advertisers heard, {len(sensors)} sensors gx-gateway reads", file=sys.stderr)
    return 0
