"""The ``sunspec`` driver: PV inverters (and the meters SolarEdge chains after them) over SunSpec.

Probe: "SunS" at 40000, 50000 or 0, the model chain, the logical device the role asks for
(``pvinverter``: the first with an inverter model 101–103/111–113; any other role: the
``meter``-th with a meter model 201–204), its model 1 (brand, serial), model 120 (max power)
and its controls (123, else 704; SolarEdge its own registers). Poll: the inverter (or meter)
model in one request, decoded by the plan compiled from mappings/sunspec.csv, plus the
limit in force; Fronius all-zero "null frames" are read again, never published.

The link (one connection per host:port) is shared with every other device at that address,
so a SolarEdge inverter and its meter use SolarEdge's one Modbus-TCP client connection.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Final

from gateway.core.keys import Key, integer, positive
from gateway.core.store import Store, WriteRejected
from gateway.sources.device_state import DeviceState
from gateway.sources.poller import DevicePoller, PollerGroup, ProbeFailed
from gateway.sources.registry import DeviceConfig, DriverSpec, SourceContext, common, role_of
from gateway.sources.sunspec_chain import LogicalDevice, ModelAt, find_base, logical_devices, read_block, walk
from gateway.sources.sunspec_decode import BlockDecoder, is_null_frame
from gateway.sources.sunspec_limit import Model123, Model704, PowerLimiter, SolarEdge
from gateway.transports.tcp import LinkPool, ModbusLink
from registers.model import CompiledMap
from registers.sunspec_models import layout
from registers.values import Scalar, as_number

log = logging.getLogger(__name__)

INVERTERS: Final = (101, 102, 103, 111, 112, 113)
METERS: Final = (201, 202, 203, 204)
BRANDS: Final = (("fronius", "Fronius"), ("sma", "SMA"), ("abb", "ABB"), ("abb", "FIMER"), ("solaredge", "SolarEdge"))
NULL_FRAME_RETRIES: Final = 2
ST_OFFSET: Final = layout(103).points["St"].offset  # the same in 101-103


def brand_of(manufacturer: str) -> str:
    for brand, prefix in BRANDS:
        if manufacturer.strip().lower().startswith(prefix.lower()):
            return brand
    return "generic"


class SunSpecDevice:
    """One SunSpec device (an inverter, or a meter by its role): a ``DeviceDriver``."""

    def __init__(self, cmap: CompiledMap, link: ModbusLink, config: DeviceConfig) -> None:
        self.cmap, self.link, self.config = cmap, link, config
        self.unit: int = config.option("unit")
        self.service: str = config.option("role")
        self.meter_index: int = config.option("meter")
        self.revert_s: float = config.option("limit_revert_s")
        self.brand = "generic"
        self.data: ModelAt | None = None
        self.decoder: BlockDecoder | None = None
        self.limiter: PowerLimiter | None = None

    def fixed_values(self) -> Mapping[str, Scalar]:
        return self.config.config_values(self.service)

    # --- probe -------------------------------------------------------------------------
    async def probe(self) -> Mapping[str, Scalar]:
        async with self.link.lock:
            base = await find_base(self.link, self.unit)
            device = self._pick(logical_devices(await walk(self.link, self.unit, base)))
            common = device.models[0]
            values = self._decode(common, await read_block(self.link, self.unit, common.address, common.size))
            ident = await read_block(self.link, self.unit, common.address + 2, 32)
            manufacturer, model_name = (ident[i : i + 32].split(b"\0")[0].decode("latin-1").strip() for i in (0, 32))
            self.brand = brand_of(manufacturer)
            values["/ProductName"] = f"{manufacturer} {model_name}".strip()
            values["/Mgmt/Connection"] = f"SunSpec {self.link.name} unit {self.unit}"
            if self.service == "pvinverter":
                values.update(await self._probe_inverter(device))
        return values

    def _pick(self, devices: list[LogicalDevice]) -> LogicalDevice:
        wanted = INVERTERS if self.service == "pvinverter" else METERS
        found = [d for d in devices if d.first(*wanted) is not None]
        index = 0 if self.service == "pvinverter" else self.meter_index - 1
        if index >= len(found):
            what = "an inverter model (101-103, 111-113)" if self.service == "pvinverter" else f"meter {index + 1}"
            raise ProbeFailed(f"unit {self.unit}: no {what} in the SunSpec model chain")
        device = found[index]
        self.data = device.first(*wanted)
        assert self.data is not None
        if self.data.id not in self.cmap.sunspec:
            raise ProbeFailed(f"model {self.data.id} has no rows in mappings/sunspec.csv")
        phases = self.data.id % 10 if self.data.id in INVERTERS else 1
        self.decoder = BlockDecoder(self.cmap.sunspec[self.data.id], phases)
        return device

    async def _probe_inverter(self, device: LogicalDevice) -> dict[str, Scalar]:
        values: dict[str, Scalar] = {"/Ac/NumberOfPhases": (self.data.id % 10) if self.data else None}
        nameplate = device.first(120)
        if nameplate is not None:
            values.update(
                self._decode(nameplate, await read_block(self.link, self.unit, nameplate.address, nameplate.size))
            )
        controls, drm = device.first(123), device.first(704)
        if self.brand == "solaredge":
            limiter: PowerLimiter = SolarEdge(self.link, self.unit, self.revert_s)
        elif controls is not None:
            limiter = Model123(self.link, self.unit, self.revert_s, controls, sma=self.brand == "sma")
        elif drm is not None:
            limiter = Model704(self.link, self.unit, self.revert_s, drm)
        else:
            limiter = PowerLimiter(self.link, self.unit, self.revert_s)
        limiter.max_w = as_number(values.get("/Ac/MaxPower"))
        self.limiter = limiter
        model = f"model {self.data.id} at {self.data.address}" if self.data else "?"
        log.info(
            "%s unit %d: %s inverter, %s, limiting by %s", self.link.name, self.unit, self.brand, model, limiter.kind
        )
        return values

    def _decode(self, model: ModelAt, block: bytes) -> dict[str, Scalar]:
        plan = self.cmap.sunspec.get(model.id)
        return BlockDecoder(plan).decode(block) if plan is not None else {}

    # --- poll --------------------------------------------------------------------------
    async def poll(self) -> Mapping[str, Scalar]:
        if self.data is None or self.decoder is None:
            raise ProbeFailed("not probed")
        async with self.link.lock:
            for _ in range(NULL_FRAME_RETRIES + 1):
                block = await read_block(self.link, self.unit, self.data.address, self.data.size)
                if not (self.data.id in (101, 102, 103) and is_null_frame(block, ST_OFFSET)):
                    break
            else:
                raise ProbeFailed(f"unit {self.unit}: only all-zero frames (St=7)")
            values = self.decoder.decode(block)
            if self.limiter is not None:
                await self.limiter.keep_alive()
                values["/Ac/PowerLimit"] = await self.limiter.read()
        return values

    # --- writes ------------------------------------------------------------------------
    async def write(self, changes: Mapping[str, Scalar]) -> Mapping[str, Scalar]:
        published: dict[str, Scalar] = {}
        for path, value in changes.items():
            if path == "/CustomName":
                published[path] = value
            elif path == "/Ac/PowerLimit" and self.limiter is not None:
                watts = as_number(value)
                assert watts is not None  # the write gate checked it
                async with self.link.lock:
                    published[path] = await self.limiter.apply(watts)
            else:
                raise WriteRejected(f"{path} is measured by the device and cannot be written")
        return published

    def lost(self) -> None:
        self.data = self.decoder = self.limiter = None


class SunSpecSource:
    """All ``sunspec`` devices: one poller each, links shared per host:port."""

    def __init__(self, store: Store, devices: Sequence[DeviceConfig], context: SourceContext) -> None:
        self.store = store
        self.devices = devices
        self.cmap = context.cmap
        self.endpoints = context.endpoints
        self.links = LinkPool()
        self.pollers = PollerGroup()

    async def start(self) -> None:
        for d in self.devices:
            host, port = self.endpoints.of(d)
            driver = SunSpecDevice(self.cmap, self.links.get(host, port), d)
            state = DeviceState(f"sunspec {host}:{port} unit {d.option('unit')} ({d.option('role')} {d.instance})")
            poller = DevicePoller(self.store, d.instance, driver, d.option("poll_interval_s"), state)
            await self.pollers.start(poller)

    async def stop(self) -> None:
        await self.pollers.stop()
        await self.links.close()


SPEC: Final = DriverSpec(
    name="sunspec",
    doc="a SunSpec inverter (Fronius, SMA, ABB/FIMER, SolarEdge, generic) or a meter chained after it, Modbus-TCP",
    keys=(
        *common("host", "port", "unit", "role", "position", "poll_interval_s", "simulator"),
        Key("meter", 1, integer(1, 8), "roles other than pvinverter: which meter of the model chain (1 = first)"),
        Key(
            "limit_revert_s",
            120.0,
            positive,
            "power limit: the inverter reverts to 100 % this long after the last write",
        ),
    ),
    service=role_of,
    build=SunSpecSource,
)
