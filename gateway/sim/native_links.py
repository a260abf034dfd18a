"""Simulated devices that reach the gateway through a real driver: the demo's MPPTs and battery
monitor over VE.Direct (ptys), its battery's BMS over a CAN bus.

A simulated ``[[device]]`` with ``via = ["vedirect:NAME", "canbms:NAME"]`` is not put in the
Store by the simulation: its values (computed by the plant, so the installation still adds up)
are handed to a protocol simulator — a ``VeDirectSim`` whose blocks are the device's values
encoded by the mappings' own rows, or a ``CanBmsSim`` — registered in the Endpoints under NAME
(the pty's by-id-like link, or the virtual bus). A ``vedirect``/``canbms`` [[device]] with
``simulator = NAME`` reads it like hardware. ``NAME.unplug`` in the Endpoints is the file whose
existence pulls that cable (``touch`` it to unplug, ``rm`` it to plug back).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

from gateway.core.endpoints import Endpoints
from gateway.sim.canbms_sim import CanBmsSim
from gateway.sim.vedirect_sim import VeDirectSim
from registers.values import Scalar, as_number
from registers.vedirect import VeDirectMap, encode_block

Values = dict[str, Scalar]
KINDS: Final = ("vedirect", "canbms")


def parse_via(text: str) -> tuple[str, str]:
    kind, _, name = text.partition(":")
    if kind not in KINDS or not name:
        raise ValueError(f"expected vedirect:NAME or canbms:NAME, got {text!r}")
    return kind, name


PREFERRED: Final = {"battery": "SmartShunt 500A/50mV"}  # when the plant's product has no VE.Direct id


def _pid(vmap: VeDirectMap, service: str, product: object) -> int:
    ours = [p for p in vmap.products.values() if p.service == service]
    named = [p.pid for p in ours if p.name == product] + [p.pid for p in ours if p.name == PREFERRED.get(service)]
    return (named or [p.pid for p in ours])[0]


class NativeLinks:
    """The protocol simulators of every ``via`` device, and the sinks the simulation feeds."""

    def __init__(self, vmap: VeDirectMap | None, endpoints: Endpoints) -> None:
        self.vmap = vmap
        self.endpoints = endpoints
        self.folder = Path(tempfile.mkdtemp(prefix="gx-gateway-native-"))
        self.sims: dict[str, VeDirectSim | CanBmsSim] = {}
        self.sinks: dict[tuple[str, int], Callable[[Values], None]] = {}

    def add(self, service: str, instance: int, vias: Sequence[str]) -> None:
        latest: Values = {}

        def sink(values: Values) -> None:
            latest.clear()
            latest.update(values)

        for via in vias:
            kind, name = parse_via(via)
            if kind == "vedirect":
                if self.vmap is None:
                    raise ValueError("via vedirect: the compiled map has no mappings/vedirect")
                link = self.folder / f"usb-VictronEnergy_BV_VE_Direct_{name}-if00-port0"
                self.sims[name] = VeDirectSim(name, link=link, source=self._blocks(service, instance, latest))
            else:
                control = self.folder / f"{name}.unplug"
                bus = f"virtual:{name}-{uuid.uuid4().hex[:8]}"  # one process, one bus per gateway
                self.sims[name] = CanBmsSim(bus, name="PYLON", control=control, source=self._battery(latest))
        self.sinks[(service, instance)] = sink

    def _blocks(self, service: str, instance: int, latest: Mapping[str, Scalar]) -> Callable[[], list[dict[str, str]]]:
        vmap = self.vmap
        assert vmap is not None

        def blocks() -> list[dict[str, str]]:
            fields = encode_block(vmap, service, latest)
            identity = {"PID": f"0x{_pid(vmap, service, latest.get('/ProductName')):04X}", "FW": "164"}
            if service == "battery":  # a battery monitor sends two blocks: the history apart
                main = {k: v for k, v in fields.items() if not k.startswith("H")}
                return [
                    {**identity, "BMV": "SmartShunt", **main},
                    {k: v for k, v in fields.items() if k.startswith("H")},
                ]
            return [{**identity, "SER#": f"HQ{instance:09d}", **fields}]

        return blocks

    @staticmethod
    def _battery(latest: Mapping[str, Scalar]) -> Callable[[], dict[str, float]]:
        def values() -> dict[str, float]:
            out = {
                p: n
                for p in ("/Dc/0/Voltage", "/Dc/0/Current", "/Dc/0/Temperature", "/Soc")
                if (n := as_number(latest.get(p))) is not None
            }
            volts = out.get("/Dc/0/Voltage", 0.0)
            out |= {
                "/Soh": 98.0,
                "/System/MinCellVoltage": round(volts / 16 - 0.006, 3),
                "/System/MaxCellVoltage": round(volts / 16 + 0.006, 3),
            }
            out |= {"/System/MinCellTemperature": 19.85, "/System/MaxCellTemperature": 21.85}
            return out

        return values

    async def start(self) -> None:
        for name, sim in self.sims.items():
            await sim.start()
            self.endpoints.register(name, sim.address)
            if isinstance(sim, VeDirectSim):
                control = sim.link.with_name(sim.link.name + ".unplug") if sim.link is not None else None
            else:
                control = sim.control
            if control is not None:
                self.endpoints.register(f"{name}.unplug", (str(control), 0))

    async def stop(self) -> None:
        for name, sim in self.sims.items():
            self.endpoints.forget(name)
            self.endpoints.forget(f"{name}.unplug")
            await sim.stop()
        for leftover in self.folder.iterdir():
            leftover.unlink()
        self.folder.rmdir()
