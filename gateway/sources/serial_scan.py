"""``gx-gateway scan --serial``: what talks on each serial port, told apart by listening.

A VE.Direct device sends a text block about once a second without being asked: the port is
opened (exclusively, 19200 8N1) for ``LISTEN_S``, and a block that passes its checksum with a
product id of mappings/vedirect names the product. Anything else is reported as what it is
(silent, unreadable, in use, an unknown product id). A port that opens but sends no VE.Direct
text is then asked for Modbus RTU meters (gateway/sources/rtu_scan.py).
"""

from __future__ import annotations

import asyncio
import glob
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from gateway.sources.rtu_scan import RtuMeter, render_bus
from gateway.transports.serial import SerialReader, SerialSettings
from registers.vedirect import TextFramer, VeDirectMap, VeProduct, parse_pid

LISTEN_S: Final = 2.5
DEFAULT_GLOBS: Final = ("/dev/serial/by-id/*", "/dev/ttyUSB*", "/dev/ttyACM*")


@dataclass(frozen=True, slots=True)
class SerialFinding:
    path: str
    product: VeProduct | None  # None: no VE.Direct device found (see ``note``)
    serial: str | None
    note: str
    opened: bool = True  # False: the port could not be opened (``note`` says why)
    meters: tuple[RtuMeter, ...] = ()  # Modbus RTU meters found on it


def default_paths() -> list[str]:
    """The by-id names first; a ttyUSB that a by-id name already covers is left out."""
    import os

    found: list[str] = []
    seen: set[str] = set()
    for pattern in DEFAULT_GLOBS:
        for path in sorted(glob.glob(pattern)):
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                found.append(path)
    return found


async def listen(path: str, vmap: VeDirectMap, seconds: float = LISTEN_S) -> SerialFinding:
    framer = TextFramer()
    done = asyncio.Event()
    blocks: list[dict[str, str]] = []

    def on_data(data: bytes) -> None:
        for block in framer.feed(data):
            blocks.append(block)
            if "PID" in block:
                done.set()

    reader = SerialReader(path, SerialSettings(baud=19200), on_data)
    reader.start()
    try:
        async with asyncio.timeout(seconds):
            await done.wait()
    except TimeoutError:
        pass
    finally:
        await reader.stop()
    pid_text = next((b["PID"] for b in blocks if "PID" in b), None)
    serial = next((b["SER#"] for b in blocks if "SER#" in b), None)
    if pid_text is None:
        if reader.opens == 0:
            return SerialFinding(path, None, None, reader.reason, opened=False)
        why = f"{framer.bad_checksum + framer.garbage} bad blocks" if reader.bytes_read else "silent"
        return SerialFinding(path, None, None, f"no VE.Direct text in {seconds:g} s ({why}, {reader.bytes_read} bytes)")
    pid = parse_pid(pid_text)
    product = vmap.products.get(pid) if pid is not None else None
    if product is None:
        return SerialFinding(path, None, serial, f"VE.Direct product id {pid_text} is not in mappings/vedirect")
    return SerialFinding(path, product, serial, f"{product.name} ({product.service})")


def render_serial(findings: Sequence[SerialFinding], first_instance: int = 40) -> str:
    out = []
    instance = first_instance
    for f in findings:
        if f.meters:
            tables, instance = render_bus(f.path, f.meters, instance)
            out += tables
            continue
        if f.product is None:
            out.append(f"# {f.path}: {f.note}\n")
            continue
        serial = f", serial {f.serial}" if f.serial else ""
        out.append(
            f"# {f.product.name}{serial}: {f.product.service}; the instance is kept per port\n"
            f'[[device]]\ndriver = "vedirect"\nport = "{f.path}"\nname = "{f.product.name}"\n'
        )
    return "\n".join(out)
