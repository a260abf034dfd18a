"""The ``canbms`` driver on python-can's virtual bus, fed by the BMS simulator: the battery's
values equal the frames sent, 0 A limits are limits, short frames and unknown ids are counted,
and silence gives /Connected 0 within 5 s with recovery by itself."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway.core.store import Store
from gateway.sim.canbms_sim import CanBmsSim
from gateway.sources.canbms import CanBms
from gateway.sources.registry import DeviceConfig
from gateway.transports.can_raw import RawFrame, parse_raw_bus
from registers.canbms_frames import decode_frame, encode_frames
from tests.sources.test_vedirect_driver import until


def test_frames_round_trip_and_short_frames_are_cut() -> None:
    values = {"/Info/MaxChargeVoltage": 53.2, "/Info/MaxChargeCurrent": 0.0, "/Dc/0/Current": -12.5}
    frames = encode_frames(values, {"/Alarms/HighVoltage": 2, "/Alarms/CellImbalance": 1}, "BYD")
    got, short = decode_frame(0x351, frames[0x351])
    assert got["/Info/MaxChargeVoltage"] == pytest.approx(53.2) and got["/Info/MaxChargeCurrent"] == 0 and not short
    alarms, _ = decode_frame(0x35A, frames[0x35A])
    assert (
        alarms["/Alarms/HighVoltage"] == 2
        and alarms["/Alarms/CellImbalance"] == 1
        and alarms["/Alarms/LowVoltage"] == 0
    )
    assert decode_frame(0x35E, frames[0x35E])[0] == {"/ProductName": "BYD"}
    cut, short = decode_frame(0x356, frames[0x356][:3])
    assert cut == {"/Dc/0/Voltage": 0.0} and short == 2


async def test_bms_on_a_virtual_bus(tmp_path: Path) -> None:
    channel = f"bms-{time.monotonic_ns()}"
    control = tmp_path / "bms.unplug"
    sim = CanBmsSim(f"virtual:{channel}", interval_s=0.3, control=control)
    sim.limits["/Info/MaxChargeCurrent"] = 0.0  # a full battery: no charging, honoured
    store = Store()
    bms = CanBms(store, DeviceConfig(0, "canbms", 512, "House", {"interface": f"virtual:{channel}"}), silence_s=2.0)
    await sim.start()
    await bms.start()
    noise = parse_raw_bus("test", f"virtual:{channel}")
    await noise.open()
    try:
        await until(lambda: store.get("battery", 512, "/Connected") == 1, 3)
        await asyncio.sleep(0.7)
        dev = store.device("battery", 512)
        assert dev is not None
        for path, value in sim.sent.items():
            assert dev.get(path) == pytest.approx(value, abs=0.011), path
        assert dev.get("/Info/MaxChargeCurrent") == 0 and dev.get("/ProductName") == "PYLON"
        assert dev.get("/Io/AllowToCharge") == 1 and dev.get("/Alarms/HighVoltage") == 0

        noise.send(RawFrame(0, 0x356, False, b"\x01"))  # short DLC
        noise.send(RawFrame(0, 0x123, False, b"\x00"))  # an id no BMS sends
        await until(lambda: bms.short >= 3 and bms.unknown >= 1, 2)

        control.touch()  # the BMS cable is pulled
        pulled = time.monotonic()
        await until(lambda: store.get("battery", 512, "/Connected") == 0, 5)
        assert time.monotonic() - pulled <= 3.5 and dev.get("/Soc") is None
        control.unlink()
        await until(lambda: store.get("battery", 512, "/Connected") == 1, 3)
    finally:
        await noise.close()
        await bms.stop()
        await sim.stop()


async def test_a_candump_recording_replays_into_the_battery(tmp_path: Path) -> None:
    """``interface = "candump-replay:FILE"``: a recorded bus (candump -L lines, with a short
    frame, an unknown id and a garbage line in it) gives the battery its values, then silence."""
    from gateway.transports.can_raw import format_candump_line

    values = {"/Info/MaxChargeVoltage": 56.8, "/Info/MaxChargeCurrent": 0.0, "/Info/MaxDischargeCurrent": 75.0}
    values |= {"/Soc": 64, "/Soh": 97, "/Dc/0/Voltage": 52.31, "/Dc/0/Current": -14.2, "/Dc/0/Temperature": 18.5}
    lines = []
    for i, (can_id, data) in enumerate(encode_frames(values, {"/Alarms/LowTemperature": 1}, "BYD").items()):
        lines.append(format_candump_line(RawFrame(1_700_000_000 + i * 0.01, can_id, False, data)))
    lines += ["(1700000000.200000) can0 356#01", "(1700000000.210000) can0 18EEFF00#0011", "not a candump line"]
    recording = tmp_path / "bms.log"
    recording.write_text("\n".join(lines) + "\n", encoding="ascii")
    store = Store()
    bms = CanBms(store, DeviceConfig(0, "canbms", 512, None, {"interface": f"candump-replay:{recording}"}), 1.0)
    await bms.start()
    try:
        await until(lambda: bms.frames >= 8 and bms.unknown >= 1, 3)  # 7 frames and a short one
        dev = store.device("battery", 512)
        assert dev is not None
        for path, value in values.items():
            assert dev.get(path) == pytest.approx(value, abs=1e-6), path
        assert dev.get("/Alarms/LowTemperature") == 1 and dev.get("/ProductName") == "BYD" and bms.short >= 2
        await until(lambda: dev.get("/Connected") == 0, 3)  # the recording has ended: silence
        assert dev.get("/Soc") is None
    finally:
        await bms.stop()


async def test_a_bad_interface_is_one_startup_line() -> None:
    from gateway.core.components import StartupError

    store = Store()
    bms = CanBms(store, DeviceConfig(3, "canbms", 512, None, {"interface": "can0"}))
    with pytest.raises(StartupError, match=r"^device\[3\]\.interface: expected socketcan:IFACE, virtual:NAME"):
        await bms.start()
    assert store.devices() == []
