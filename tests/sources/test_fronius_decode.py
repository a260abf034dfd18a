"""The Solar API decoding, against real datamanager answers (tests/data/fronius)."""

from __future__ import annotations

import json
import re

import pytest

from gateway.sources.solar_api import SolarApiError, inverter_values, meter_values, parse
from tests.helpers import REFERENCE, need_interop, reference_data


def load(name: str) -> dict[str, object]:
    return parse(reference_data(f"fronius/{name}").read_bytes())


def samples() -> dict[str, str]:
    """The answers in solar_api_samples.txt by title line ("# Nighttime" switches to night)."""
    text = reference_data("fronius/solar_api_samples.txt").read_text(encoding="utf-8")
    found: dict[str, str] = {}
    night = False
    for block in re.split(r"\n(?=http://|# Nighttime)", text):
        if block.startswith("# Nighttime"):
            night = True
            continue
        head, _, body = block.partition("\n")
        if head.startswith("http://") and body.strip().startswith("{"):
            key = ("night " if night else "") + head.split("/solar_api/")[1]
            _doc, end = json.JSONDecoder().raw_decode(body.strip())
            found.setdefault(key, body.strip()[:end])
    return found


def test_symo_day() -> None:
    v = inverter_values(load("symo__GetInverterRealtimeData_Device_1.json"), None)
    assert v["/Ac/Power"] == 1190 and v["/Ac/L1/Power"] == 1190  # PAC, not UAC x IAC (1182.8)
    assert v["/Ac/L1/Voltage"] == pytest.approx(227.9) and v["/Ac/L1/Current"] == pytest.approx(5.19)
    assert v["/Ac/Frequency"] == pytest.approx(49.94)
    assert v["/Ac/Energy/Forward"] == pytest.approx(44188.0)
    assert v["/StatusCode"] == 7 and v["/NrOfPhases"] == 1
    assert v["/Ac/L2/Power"] is None


def test_symo_night_is_zero_watts_because_idle_and_nothing_else() -> None:
    v = inverter_values(load("symo__GetInverterRealtimeData_Device_1_night.json"), None)
    assert v["/Ac/Power"] == 0.0  # StatusCode 3: starting up / waiting for PV
    assert v["/Ac/L1/Voltage"] is None and v["/Ac/L1/Current"] is None and v["/Ac/Frequency"] is None
    assert v["/Ac/Energy/Forward"] == pytest.approx(44186.9)  # the counter stays valid
    assert v["/ErrorCode"] == 307


def test_night_without_idle_status_is_invalid_never_the_day_figure() -> None:
    doc = load("symo__GetInverterRealtimeData_Device_1_night.json")
    doc["Body"]["Data"]["DeviceStatus"]["StatusCode"] = 10  # type: ignore[index]
    assert inverter_values(doc, None)["/Ac/Power"] is None


def test_gen24_float_values_and_state_text() -> None:
    v = inverter_values(load("gen24__GetInverterRealtimeData_Device_1.json"), None)
    assert v["/Ac/Power"] == pytest.approx(37.320449829101562)
    assert v["/Ac/Energy/Forward"] == pytest.approx(1530.19342)


def test_three_phase_data_from_the_samples() -> None:
    s = samples()
    common = parse(s["v1/GetInverterRealtimeData.cgi?Scope=Device&DeviceId=1&DataCollection=CommonInverterData"])
    three = parse(s["v1/GetInverterRealtimeData.cgi?Scope=Device&DeviceId=1&DataCollection=3PInverterData"])
    v = inverter_values(common, three)
    assert v["/NrOfPhases"] == 3
    assert v["/Ac/Power"] == 225
    assert [v[f"/Ac/L{n}/Power"] for n in (1, 2, 3)] == [pytest.approx(75.0)] * 3  # PAC shared
    assert [v[f"/Ac/L{n}/Voltage"] for n in (1, 2, 3)] == [225.1, 227.8, 225.8]
    assert [v[f"/Ac/L{n}/Current"] for n in (1, 2, 3)] == [0.38, 0.23, 0.33]
    night_common = parse(
        s["night v1/GetInverterRealtimeData.cgi?Scope=Device&DeviceId=1&DataCollection=CommonInverterData"]
    )
    night_three = parse(s["night v1/GetInverterRealtimeData.cgi?Scope=Device&DeviceId=1&DataCollection=3PInverterData"])
    n = inverter_values(night_common, night_three)
    assert n["/Ac/Power"] == 0.0 and n["/Ac/L1/Voltage"] is None  # StatusCode 5 = starting up


def test_status_code_12_is_an_error_and_8_is_transient() -> None:
    s = samples()
    with pytest.raises(SolarApiError) as info:
        parse(s["v1/GetSensorRealtimeData.cgi?Scope=Device&DeviceId=1&DataCollection=NowSensorData"])
    assert info.value.code == 12 and not info.value.transient
    assert "No SensorCard" in str(info.value)
    doc = json.loads(reference_data("fronius/symo__GetPowerFlowRealtimeData.json").read_text())
    doc["Head"]["Status"]["Code"] = 8
    with pytest.raises(SolarApiError) as info:
        parse(json.dumps(doc))
    assert info.value.transient


def test_invalid_json_is_one_clear_error() -> None:
    with pytest.raises(SolarApiError, match="invalid JSON"):
        parse('{"Body": {"Data": {"PAC": ')
    with pytest.raises(SolarApiError, match="not a JSON object"):
        parse("[1, 2]")


def test_smart_meter_import_positive() -> None:
    v = meter_values(load("symo__GetMeterRealtimeData_Device_0.json"))
    assert v["/Ac/Power"] == pytest.approx(5592.57)
    assert v["/Ac/L3/Power"] == pytest.approx(2311.22)
    assert v["/Ac/L1/Voltage"] == pytest.approx(228.6) and v["/Ac/L3/Current"] == pytest.approx(10.102)
    assert v["/Ac/Energy/Forward"] == pytest.approx(15303.334)
    assert v["/Ac/Energy/Reverse"] == pytest.approx(35623.065)
    assert v["/Serial"] == "12345678" and v["/Ac/Frequency"] == 50


@pytest.mark.interop
def test_copies_match_the_shared_reference() -> None:
    folder = REFERENCE / "fronius"
    need_interop(folder.is_dir(), f"shared reference data not found at {folder}")
    for p in sorted(folder.iterdir()):
        assert reference_data(f"fronius/{p.name}").read_bytes() == p.read_bytes(), p.name
