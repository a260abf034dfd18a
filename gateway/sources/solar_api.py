"""Fronius Solar API v1 answers -> paths: pure functions, no I/O (tested on real answers).

Why not ``pyfronius``: its README says it is looking for maintainers and is no longer tested
on a device; it also folds the faults we must tell apart (status code 8 = a transient
datamanager timeout, retried quietly; 12 and other codes, HTTP 500 and broken JSON = a missed
poll) into one error, and it has no notion of our night rule. The decoding we need is these
few functions over the documented shapes, checked against real answers in tests/data/fronius.

Rules: power is the inverter's reported PAC, never V x I; per-phase power is PAC shared by
the phases the inverter reports (3PInverterData), since the API has no per-phase power. At
night PAC/IAC/UAC are absent: power is 0 W only while DeviceStatus says the inverter is idle
(starting up / waiting for PV, standby), otherwise invalid; the other values are invalid, never
the last day figure. Energy counters are Wh on the wire, kWh in paths.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from registers.values import Scalar

API_VERSION_PATH: Final = "/solar_api/GetAPIVersion.cgi"
BASE: Final = "/solar_api/v1/"
COMMON: Final = BASE + "GetInverterRealtimeData.cgi?Scope=Device&DeviceId={unit}&DataCollection=CommonInverterData"
THREE_PHASE: Final = BASE + "GetInverterRealtimeData.cgi?Scope=Device&DeviceId={unit}&DataCollection=3PInverterData"
INVERTER_INFO: Final = BASE + "GetInverterInfo.cgi"
METER: Final = BASE + "GetMeterRealtimeData.cgi?Scope=Device&DeviceId={unit}"
ALL_METERS: Final = BASE + "GetMeterRealtimeData.cgi?Scope=System"  # every meter, by device id
POWER_FLOW: Final = BASE + "GetPowerFlowRealtimeData.fcgi"

TRANSIENT_CODE: Final = 8  # "timeout" of the datamanager's internal bus: retry quietly
# DeviceStatus.StatusCode: 0-6 starting up (incl. waiting for PV at night), 7 running,
# 8 standby, 9 boot loading, 10 error. GEN24 adds InverterState text.
IDLE_CODES: Final = frozenset({0, 1, 2, 3, 4, 5, 6, 8})
IDLE_STATES: Final = frozenset({"Sleeping", "Standby", "Startup", "Idle"})
PHASES: Final = (1, 2, 3)


class SolarApiError(Exception):
    """An answer that carries no data: ``code`` is the Head.Status.Code (None for HTTP or JSON
    faults); ``transient`` faults are retried without counting as a missed poll."""

    def __init__(self, message: str, code: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient


def parse(text: str | bytes) -> dict[str, Any]:
    """An answer's JSON, checked: a JSON object whose Head.Status.Code is 0."""
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise SolarApiError(f"invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise SolarApiError("invalid answer: not a JSON object")
    status = _get(doc, "Head", "Status")
    if isinstance(status, dict):  # GetAPIVersion.cgi has no Head
        code = status.get("Code")
        if isinstance(code, int) and code != 0:
            reason = status.get("Reason") or "no reason given"
            raise SolarApiError(f"status code {code}: {reason}", code, transient=code == TRANSIENT_CODE)
    return doc


def _get(doc: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(k)
    return doc


def _number(doc: Any) -> float | None:
    """A Solar API number: bare, or a ``{"Value": x, "Unit": u}`` pair; null/absent -> None."""
    if isinstance(doc, dict):
        doc = doc.get("Value")
    if isinstance(doc, bool) or not isinstance(doc, (int, float)):
        return None
    return float(doc)


def _kwh(wh: float | None) -> float | None:
    return wh / 1000.0 if wh is not None else None


def api_version(doc: Mapping[str, Any]) -> int | None:
    """The API version a datamanager reports (GetAPIVersion.cgi), None if it is not one."""
    v = doc.get("APIVersion")
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def is_idle(common: Mapping[str, Any]) -> bool:
    status = _get(common, "Body", "Data", "DeviceStatus")
    if not isinstance(status, dict):
        return False
    state = status.get("InverterState")
    if isinstance(state, str):
        return state in IDLE_STATES
    code = status.get("StatusCode")
    return isinstance(code, int) and code in IDLE_CODES


def inverter_values(common: Mapping[str, Any], three_phase: Mapping[str, Any] | None) -> dict[str, Scalar]:
    """Paths of a pvinverter from CommonInverterData (+ 3PInverterData when the inverter has it)."""
    data = _get(common, "Body", "Data")
    data = data if isinstance(data, dict) else {}
    per_phase = _get(three_phase, "Body", "Data") if three_phase is not None else None
    per_phase = per_phase if isinstance(per_phase, dict) else {}
    phases = max((n for n in PHASES if f"IAC_L{n}" in per_phase or f"UAC_L{n}" in per_phase), default=1)
    pac = _number(data.get("PAC"))
    if pac is None and is_idle(common):
        pac = 0.0  # night: no PAC, the inverter says it is idle
    total_kwh = _kwh(_number(data.get("TOTAL_ENERGY")))
    status = _get(data, "DeviceStatus")
    status = status if isinstance(status, dict) else {}
    values: dict[str, Scalar] = {
        "/Ac/Power": pac,
        "/Ac/Frequency": _number(data.get("FAC")),
        "/Ac/Energy/Forward": total_kwh,
        "/StatusCode": status.get("StatusCode") if isinstance(status.get("StatusCode"), int) else None,
        "/ErrorCode": status.get("ErrorCode") if isinstance(status.get("ErrorCode"), int) else None,
        "/NrOfPhases": phases,
    }
    for n in PHASES:
        volts = amps = power = energy = None
        if n <= phases:
            if phases == 1:
                volts, amps = _number(data.get("UAC")), _number(data.get("IAC"))
            else:
                volts, amps = _number(per_phase.get(f"UAC_L{n}")), _number(per_phase.get(f"IAC_L{n}"))
            power = pac / phases if pac is not None else None
            energy = total_kwh / phases if total_kwh is not None else None
        values[f"/Ac/L{n}/Voltage"] = volts
        values[f"/Ac/L{n}/Current"] = amps
        values[f"/Ac/L{n}/Power"] = power
        values[f"/Ac/L{n}/Energy/Forward"] = energy
    return values


def meter_values(doc: Mapping[str, Any]) -> dict[str, Scalar]:
    """Paths of a Fronius Smart Meter (GetMeterRealtimeData, Scope=Device): import positive."""
    data = _get(doc, "Body", "Data")
    data = data if isinstance(data, dict) else {}
    values: dict[str, Scalar] = {
        "/Ac/Power": _number(data.get("PowerReal_P_Sum")),
        "/Ac/Frequency": _number(data.get("Frequency_Phase_Average")),
        "/Ac/Energy/Forward": _kwh(_number(data.get("EnergyReal_WAC_Sum_Consumed"))),
        "/Ac/Energy/Reverse": _kwh(_number(data.get("EnergyReal_WAC_Sum_Produced"))),
    }
    for n in PHASES:
        values[f"/Ac/L{n}/Power"] = _number(data.get(f"PowerReal_P_Phase_{n}"))
        values[f"/Ac/L{n}/Voltage"] = _number(data.get(f"Voltage_AC_Phase_{n}"))
        values[f"/Ac/L{n}/Current"] = _number(data.get(f"Current_AC_Phase_{n}"))
    serial = _get(data, "Details", "Serial")
    values["/Serial"] = serial if isinstance(serial, str) and serial else None
    return values
