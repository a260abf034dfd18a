"""``gx-gateway simulate vedirect|canbms|meter --rtu``: a Victron device on a pty or a CAN bus,
or energy meters on a simulated RS485 bus (Modbus RTU on a pty), as a process.

Prints where it is (the pty or ``--link`` path; the bus) and takes fault commands on stdin,
one a line: ``unplug`` / ``plug`` (the cable: the pty goes away and comes back, the link
follows it), ``silence`` / ``talk`` (the device stops sending, port still there), ``bad`` (the
next block fails its checksum). For the RTU bus: ``silence [UNIT]`` / ``talk [UNIT]`` (every
meter, or one unit), ``bad`` (the next answer fails its CRC). Ctrl-C stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from gateway.sim.canbms_sim import CanBmsSim
from gateway.sim.protocols.meter_sim import MeterSimulator
from gateway.sim.rtu_sim import RtuBusSim
from gateway.sim.vedirect_sim import VeDirectSim
from registers import load_default
from registers.meters import meter_models

HELP = "commands: unplug, plug, silence, talk, bad, help (Ctrl-C stops)"
RTU_HELP = "commands: silence [UNIT], talk [UNIT], bad (next answer fails its CRC), help (Ctrl-C stops)"
Sim = VeDirectSim | CanBmsSim | RtuBusSim


def _rtu_commands(bus: RtuBusSim) -> dict[str, Callable[[], None]]:
    def bad() -> None:
        bus.corrupt += 1

    found: dict[str, Callable[[], None]] = {
        "silence": lambda: bus.silent.update(bus.meters),
        "talk": bus.silent.clear,
        "bad": bad,
        "help": lambda: print(RTU_HELP),
    }
    for unit in bus.meters:
        found[f"silence {unit}"] = functools.partial(bus.silent.add, unit)
        found[f"talk {unit}"] = functools.partial(bus.silent.discard, unit)
    return found


def _commands(sim: Sim) -> dict[str, Callable[[], None]]:
    if isinstance(sim, RtuBusSim):
        return _rtu_commands(sim)

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


async def _serve(sim: Sim, where: Callable[[], str]) -> None:
    await sim.start()
    print(where(), flush=True)
    print(RTU_HELP if isinstance(sim, RtuBusSim) else HELP, flush=True)
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
        with contextlib.suppress(OSError):  # stdin a file (< /dev/null): no commands, it just runs
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


def parse_meters(spec: str) -> dict[int, str]:
    """``em24:1,sdm630:2`` -> {unit: model}; ValueError with a one-line reason."""
    models = meter_models(load_default())
    found: dict[int, str] = {}
    for item in spec.split(","):
        model, _, unit = item.strip().partition(":")
        if model not in models:
            raise ValueError(f"--meters: no meter file devices/{model}.csv (known: {', '.join(sorted(models))})")
        if not unit.isdigit() or not 1 <= int(unit) <= 247 or int(unit) in found:
            raise ValueError(f"--meters: {item!r}: give MODEL:UNIT, a unit 1..247 used once")
        found[int(unit)] = model
    return found


async def serve_rtu_meters(meters: dict[int, str], link: Path | None) -> None:
    models = meter_models(load_default())
    bus = RtuBusSim({u: MeterSimulator(models[m], unit=u) for u, m in meters.items()}, link=link)

    def where() -> str:
        lines = [f"unit {u}: {models[m].product} ({m})" for u, m in meters.items()]
        return f'Modbus RTU bus simulator on {bus.path} (transport = "rtu", port = "{bus.path}"): ' + "; ".join(lines)

    await _serve(bus, where)
