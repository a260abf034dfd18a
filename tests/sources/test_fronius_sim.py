"""The Fronius simulator answers like a real datamanager: real shapes, day and night, faults."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from gateway.sim.protocols.fronius_sim import FroniusSimulator
from gateway.sources import solar_api
from tests.helpers import reference_data


def shape(doc: Any) -> Any:
    """Keys all the way down (values dropped), to compare answers with real ones."""
    if isinstance(doc, dict):
        return {k: shape(v) for k, v in doc.items() if k not in ("Timestamp",)}
    return type(doc).__name__ if not isinstance(doc, (int, float)) or isinstance(doc, bool) else "number"


async def get(sim: FroniusSimulator, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{sim.port}{path}") as r:
        return r.status, await r.text()


@pytest.fixture
async def sim() -> Any:
    s = FroniusSimulator()
    s.state.phases = 1
    await s.start()
    yield s
    await s.stop()


async def test_day_and_night_have_the_real_shapes(sim: FroniusSimulator) -> None:
    for night, real in (
        (False, "symo__GetInverterRealtimeData_Device_1.json"),
        (True, "symo__GetInverterRealtimeData_Device_1_night.json"),
    ):
        sim.state.night = night
        status, text = await get(sim, solar_api.COMMON.format(unit=1))
        assert status == 200
        ours, theirs = json.loads(text), json.loads(reference_data(f"fronius/{real}").read_text())
        assert shape(ours["Body"]) == shape(theirs["Body"]), night
        assert shape(ours["Head"]["Status"]) == shape(theirs["Head"]["Status"])
    v = solar_api.inverter_values(solar_api.parse(text), None)
    assert v["/Ac/Power"] == 0.0 and v["/Ac/L1/Voltage"] is None


async def test_api_version_and_three_phase(sim: FroniusSimulator) -> None:
    status, text = await get(sim, solar_api.API_VERSION_PATH)
    assert status == 200 and solar_api.api_version(json.loads(text)) == 1
    sim.state.phases = 3
    _, common = await get(sim, solar_api.COMMON.format(unit=1))
    _, three = await get(sim, solar_api.THREE_PHASE.format(unit=1))
    v = solar_api.inverter_values(solar_api.parse(common), solar_api.parse(three))
    assert v["/NrOfPhases"] == 3 and v["/Ac/Power"] == sim.state.pac_w
    assert v["/Ac/L2/Voltage"] == sim.state.volts[1]


async def test_faults_on_command(sim: FroniusSimulator) -> None:
    url = solar_api.COMMON.format(unit=1)
    for code in (8, 12):
        sim.faults.status_code = code
        with pytest.raises(solar_api.SolarApiError) as info:
            solar_api.parse((await get(sim, url))[1])
        assert info.value.code == code and info.value.transient == (code == 8)
    sim.faults.status_code = 0
    with pytest.raises(solar_api.SolarApiError) as info:
        solar_api.parse((await get(sim, solar_api.COMMON.format(unit=5)))[1])
    assert info.value.code == 12  # no inverter with that device id
    sim.faults.http_error = 500
    assert (await get(sim, url))[0] == 500
    sim.faults.http_error = None
    sim.faults.broken_json = True
    with pytest.raises(solar_api.SolarApiError, match="invalid JSON"):
        solar_api.parse((await get(sim, url))[1])
    sim.faults.broken_json = False
    port = sim.port
    await sim.offline()
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(sim, url)
    await sim.online()
    assert sim.port == port and (await get(sim, url))[0] == 200


async def test_serves_the_real_answers_verbatim(sim: FroniusSimulator) -> None:
    real = reference_data("fronius/symo__GetInverterRealtimeData_Device_1.json").read_text()
    sim.canned["CommonInverterData"] = real
    status, text = await get(sim, solar_api.COMMON.format(unit=1))
    assert status == 200 and text == real
