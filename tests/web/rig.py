"""A live web frontend on 127.0.0.1 over a simulated installation (real owners, the real gate)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from gateway.core.settings import Settings
from gateway.core.store import Store
from gateway.core.system import SystemService
from gateway.core.writes import WriteGate
from gateway.frontends.http.api import HttpServer
from gateway.sim.victron import VictronSimulation
from registers import CompiledMap


@dataclass
class WebRig:
    store: Store
    gate: WriteGate
    http: HttpServer
    sim: VictronSimulation

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http.sockets[0][1]}"


@asynccontextmanager
async def web_rig(
    cmap: CompiledMap,
    *,
    writes: bool = True,
    token: str = "",
    allow: Sequence[str] = (),
    ws_send_timeout_s: float = 5.0,
    name: str = "gx-gateway",
    serial: str = "000000000000",
) -> AsyncIterator[WebRig]:
    store = Store()
    settings = Settings(store, None)
    settings.start()
    system = SystemService(store)
    system.start()
    sim = VictronSimulation(store, seed=1)
    sim.start()
    gate = WriteGate(store, cmap)
    http = HttpServer(
        store,
        cmap,
        gate,
        writes=writes,
        token=token,
        allow=allow,
        ws_send_timeout_s=ws_send_timeout_s,
        name=name,
        serial=lambda: serial,
    )
    await http.start("127.0.0.1", 0)
    try:
        yield WebRig(store, gate, http, sim)
    finally:
        await http.stop()
        sim.stop()
        system.stop()
