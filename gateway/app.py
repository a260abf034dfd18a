"""Assembles the gateway from its config as an ordered list of components, and runs it.

Order: the Store first (created with the Gateway), then settings, the system service, the
``[[simulator]]``s (so devices pointed at them find them), one component per device driver,
the Modbus frontend, the NMEA 2000 frontend, MQTT, the HTTP frontend, discovery (which announces
the HTTP port, so it starts after it and stops before it). They start in that
order on one ``AsyncExitStack`` and stop in reverse, so frontends close before the sources
go and pending settings are saved last. Start-up fails fast with one line (port in use,
unwritable state_dir); Ctrl-C and SIGTERM stop cleanly within a second.

A part's module is imported only when the config asks for that part: the HTTP frontend
(aiohttp), discovery, the NMEA 2000 frontend (nmea2000, python-can) and the simulators cost
memory that a gateway without them should not pay (tests/unit/test_lazy_imports.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from gateway.config import Config
from gateway.control.room import ControlRoom
from gateway.core.components import Component, StartupError, start_all
from gateway.core.derived import gateway_version
from gateway.core.health_report import Health
from gateway.core.identity import load_or_create_identity
from gateway.core.persist import LoadReport
from gateway.core.settings import Settings
from gateway.core.store import Store
from gateway.core.system import SystemService
from gateway.core.writes import WriteGate
from gateway.frontends.modbus.server import ModbusServer
from gateway.guards import Guards
from gateway.sources.drivers import DRIVERS
from gateway.sources.registry import DeviceConfig, SourceContext, build_sources
from registers.model import CompiledMap
from registers.values import Scalar

if TYPE_CHECKING:  # imported in plan() when configured (module doc)
    from gateway.frontends.http.api import HttpServer
    from gateway.frontends.mqtt.component import MqttFrontend
    from gateway.frontends.n2k.frontend import N2kFrontend

__all__ = ["Gateway", "StartupError", "run_loop", "serve"]

log = logging.getLogger(__name__)


class SettingsComponent:
    """The settings device; at stop, a pending save is written now."""

    def __init__(
        self,
        store: Store,
        state_dir: Path | None,
        cmap: CompiledMap | None = None,
        defaults: Mapping[str, Scalar] | None = None,
    ) -> None:
        self.state_dir = state_dir
        specs = cmap.paths.get("settings") if cmap is not None else None
        self.settings = Settings(store, state_dir, specs=specs, defaults=defaults)

    async def start(self) -> None:
        try:
            self.settings.start()
        except OSError as e:
            raise StartupError(f"state_dir {self.state_dir}: {_reason(e)}") from None

    async def stop(self) -> None:
        await self.settings.flush()


class SystemComponent:
    """The system service; its serial is the gateway's identity, made once and kept in state_dir."""

    def __init__(self, store: Store, state_dir: Path | None) -> None:
        self.state_dir = state_dir
        self.system = SystemService(store)

    async def start(self) -> None:
        self.system.serial = load_or_create_identity(self.state_dir).serial
        self.system.start()

    async def stop(self) -> None:
        self.system.stop()


class Server(Protocol):
    async def start(self, host: str, port: int) -> None: ...
    async def stop(self) -> None: ...


S = TypeVar("S", bound=Server)
T = TypeVar("T")


class Frontend(Generic[S]):
    """A server listening on HOST:PORT; created at start, so it sees the devices already there."""

    def __init__(self, label: str, make: Callable[[], S], listen: tuple[str, int]) -> None:
        self.label = label
        self.make = make
        self.listen = listen
        self.server: S | None = None

    async def start(self) -> None:
        server = self.make()
        host, port = self.listen
        try:
            await server.start(host, port)
        except OSError as e:
            await server.stop()
            raise StartupError(f"cannot listen on {host}:{port} for {self.label}: {_reason(e)}") from None
        self.server = server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None


@dataclass
class Gateway:
    cmap: CompiledMap
    config: Config
    store: Store = field(default_factory=Store)
    gate: WriteGate = field(init=False)  # the one write gate every frontend writes through
    guards: Guards = field(init=False)  # audit, fd budget, setpoint watchdog, health, TLS
    components: list[Component] = field(init=False)
    sources: SourceContext = field(init=False)  # where each [[device]] is (simulators resolved once started)
    _stack: contextlib.AsyncExitStack | None = field(default=None, init=False)
    _starting: bool = field(default=False, init=False)
    _serial: str | None = field(default=None, init=False)  # the identity's serial, read once for N2K

    def __post_init__(self) -> None:
        self.gate = WriteGate(self.store, self.cmap)
        self.guards = Guards(self.config, self)
        self.components = self.plan()

    def plan(self) -> list[Component]:
        """The components this config asks for, in start order."""
        c, m = self.config, self.config.modbus
        modbus = Frontend(
            "Modbus-TCP",
            lambda: ModbusServer(
                self.cmap,
                self.store,
                writes=m.writes,
                allow=m.allow,
                max_connections=m.max_connections,
                idle_timeout_s=m.idle_timeout_s,
                invalid_zero=m.invalid == "zero",
                gate=self.gate,
                max_per_address=m.max_per_address,
                frame_timeout_s=m.frame_timeout_s,
            ),
            m.listen,
        )
        context = self.sources = SourceContext(self.cmap, state_dir=c.state_dir)
        system = SystemComponent(self.store, c.state_dir)
        settings = SettingsComponent(self.store, c.state_dir, self.cmap, c.control.settings_defaults())
        parts: list[Component] = [settings, system]
        if c.simulators:
            from gateway.sim.protocols.simulators import Simulators

            parts.append(Simulators(self.store, c.simulators, context.endpoints))
        parts += [
            *build_sources(self.store, c.devices, DRIVERS, context),
            ControlRoom(self.store, self.gate, c.control, c.setpoints.timeout_s),  # ESS, limiter, relays
            *self.guards.components(),
            modbus,
        ]
        if m.tls is not None:
            parts.append(Frontend("Modbus/TCP Security", self.guards.tls_server, m.tls.listen))
        if c.n2k is not None and c.n2k.interface != "off":
            parts.append(self._n2k(c))
        if c.n2k is not None and c.n2k.input:
            parts.append(self._n2k_in(c))
        if c.mqtt is not None:  # aiomqtt (paho) loads only then
            from gateway.frontends.mqtt.component import MqttFrontend

            parts.append(MqttFrontend(self.store, self.cmap, self.gate, c.mqtt, lambda: system.system.serial))
        if c.http is not None:
            from gateway.frontends.http.api import HttpServer
            from gateway.ops.routes import with_ops_routes

            h, d = c.http, c.discovery
            serial = lambda: system.system.serial  # noqa: E731 - known once the system service started
            http = Frontend(
                "HTTP",
                lambda: with_ops_routes(  # /healthz, /api/v1/status, /metrics (gateway/ops)
                    HttpServer(
                        self.store,
                        self.cmap,
                        self.gate,
                        writes=h.writes,
                        token=h.token,
                        allow=h.allow,
                        name=d.name,
                        serial=serial,
                        n2k_status=self._n2k_status if c.n2k is not None else None,
                        limits=self.guards.http_limits,
                    ),
                    self,
                ),
                h.listen,
            )
            parts.append(http)
            if d.navico or d.ssdp or d.mdns:
                from gateway.frontends.http.discovery import Discovery

                port = lambda: http.server.sockets[0][1] if http.server else h.listen[1]  # noqa: E731
                parts.append(Discovery(d.name, port, serial, navico=d.navico, ssdp=d.ssdp, mdns=d.mdns))
        return parts

    def _n2k(self, c: Config) -> N2kFrontend:
        from gateway.frontends.n2k.frontend import N2kFrontend, N2kSettings

        assert c.n2k is not None
        n = c.n2k
        settings = N2kSettings(n.interface, n.unique_number_base or None, n.max_bus_load, n.stale_s)
        return N2kFrontend(self.store, self.cmap, settings, c.state_dir, self._n2k_serial, gateway_version())

    def _n2k_serial(self) -> str:
        """The persisted identity's serial, read once: N2K out and in must agree on it."""
        if self._serial is None:
            self._serial = load_or_create_identity(self.config.state_dir).serial
        return self._serial

    def _n2k_in(self, c: Config) -> Component:
        from gateway.core.identity import n2k_unique_base
        from gateway.sources.n2k_in import N2kInput, N2kInSettings
        from gateway.sources.n2k_names import own_names

        assert c.n2k is not None
        n = c.n2k
        spec = n.input if n.input != "same" else n.interface
        if not spec.startswith(("socketcan:", "virtual:")) and n.input == "same":
            raise StartupError(f"n2k.input: true reads the interface; it must be socketcan: or virtual:, not {spec!r}")
        settings = N2kInSettings(spec, frozenset(n.input_pgns), n.input_senders, n.input_first_instance)

        own = own_names(lambda: n.unique_number_base or n2k_unique_base(self._n2k_serial()))
        return N2kInput(self.store, self.cmap, settings, c.state_dir, own)

    def _n2k_status(self) -> dict[str, Any]:
        return self.n2k.stats() if self.n2k is not None else {}

    @property
    def n2k(self) -> N2kFrontend | None:
        if self.config.n2k is None:
            return None
        from gateway.frontends.n2k.frontend import N2kFrontend

        return next((p for p in self.components if isinstance(p, N2kFrontend)), None)

    @property
    def mqtt(self) -> MqttFrontend | None:
        if self.config.mqtt is None:
            return None
        from gateway.frontends.mqtt.component import MqttFrontend

        return next((p for p in self.components if isinstance(p, MqttFrontend)), None)

    @property
    def running(self) -> bool:
        """Started and not (being) stopped."""
        return self._stack is not None

    @property
    def starting(self) -> bool:
        """Between the first component's start and the last one's."""
        return self._starting

    @property
    def devices(self) -> Sequence[DeviceConfig]:
        return self.config.devices

    @property
    def health(self) -> Health:
        return self.guards.health

    @property
    def settings_report(self) -> LoadReport | None:
        for c in self.components:
            if isinstance(c, SettingsComponent):
                return c.settings.load_report
        return None

    @property
    def modbus(self) -> ModbusServer | None:
        return self._server(ModbusServer)

    @property
    def modbus_tls(self) -> ModbusServer | None:
        servers = [c.server for c in self.components if isinstance(c, Frontend) and isinstance(c.server, ModbusServer)]
        return next((s for s in servers if s.tls is not None), None)

    @property
    def http(self) -> HttpServer | None:
        if self.config.http is None:
            return None
        from gateway.frontends.http.api import HttpServer

        return self._server(HttpServer)

    def _server(self, kind: type[T]) -> T | None:
        for c in self.components:
            if isinstance(c, Frontend) and isinstance(c.server, kind):
                return c.server
        return None

    async def start(self) -> None:
        """Start every component; on a failure the started ones are stopped and it raises."""
        self._starting = True
        try:
            self._stack = await start_all(self.components)
        finally:
            self._starting = False

    async def stop(self) -> None:
        """Stop what started, in reverse order (idempotent)."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()


def _reason(e: OSError) -> str:
    """'address already in use', not asyncio's 'error while attempting to bind on ...'."""
    if isinstance(e, socket.gaierror):  # not "unknown error -2"
        return f"cannot resolve the host name ({e.strerror})".lower()
    return (os.strerror(e.errno) if e.errno else str(e)).lower()


async def serve(gateway: Gateway, on_ready: Callable[[Gateway], None]) -> None:
    """Start, report readiness, run until SIGINT/SIGTERM, stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await gateway.start()
        try:
            on_ready(gateway)
            await stop.wait()
            log.info("stopping")
        finally:
            try:
                async with asyncio.timeout(1.0):
                    await gateway.stop()
            except TimeoutError:  # a part that will not stop must not keep the process alive
                log.warning("stopping took over 1 s; exiting without waiting for the rest")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_loop(main: Callable[[], object]) -> None:
    """Run a coroutine function on uvloop where installed (measured faster; see BENCHMARKS)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())  # type: ignore[arg-type]
