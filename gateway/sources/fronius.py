"""The ``fronius`` driver: a Fronius inverter, or the datamanager's Smart Meter, read over the
Solar API (HTTP JSON).

``unit`` is the Solar API device id. With ``role = "pvinverter"`` (the default) it is an
inverter; with a meter role (grid, genset, acload, evcharger) it is a Smart Meter read with
GetMeterRealtimeData (import positive) and published as that service type. Probe: GetAPIVersion.cgi (API v1) and
GetInverterInfo.cgi (the device id exists). Poll (every ``poll_interval_s``, 5 s by default as
the datamanager updates): CommonInverterData and 3PInverterData, decoded by the pure functions
of solar_api.py (PAC as reported, the night rule). Faults: status code 8 and HTTP timeouts
are retried at once, quietly (the datamanager's ~1 % hiccups); HTTP errors, broken JSON and
other status codes are a missed poll, and three missed polls invalidate the values, as for
Modbus devices (the same poller runs it). One aiohttp session per gateway for all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from gateway.core.keys import Key, positive
from gateway.core.store import Store, WriteRejected
from gateway.sources.device_state import DeviceState
from gateway.sources.poller import DevicePoller, PollerGroup, ProbeFailed
from gateway.sources.registry import DeviceConfig, DriverSpec, SourceContext, common, common_default, role_of
from gateway.sources.solar_api import (
    API_VERSION_PATH,
    COMMON,
    INVERTER_INFO,
    METER,
    THREE_PHASE,
    SolarApiError,
    api_version,
    inverter_values,
    meter_values,
    parse,
)
from gateway.transports.http import HttpClient, HttpError
from gateway.transports.tcp import ModbusError
from registers.values import Scalar

log = logging.getLogger(__name__)

QUIET_RETRIES: Final = 2  # status code 8 / timeouts retried at once within one poll


class SolarApiMiss(ModbusError):
    """A Solar API request without data. A ModbusError for the poller: it counts missed polls
    of every polled device the same way, whatever the protocol."""


class FroniusDevice:
    service = "pvinverter"

    def __init__(self, http: HttpClient, base: str, config: DeviceConfig, timeout_s: float) -> None:
        self.http = http
        self.base = base
        self.config = config
        self.unit: int = config.option("unit")
        self.timeout_s = timeout_s
        self.retries = 0  # quiet retries done (diagnostics, tests)

    def fixed_values(self) -> Mapping[str, Scalar]:
        return self.config.config_values(self.service)

    async def _get(self, path: str) -> dict[str, Any]:
        """One answer, retried quietly on status code 8 and timeouts."""
        for attempt in range(QUIET_RETRIES + 1):
            last = attempt == QUIET_RETRIES
            try:
                status, body = await self.http.get(self.base + path, self.timeout_s)
                if status != 200:
                    raise SolarApiMiss(f"{path.split('?')[0]}: HTTP {status}")
                return parse(body)
            except SolarApiError as e:
                if e.transient and not last:
                    self.retries += 1
                    continue
                raise SolarApiMiss(f"{path.split('?')[0]}: {e}") from None
            except TimeoutError:
                if not last:
                    self.retries += 1
                    continue
                raise SolarApiMiss(f"{self.base}: no answer within {self.timeout_s:g} s") from None
            except HttpError as e:
                raise SolarApiMiss(f"{self.base}: {e.reason}") from None
        raise AssertionError("unreachable")

    async def probe(self) -> Mapping[str, Scalar]:
        version = api_version(await self._get(API_VERSION_PATH))
        if version != 1:
            raise ProbeFailed(f"{self.base}: not a Solar API v1 datamanager (APIVersion {version})")
        info = (await self._get(INVERTER_INFO)).get("Body", {}).get("Data", {})
        if str(self.unit) not in info:
            raise ProbeFailed(f"{self.base}: no inverter with device id {self.unit} (it has {', '.join(info)})")
        log.info("fronius %s: inverter device id %d", self.base, self.unit)
        return {"/ProductName": "Fronius (Solar API)", "/Mgmt/Connection": f"Solar API {self.base} device {self.unit}"}

    async def poll(self) -> Mapping[str, Scalar]:
        common_data = await self._get(COMMON.format(unit=self.unit))
        try:
            three = await self._get(THREE_PHASE.format(unit=self.unit))
        except SolarApiMiss:
            three = None  # one-phase inverters have no 3PInverterData
        return inverter_values(common_data, three)

    async def write(self, changes: Mapping[str, Scalar]) -> Mapping[str, Scalar]:
        if set(changes) <= {"/CustomName"}:
            return dict(changes)
        raise WriteRejected("the Solar API is read-only: use the sunspec driver to limit power")

    def lost(self) -> None:
        return None


class FroniusMeterDevice(FroniusDevice):
    """The datamanager's Smart Meter, published as its role (grid by default for meters)."""

    def __init__(self, http: HttpClient, base: str, config: DeviceConfig, timeout_s: float) -> None:
        super().__init__(http, base, config, timeout_s)
        self.service = str(config.option("role"))

    async def probe(self) -> Mapping[str, Scalar]:
        version = api_version(await self._get(API_VERSION_PATH))
        if version != 1:
            raise ProbeFailed(f"{self.base}: not a Solar API v1 datamanager (APIVersion {version})")
        values = meter_values(await self._get(METER.format(unit=self.unit)))
        if values["/Ac/Power"] is None:
            raise ProbeFailed(f"{self.base}: no Smart Meter with device id {self.unit}")
        log.info("fronius %s: Smart Meter device id %d as %s", self.base, self.unit, self.service)
        return {
            "/ProductName": "Fronius Smart Meter (Solar API)",
            "/Mgmt/Connection": f"Solar API {self.base} meter {self.unit}",
            "/NrOfPhases": 3,
        }

    async def poll(self) -> Mapping[str, Scalar]:
        return meter_values(await self._get(METER.format(unit=self.unit)))


class FroniusSource:
    def __init__(self, store: Store, devices: Sequence[DeviceConfig], context: SourceContext) -> None:
        self.store = store
        self.devices = devices
        self.endpoints = context.endpoints
        self.http = HttpClient(limit_per_host=1)  # a datamanager answers one request at a time
        self.pollers = PollerGroup()

    async def start(self) -> None:
        await self.http.open()
        for d in self.devices:
            host, port = self.endpoints.of(d)
            base = f"http://{host}:{port}"
            role = str(d.option("role"))
            kind = FroniusDevice if role == "pvinverter" else FroniusMeterDevice
            driver = kind(self.http, base, d, d.option("timeout_s"))
            name = f"fronius {base} device {d.option('unit')} ({role} {d.instance})"
            poller = DevicePoller(self.store, d.instance, driver, d.option("poll_interval_s"), DeviceState(name))
            await self.pollers.start(poller)

    async def stop(self) -> None:
        await self.pollers.stop()
        await self.http.close()


SPEC: Final = DriverSpec(
    name="fronius",
    doc="a Fronius inverter (role pvinverter) or the datamanager's Smart Meter (a meter role) read over the "
    "Solar API (HTTP JSON); unit = its Solar API device id",
    keys=(
        *common("host"),
        common_default("port", 80),
        *common("unit", "role", "position", "simulator"),
        common_default("poll_interval_s", 5.0),  # the datamanager updates about every 5 s
        Key("timeout_s", 2.0, positive, "seconds to wait for an answer (a timeout is retried at once, twice)"),
    ),
    service=role_of,
    build=FroniusSource,
)
