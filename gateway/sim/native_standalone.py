"""``gx-gateway simulate vedirect|canbms``: a Victron device on a pty or a CAN bus, as a process.

Prints where it is (the pty or ``--link`` path; the bus) and takes fault commands on stdin,
one a line: ``unplug`` / ``plug`` (the cable: the pty goes away and comes back, the link
follows it), ``silence`` / ``talk`` (the device stops sending, port still there), ``bad`` (the
next block fails its checksum). Ctrl-C stops.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from gateway.sim.canbms_sim import CanBmsSim
from gateway.sim.vedirect_sim import VeDirectSim

HELP = "commands: unplug, plug, silence, talk, bad, help (Ctrl-C stops)"


def _commands(sim: VeDirectSim | CanBmsSim) -> dict[str, Callable[[], None]]:
    def silence() -> None:
        sim.silent = True

    def talk() -> None:
        sim.silent = False

    found: dict[str, Callable[[], None]] = {"silence": silence, "talk": talk, "help": lambda: print(HELP)}
    if isinstance(sim, VeDirectSim):

        def bad() -> None:
            sim.corrupt += 1

        found |= {"unplug": sim.unplug, "plug": sim.plug, "bad": bad}
    else:
        found |= {"unplug": silence, "plug": talk}  # a pulled BMS cable: the bus goes quiet
    return found


async def _serve(sim: VeDirectSim | CanBmsSim, where: Callable[[], str]) -> None:
    await sim.start()
    print(where(), flush=True)
    print(HELP, flush=True)
    commands = _commands(sim)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def on_line() -> None:
        line = sys.stdin.readline()
        if not line:
            loop.remove_reader(sys.stdin)
            return
        command = commands.get(line.strip())
        if command is None:
            print(f"unknown command {line.strip()!r}; {HELP}", flush=True)
        else:
            command()
            print(f"ok: {line.strip()}", flush=True)

    if not sys.stdin.closed:
        loop.add_reader(sys.stdin, on_line)
    try:
        await stop.wait()
    finally:
        await sim.stop()


async def serve_vedirect(product: str, link: Path | None, interval_s: float) -> None:
    sim = VeDirectSim(product, link=link, interval_s=interval_s)
    await _serve(sim, lambda: f'VE.Direct {product} simulator on {sim.path} (port = "{sim.path}")')


async def serve_canbms(interface: str, name: str, interval_s: float) -> None:
    await _serve(CanBmsSim(interface, name=name, interval_s=interval_s), lambda: f"CAN-bus BMS {name} on {interface}")
