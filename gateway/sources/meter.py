"""The ``meter`` driver: energy meters described by mappings/devices (no code per model).

Probe: with ``model`` set, that file's model (a first poll proves the meter answers); without
it, every distinct probe register of the packaged models is read once and the model whose ids
match is taken. A meter that answers an id no file claims is *unsupported*: one clear log
line, the device stays disconnected (``/Connected`` 0), the gateway runs on. Poll: the reads
the compiler planned (function code 3 or 4, at most 125 registers each), decoded by the
model's fields. Over Modbus-TCP (a link per host:port) or Modbus RTU (``transport = "rtu"``:
a link per serial port, the meters on one RS485 bus polled in turn; gateway/transports/rtu.py),
the same files and plans either way. The meter publishes as its ``role`` (grid, pvinverter with its position,
genset, acload, evcharger). The framework (gateway/sources/poller.py) does the rest: three
missed polls invalidate, the link's jittered back-off, coming back by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, Protocol

from gateway.core.components import StartupError
from gateway.core.keys import Key, text
from gateway.core.store import Store, WriteRejected
from gateway.sources.device_state import DeviceState
from gateway.sources.meter_rtu import KEYS as RTU_KEYS
from gateway.sources.meter_rtu import check_transports, is_rtu, serial_settings
from gateway.sources.poller import DevicePoller, PollerGroup, ProbeFailed
from gateway.sources.registry import DeviceConfig, DriverSpec, SourceContext, common, common_default, role_of
from gateway.transports.rtu import RtuPool
from gateway.transports.tcp import ExceptionResponse, LinkPool, ModbusError
from registers.meters import MeterModel, MeterProbe, meter_models
from registers.values import Scalar

if TYPE_CHECKING:
    from prometheus_client.core import Metric

log = logging.getLogger(__name__)


class RegisterLink(Protocol):
    """What a meter is read through: a Modbus-TCP link or an RS485 bus (Modbus RTU)."""

    protocol: str
    lock: asyncio.Lock  # held for a meter's whole probe or poll: one meter at a time per link

    @property
    def name(self) -> str: ...

    async def read_locked(
        self, unit: int, address: int, count: int, timeout_s: float | None = None, function: int = 3
    ) -> bytes: ...


class UnsupportedDevice(ProbeFailed):
    """It answers, but as a model no device file describes."""


async def identify(
    link: RegisterLink, unit: int, models: Mapping[str, MeterModel], timeout_s: float | None = None
) -> MeterModel:
    """The model whose probe matches what the meter answers (one read per probe register)."""
    groups: dict[tuple[int, int, str, bool], list[MeterModel]] = {}
    for m in models.values():
        if m.probe is not None:
            groups.setdefault(m.probe.key, []).append(m)
    unknown: list[str] = []
    for candidates in groups.values():
        probe: MeterProbe = candidates[0].probe  # type: ignore[assignment]
        try:
            data = await link.read_locked(unit, probe.address, probe.codec.width, timeout_s, probe.function)
        except ExceptionResponse:
            continue  # not this family: it has no such register
        if len(data) != 2 * probe.codec.width:
            continue
        value = probe.value(data)
        for m in candidates:
            if m.probe is not None and m.probe.matches(value):
                return m
        unknown.append(f"{value!r} at register {probe.address:#06x}")
    if unknown:
        raise UnsupportedDevice(
            f"unit {unit}: model id {', '.join(unknown)} is not in mappings/devices/meters.csv (unsupported meter)"
        )
    raise ProbeFailed(f"unit {unit}: no known meter model answers (set `model` for meters that cannot be probed)")


class MeterDevice:
    """One meter: a ``DeviceDriver`` for the poller."""

    def __init__(
        self, models: Mapping[str, MeterModel], link: RegisterLink, config: DeviceConfig, role: str, wanted: str | None
    ) -> None:
        self.models = models
        self.link = link
        self.config = config
        self.unit: int = config.option("unit")
        self.service = role
        self.wanted = wanted  # a model name, or None: probe
        self.model: MeterModel | None = None
        self._reported: str | None = None

    def fixed_values(self) -> Mapping[str, Scalar]:
        return self.config.config_values(self.service)

    async def probe(self) -> Mapping[str, Scalar]:
        async with self.link.lock:
            if self.wanted is not None:
                self.model = self.models[self.wanted]
            else:
                try:
                    self.model = await identify(self.link, self.unit, self.models)
                except UnsupportedDevice as e:
                    if str(e) != self._reported:  # one line per new finding, not one per retry
                        log.warning("meter %s: %s", self.link.name, e)
                        self._reported = str(e)
                    raise
            model = self.model
            identity = await self._identity(model)
        log.info("meter %s unit %d: %s (%s)", self.link.name, self.unit, model.product, model.name)
        return {
            "/ProductName": model.product,
            "/Mgmt/Connection": f"{self.link.protocol} {self.link.name} unit {self.unit}",
            "/NrOfPhases": model.phases,
            **identity,
        }

    async def _identity(self, model: MeterModel) -> dict[str, Scalar]:
        """The identity blocks (serial number ...), read once: a meter that refuses one (some
        firmware answers exception 02 for a serial number block) keeps working without it."""
        answers: dict[int, bytes] = {}
        for i, b in enumerate(model.blocks):
            if not b.identity:
                continue
            try:
                data = await self.link.read_locked(self.unit, b.address, b.count, None, b.function)
            except ExceptionResponse as e:
                paths = ", ".join(f.path for _, _, f in b.fields)
                log.info(
                    "meter %s unit %d: no %s (it refuses register %#06x: %s)",
                    self.link.name,
                    self.unit,
                    paths,
                    b.address,
                    e,
                )
                continue
            if len(data) == 2 * b.count:
                answers[i] = data
        return model.decode(answers)

    async def poll(self) -> Mapping[str, Scalar]:
        model = self.model
        if model is None:
            raise ProbeFailed("not probed")
        answers: dict[int, bytes] = {}
        async with self.link.lock:
            for i, b in enumerate(model.blocks):
                if b.identity:
                    continue  # read once, at probe
                data = await self.link.read_locked(self.unit, b.address, b.count, None, b.function)
                if len(data) != 2 * b.count:
                    raise ModbusError(f"read {b.address}+{b.count}: {len(data) // 2} registers answered")
                answers[i] = data
        return model.decode(answers)

    async def write(self, changes: Mapping[str, Scalar]) -> Mapping[str, Scalar]:
        if set(changes) <= {"/CustomName"}:
            return dict(changes)
        raise WriteRejected("a meter's values are measured and cannot be written")

    def lost(self) -> None:
        if self.wanted is None:
            self.model = None  # it may come back as another meter


class ModbusDevices:
    """All devices of one device-file driver: one poller each, links shared per host:port
    (or per serial port: one RS485 bus)."""

    driver = "meter"

    def __init__(self, store: Store, devices: Sequence[DeviceConfig], context: SourceContext) -> None:
        self.store = store
        self.devices = devices
        self.models = meter_models(context.cmap)
        self.endpoints = context.endpoints
        self.links = LinkPool()
        self.buses = RtuPool()
        self.pollers = PollerGroup()

    def role(self, d: DeviceConfig) -> str:
        return str(d.option("role"))

    def model_name(self, d: DeviceConfig) -> str | None:
        model = d.options.get("model")
        return str(model) if model is not None else None

    def check(self, d: DeviceConfig) -> None:
        name = self.model_name(d)
        if name is not None and name not in self.models:
            known = ", ".join(sorted(self.models))
            raise StartupError(f"{d.where}.model: no meter file devices/{name}.csv (known: {known})")

    async def start(self) -> None:
        for d in self.devices:
            self.check(d)
        for d in self.devices:
            link: RegisterLink
            if is_rtu(d):
                link = self.buses.get(str(d.option("port")), serial_settings(d))
                where = link.name
            else:
                host, port = self.endpoints.of(d)
                link = self.links.get(host, port)
                where = f"{host}:{port}"
            driver = MeterDevice(self.models, link, d, self.role(d), self.model_name(d))
            name = f"{self.driver} {where} unit {d.option('unit')} ({driver.service} {d.instance})"
            poller = DevicePoller(self.store, d.instance, driver, d.option("poll_interval_s"), DeviceState(name))
            await self.pollers.start(poller)

    async def stop(self) -> None:
        await self.pollers.stop()
        await self.links.close()
        await self.buses.close()

    def collect_metrics(self) -> Iterable[Metric]:
        """Per RS485 bus: requests, answers failing their CRC, requests no unit answered."""
        if not self.buses.links:
            return
        from prometheus_client.core import CounterMetricFamily  # only when scraped

        for name, doc, attr in (
            ("gxgw_rtu_requests", "Modbus RTU requests sent, by serial port", "requests"),
            ("gxgw_rtu_crc_errors", "Modbus RTU answers failing their CRC, by serial port", "crc_errors"),
            ("gxgw_rtu_timeouts", "Modbus RTU requests no unit answered in time, by serial port", "timeouts"),
        ):
            family = CounterMetricFamily(name, doc, labels=("port",))
            for path, link in sorted(self.buses.links.items()):
                family.add_metric((path,), getattr(link, attr))
            yield family


ROLE: Final = common_default("role", "grid")
SPEC: Final = DriverSpec(
    name="meter",
    doc="an energy meter described by a file of mappings/devices (Carlo Gavazzi, Eastron, ABB ...), Modbus-TCP or RTU",
    keys=(
        *RTU_KEYS,
        *common("unit"),
        ROLE,
        *common("position", "poll_interval_s", "simulator"),
        Key("model", None, text, "the meter file's name (e.g. sdm630) for meters that cannot be probed"),
    ),
    service=role_of,
    build=ModbusDevices,
    rules=check_transports,
)
