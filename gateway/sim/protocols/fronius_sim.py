"""A Fronius datamanager: the Solar API v1 over HTTP (aiohttp), day and night, with faults.

Answers have the shapes of real Symo datamanagers (tests/data/fronius holds real answers; a
test compares the keys): ``Head`` (RequestArguments, Status, Timestamp) and ``Body.Data`` with
``{"Unit", "Value"}`` pairs. At night PAC, IAC, UAC and FAC are absent and DeviceStatus says
"starting up" (StatusCode 3), as a real inverter does after sunset. ``canned`` serves fixed
answer texts (e.g. the real files) instead of the live state. Faults on command: ``status_code``
(8 = datamanager timeout, 12 = no such device ...), ``http_error`` (e.g. 500), ``broken_json``,
``offline()``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

RUNNING, STARTUP = 7, 3


@dataclass
class InverterState:
    phases: int = 3
    pac_w: float = 1190.0
    volts: tuple[float, float, float] = (229.9, 231.2, 230.4)
    fac_hz: float = 49.99
    total_wh: float = 44188000.0
    day_wh: float = 1113.0
    year_wh: float = 25508798.0
    night: bool = False
    error_code: int = 0

    def amps(self, n: int) -> float:
        return round(self.pac_w / self.phases / self.volts[n - 1], 3)


@dataclass
class Faults:
    status_code: int = 0  # Head.Status.Code of every answer (0 = fine)
    http_error: int | None = None  # answer every request with this HTTP status
    broken_json: bool = False  # answer with text that is not JSON
    times: int | None = None  # the faults above apply to this many answers, then clear (None: until cleared)
    requests: int = 0

    def spend(self) -> None:
        if self.times is not None:
            self.times -= 1
            if self.times <= 0:
                self.status_code, self.http_error, self.broken_json, self.times = 0, None, False, None


def _value(value: float, unit: str) -> dict[str, Any]:
    return {"Unit": unit, "Value": value}


class FroniusSimulator:
    def __init__(self, device_id: int = 1, state: InverterState | None = None) -> None:
        self.device_id = device_id
        self.state = state or InverterState()
        self.faults = Faults()
        # The Smart Meter on the datamanager (device id 0): W per phase, import positive.
        self.meter_id = 0
        self.meter_w = [-1200.0, 300.0, 150.0]
        self.meter_v = [230.1, 229.4, 231.0]
        self.canned: dict[str, str] = {}  # DataCollection / endpoint name -> fixed answer text
        self.host = "127.0.0.1"
        self.port = 0
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_get("/solar_api/GetAPIVersion.cgi", self._api_version)
        app.router.add_get("/solar_api/v1/GetInverterInfo.cgi", self._inverter_info)
        app.router.add_get("/solar_api/v1/GetInverterRealtimeData.cgi", self._inverter)
        app.router.add_get("/solar_api/v1/GetPowerFlowRealtimeData.fcgi", self._power_flow)
        app.router.add_get("/solar_api/v1/GetMeterRealtimeData.cgi", self._meter)
        self.app = app

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        server = site._server
        assert server is not None
        self.host, self.port = server.sockets[0].getsockname()[:2]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def offline(self) -> None:
        await self.stop()

    async def online(self) -> None:
        if self._runner is None:
            await self.start(self.host, self.port)

    # --- answers ---------------------------------------------------------------------------
    def _answer(self, name: str, args: dict[str, str], data: Any, no_such_device: bool = False) -> web.Response:
        faults = self.faults
        faults.requests += 1
        http_error, broken, code = faults.http_error, faults.broken_json, faults.status_code
        faults.spend()
        code = 12 if no_such_device else code
        if http_error is not None:
            return web.Response(status=http_error, text="Internal Server Error")
        if broken:
            return web.Response(text='{"Body": {"Data": {"PAC": ', content_type="application/json")
        if name in self.canned and not code:
            return web.Response(text=self.canned[name], content_type="application/json")
        status = {"Code": code, "Reason": _REASONS.get(code, "") if code else "", "UserMessage": ""}
        head = {"RequestArguments": args, "Status": status, "Timestamp": datetime.now(UTC).isoformat()}
        doc: dict[str, Any] = {"Body": {"Data": data if code == 0 else {}}, "Head": head}
        return web.Response(text=json.dumps(doc), content_type="application/json")

    async def _api_version(self, request: web.Request) -> web.Response:
        self.faults.requests += 1
        doc = {"APIVersion": 1, "BaseURL": "/solar_api/v1/", "CompatibilityRange": "1.7-3"}
        return web.Response(text=json.dumps(doc), content_type="application/json")

    async def _inverter_info(self, request: web.Request) -> web.Response:
        s = self.state
        info = {
            str(self.device_id): {
                "CustomName": "Symo",
                "DT": 123,
                "ErrorCode": s.error_code,
                "PVPower": 8200,
                "Show": 1,
                "StatusCode": STARTUP if s.night else RUNNING,
                "UniqueID": "476",
            }
        }
        return self._answer("GetInverterInfo", {}, info)

    async def _inverter(self, request: web.Request) -> web.Response:
        q = request.query
        collection = q.get("DataCollection", "")
        args = {
            "DataCollection": collection,
            "DeviceClass": "Inverter",
            "DeviceId": q.get("DeviceId", ""),
            "Scope": "Device",
        }
        if q.get("DeviceId") != str(self.device_id):
            return self._answer(collection, args, {}, no_such_device=True)
        data = self.common() if collection == "CommonInverterData" else self.three_phase()
        return self._answer(collection, args, data)

    async def _meter(self, request: web.Request) -> web.Response:
        """GetMeterRealtimeData, Scope=Device (the field names of a real Symo's Smart Meter),
        or Scope=System: every meter, by device id."""
        q = request.query
        if q.get("Scope") == "System":
            args = {"DeviceClass": "Meter", "Scope": "System"}
            return self._answer("GetMeterRealtimeData", args, {str(self.meter_id): self.meter_data()})
        args = {"DeviceClass": "Meter", "DeviceId": q.get("DeviceId", ""), "Scope": "Device"}
        if q.get("DeviceId") != str(self.meter_id):
            return self._answer("GetMeterRealtimeData", args, {}, no_such_device=True)
        return self._answer("GetMeterRealtimeData", args, self.meter_data())

    def meter_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "Details": {"Manufacturer": "Fronius", "Model": "Smart Meter 63A", "Serial": "18480000"},
            "Enable": 1,
            "EnergyReal_WAC_Sum_Consumed": 3162000,
            "EnergyReal_WAC_Sum_Produced": 1850000,
            "Frequency_Phase_Average": 50.0,
            "Meter_Location_Current": 0,
            "PowerReal_P_Sum": sum(self.meter_w),
            "Visible": 1,
        }
        for n in range(1, 4):
            data[f"PowerReal_P_Phase_{n}"] = self.meter_w[n - 1]
            data[f"Voltage_AC_Phase_{n}"] = self.meter_v[n - 1]
            data[f"Current_AC_Phase_{n}"] = round(abs(self.meter_w[n - 1]) / self.meter_v[n - 1], 3)
        return dict(sorted(data.items()))

    async def _power_flow(self, request: web.Request) -> web.Response:
        s = self.state
        p = None if s.night else s.pac_w
        inverters = {
            str(self.device_id): {"DT": 121, "E_Day": s.day_wh, "E_Total": s.total_wh, "E_Year": s.year_wh, "P": p or 0}
        }
        site = {
            "E_Day": s.day_wh,
            "E_Total": s.total_wh,
            "E_Year": s.year_wh,
            "Meter_Location": "grid",
            "Mode": "meter",
        }
        site |= {"P_Akku": None, "P_Grid": None, "P_Load": None, "P_PV": p}
        return self._answer("PowerFlow", {}, {"Inverters": inverters, "Site": site, "Version": "12"})

    def common(self) -> dict[str, Any]:
        s = self.state
        data: dict[str, Any] = {
            "DAY_ENERGY": _value(s.day_wh, "Wh"),
            "DeviceStatus": {
                "ErrorCode": s.error_code,
                "LEDColor": 1 if s.night else 2,
                "LEDState": 0,
                "MgmtTimerRemainingTime": 17 if s.night else -1,
                "StateToReset": False,
                "StatusCode": STARTUP if s.night else RUNNING,
            },
            "IDC": _value(0 if s.night else round(s.pac_w / 520.0, 2), "A"),
            "TOTAL_ENERGY": _value(s.total_wh, "Wh"),
            "UDC": _value(16 if s.night else 518, "V"),
            "YEAR_ENERGY": _value(s.year_wh, "Wh"),
        }
        if not s.night:
            data |= {
                "FAC": _value(s.fac_hz, "Hz"),
                "IAC": _value(round(s.pac_w / s.volts[0], 2), "A"),
                "PAC": _value(s.pac_w, "W"),
                "UAC": _value(s.volts[0], "V"),
            }
        return dict(sorted(data.items()))

    def three_phase(self) -> dict[str, Any]:
        s = self.state
        if s.night or s.phases == 1:
            return {}
        data: dict[str, Any] = {}
        for n in range(1, s.phases + 1):
            data[f"IAC_L{n}"] = _value(s.amps(n), "A")
            data[f"UAC_L{n}"] = _value(s.volts[n - 1], "V")
        return data


_REASONS = {8: "Timeout.", 12: "No Inverter with this index found."}
