"""NMEA 2000 in over real transports: a candump -L replay and python-can's virtual bus, with the
faults of a real backbone (broken fast-packet sequences, reserved values, duplicates, floods,
our own frames)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import can
import pytest

from gateway.core.store import Store
from gateway.frontends.n2k.frontend import N2kFrontend, N2kSettings
from gateway.sim.n2k_log import Sender, claim_frame, data_frames, demo_senders, product_frames, write_log
from gateway.sources.n2k_in import N2kInput, N2kInSettings
from gateway.sources.n2k_names import own_names
from gateway.transports.can_raw import CandumpReplay, RawFrame
from registers import load_default

CMAP = load_default()


def tank(address: int, unique: int, instance: int = 0, level: float = 0.5, maker: int = 144) -> Sender:
    return Sender(address, unique, maker, 75, 150, f"Tank {unique}", "fluidLevel",
                  {"instance": instance, "type": "Water", "level": level, "capacity": 0.1}, interval_s=0.2)  # fmt: skip


def no_one(name: int) -> bool:
    return False


async def until(check, timeout: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def values(store: Store, service: str, instance: int) -> dict[str, object]:
    device = store.device(service, instance)
    assert device is not None, f"no {service} {instance}: {[(d.service, d.instance) for d in store.devices()]}"
    return {p: r.value for p, r in device.values.items()}


async def test_candump_replay_publishes_the_demo_senders_then_they_go_disconnected(tmp_path: Path) -> None:
    log = tmp_path / "n2k.log"
    senders = demo_senders()
    for s in senders:
        s.interval_s = 0.3
    write_log(log, senders, 2.0)
    store = Store()
    reader = N2kInput(store, CMAP, N2kInSettings(f"candump-replay:{log}"), tmp_path, no_one, bus=CandumpReplay(log))
    await reader.start()
    try:
        await until(lambda: store.get("temperature", 42, "/Temperature") is not None)
        fresh, diesel, fridge = values(store, "tank", 40), values(store, "tank", 41), values(store, "temperature", 42)
        assert fresh["/Level"] == 62.0 and fresh["/FluidType"] == 1 and fresh["/Capacity"] == pytest.approx(0.2)
        assert fresh["/ProductName"] == "Tank sender fresh aft" and fresh["/Connected"] == 1
        assert diesel["/Level"] == 35.0 and diesel["/FluidType"] == 0  # Fuel
        assert fridge["/Temperature"] == pytest.approx(4.0) and fridge["/TemperatureType"] == 1
        await until(lambda: reader.ended, 5.0)
        ended = time.monotonic()
        await until(lambda: store.get("tank", 40, "/Connected") == 0, 5.0)
        assert time.monotonic() - ended < 3 * 0.3 + 1.5  # 3 missed intervals (1 s at least) + the watch tick
        assert store.get("tank", 40, "/Level") is None  # invalid, never a stale number
        assert reader.counts["decode_errors"] == 0 and reader.counts["claims"] == 3
    finally:
        await reader.stop()
    # a restart keeps each sender on its instance (n2k-in.json)
    store = Store()
    again = N2kInput(store, CMAP, N2kInSettings(f"candump-replay:{log}"), tmp_path, no_one, bus=CandumpReplay(log))
    assert again.senders.table == {} and (tmp_path / "n2k-in.json").exists()
    again.senders.load()
    assert sorted(again.senders.table.values()) == [40, 41, 42]


async def test_a_looped_replay_keeps_its_senders_connected_past_its_end(tmp_path: Path) -> None:
    """The demo's ``candump-loop:``: a 1 s log read for 3 s, the senders never time out, their
    new claims at each pass keep the same services (no new instances)."""
    log = tmp_path / "n2k.log"
    senders = demo_senders()
    for s in senders:
        s.interval_s = 0.3
    write_log(log, senders, 1.0)
    store = Store()
    reader = N2kInput(store, CMAP, N2kInSettings(f"candump-loop:{log}"), tmp_path, no_one)
    await reader.start()
    try:
        assert store.get("tank", 40, "/Connected") == 1  # the log's first instant is read at start
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            assert all(store.get(*k, "/Connected") == 1 for k in (("tank", 40), ("tank", 41), ("temperature", 42)))
            await asyncio.sleep(0.1)
        assert isinstance(reader.bus, CandumpReplay) and reader.bus.passes >= 2 and not reader.ended
        assert sorted(d.instance for d in store.devices() if d.service in ("tank", "temperature")) == [40, 41, 42]
        assert reader.counts["timeouts"] == 0
    finally:
        await reader.stop()


async def test_a_bus_missing_at_start_is_one_warning_and_read_once_it_is_there(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "later.log"
    store = Store()
    reader = N2kInput(store, CMAP, N2kInSettings(f"candump-replay:{log}"), tmp_path, no_one)
    with caplog.at_level(logging.INFO, logger="gateway.sources.n2k_in"):
        await reader.start()  # no file: the gateway starts all the same
        try:
            assert reader.health() == f"NMEA 2000 in: waiting: candump-replay:{log}: no such file"
            await asyncio.sleep(1.2)  # the first retry fails too: still one line
            senders = demo_senders()
            for s in senders:
                s.interval_s = 0.3
            write_log(log, senders, 1.0)
            await until(lambda: store.get("tank", 40, "/Level") == 62.0, 5.0)
            assert reader.health() is None and reader.stats()["open"] is True
        finally:
            await reader.stop()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [f"NMEA 2000 in: candump-replay:{log}: no such file (retrying)"]
    assert not any(r.exc_info for r in caplog.records)
    assert any(r.getMessage() == f"NMEA 2000 in: candump-replay:{log} is open now" for r in caplog.records)


class Bus:
    """A peer node on the virtual bus."""

    def __init__(self, channel: str) -> None:
        self.bus = can.Bus(interface="virtual", channel=channel)

    def send(self, frames: list[RawFrame] | RawFrame) -> None:
        for f in frames if isinstance(frames, list) else [frames]:
            self.bus.send(can.Message(arbitration_id=f.can_id, data=f.data, is_extended_id=True))

    def close(self) -> None:
        self.bus.shutdown()


@pytest.fixture
async def rig(tmp_path: Path):  # type: ignore[no-untyped-def]
    channel = f"n2kin{time.monotonic_ns()}"
    store = Store()
    reader = N2kInput(store, CMAP, N2kInSettings(f"virtual:{channel}", max_frames_per_source=500), tmp_path, no_one)
    await reader.start()
    peer = Bus(channel)
    yield store, reader, peer, channel
    peer.close()
    await reader.stop()


async def test_faults_on_a_virtual_bus(rig) -> None:  # type: ignore[no-untyped-def]
    store, reader, peer, _ = rig
    a, b = tank(50, 111, instance=3, level=0.25), tank(51, 222, instance=3, level=0.75)  # same data instance
    peer.send([claim_frame(a), claim_frame(b)])
    # 126996 (fast-packet) with frames out of order: canboat's reassembler puts them in order
    frames = product_frames(a)
    peer.send([frames[0], frames[2], frames[1], *frames[3:]])
    # and b's with a frame missing: never joined into a wrong payload
    frames = product_frames(b)
    peer.send([*frames[:2], *frames[3:]])
    peer.send(data_frames(a, 0.0))
    peer.send(data_frames(b, 0.0))
    await until(lambda: len(reader.services) == 2)
    levels = sorted(store.get("tank", s.instance, "/Level") for s in reader.services.values())
    assert levels == [25.0, 75.0]  # two senders, one data instance: two services
    key, bkey = f"{a.name:016X}/tank/3", f"{b.name:016X}/tank/3"
    assert store.get("tank", reader.services[key].instance, "/ProductName") == "Tank 111"
    assert store.get("tank", reader.services[bkey].instance, "/ProductName") == "NMEA 2000 tank"
    # counter wrap: 9 sequences of 126996 in a row, the 3-bit counter wrapping from 7 to 0
    for _ in range(9):
        peer.send(product_frames(b))
    await until(lambda: store.get("tank", reader.services[bkey].instance, "/ProductName") == "Tank 222")
    assert reader.counts["decode_errors"] == 0
    # "not available" fields: invalid, never 0
    peer.send(data_frames(a, 0.0, {"level": None, "capacity": None}))
    await until(lambda: store.get("tank", reader.services[key].instance, "/Level") is None)
    assert store.get("tank", reader.services[key].instance, "/Capacity") is None
    # the sender moves to another address (a new claim): same service
    a.address = 60
    peer.send(claim_frame(a))
    peer.send(data_frames(a, 0.0, {"level": 0.5}))
    await until(lambda: store.get("tank", reader.services[key].instance, "/Level") == 50.0)
    assert len(reader.services) == 2
    assert "address 60" in str(store.get("tank", reader.services[key].instance, "/Mgmt/Connection"))


async def test_a_flood_from_one_source_is_bounded_and_the_others_get_through(rig) -> None:  # type: ignore[no-untyped-def]
    store, reader, peer, _ = rig
    noisy, quiet = tank(70, 701, instance=1), tank(71, 702, instance=2)
    peer.send([claim_frame(noisy), claim_frame(quiet)])
    flood = data_frames(noisy, 0.0) * 10_000
    started = time.process_time()
    peer.send(flood[:5000])
    for n in range(10):
        peer.send(data_frames(quiet, 0.0, {"level": n / 100}))
    peer.send(flood[5000:])
    await until(lambda: reader.counts["frames"] >= 10_012, 10.0)
    cpu = time.process_time() - started
    assert reader.counts["flood_dropped"] >= 10_000 - 2 * 500
    qkey = f"{quiet.name:016X}/tank/2"
    assert store.get("tank", reader.services[qkey].instance, "/Level") == pytest.approx(9.0)  # the last one: none lost
    assert cpu < 5.0, cpu  # sending and reading 10,000 frames in this process


async def test_our_own_virtual_devices_are_never_read_back(tmp_path: Path) -> None:
    channel = f"own{time.monotonic_ns()}"
    store = Store()
    store.add_device("tank", 20, values={"/Level": 40.0, "/FluidType": 1, "/Capacity": 0.2})
    base = 4096
    settings = N2kSettings(f"virtual:{channel}", unique_number_base=base)
    out = N2kFrontend(store, CMAP, settings, tmp_path / "out", lambda: "0123456789ab", "test")
    reader = N2kInput(store, CMAP, N2kInSettings(f"virtual:{channel}"), tmp_path, own_names(lambda: base))
    await reader.start()
    await out.start()
    peer = Bus(channel)
    try:
        other = tank(90, 9000, instance=0, maker=2046)  # our maker code, not our block: a sender
        imposter = tank(91, base + 1, instance=5, maker=2046)  # a NAME in our block: treated as ours
        peer.send([claim_frame(other), claim_frame(imposter)])
        peer.send(data_frames(imposter, 0.0))
        peer.send(data_frames(other, 0.0))
        await until(lambda: reader.counts["own"] >= 3 and len(reader.services) == 1, 5.0)
        await asyncio.sleep(0.5)
        (svc,) = reader.services.values()
        assert svc.key.startswith(f"{other.name:016X}/") and [d.instance for d in store.devices("tank")] == [
            20,
            svc.instance,
        ]
        # N2K out does not echo what N2K in read: the sender is on the bus already
        node = out.nodes.get(("tank", svc.instance))
        assert node is None or node.devices == []
    finally:
        peer.close()
        await out.stop()
        await reader.stop()


async def test_the_pgn_and_sender_filters(tmp_path: Path) -> None:
    channel = f"flt{time.monotonic_ns()}"
    store = Store()
    settings = N2kInSettings(f"virtual:{channel}", senders=("Maretron",))
    reader = N2kInput(store, CMAP, settings, tmp_path, no_one)
    await reader.start()
    peer = Bus(channel)
    try:
        mercury, maretron = tank(80, 801, maker=144), tank(81, 802, instance=1, maker=137)
        peer.send([claim_frame(mercury), claim_frame(maretron)])
        peer.send(data_frames(mercury, 0.0))
        peer.send(data_frames(maretron, 0.0))
        await until(lambda: len(reader.services) == 1 and reader.counts["filtered"] >= 1)
        assert next(iter(reader.services)).startswith(f"{maretron.name:016X}/")
    finally:
        peer.close()
        await reader.stop()


async def test_a_battery_monitor_and_a_vecan_charger(rig) -> None:  # type: ignore[no-untyped-def]
    store, reader, peer, _ = rig
    bmv = Sender(60, 3001, 358, 35, 170, "BMV-712", "batteryStatus",
                 {"instance": 1, "voltage": 12.84, "current": -4.5, "temperature": 298.15})  # fmt: skip
    mppt = Sender(61, 3002, 358, 35, 160, "SmartSolar VE.Can", "chargerStatus",
                  {"instance": 0, "batteryInstance": 0, "operatingState": "Bulk", "chargeMode": "Standalone",
                   "enabled": "On"})  # fmt: skip
    peer.send([claim_frame(bmv), claim_frame(mppt)])
    peer.send(data_frames(bmv, 0.0))
    soc = Sender(60, 3001, 358, 35, 170, "BMV-712", "dcDetailedStatus",
                 {"instance": 1, "dcType": "Battery", "stateOfCharge": 0.87, "timeRemaining": 7200})  # fmt: skip
    peer.send(data_frames(soc, 0.0))
    peer.send(data_frames(mppt, 0.0))
    volts = Sender(61, 3002, 358, 35, 160, "SmartSolar VE.Can", "batteryStatus", {"instance": 0, "voltage": 13.6})
    peer.send(data_frames(volts, 0.0))
    await until(lambda: len(reader.services) == 2 and reader.counts["decoded"] >= 4)
    battery = values(store, "battery", reader.services[f"{bmv.name:016X}/battery/1"].instance)
    assert battery["/Dc/0/Voltage"] == pytest.approx(12.84) and battery["/Dc/0/Current"] == pytest.approx(-4.5)
    assert battery["/Dc/0/Temperature"] == pytest.approx(25.0) and battery["/Soc"] == pytest.approx(87.0)
    assert battery["/TimeToGo"] == 7200
    charger = values(store, "solarcharger", reader.services[f"{mppt.name:016X}/solarcharger/0"].instance)
    assert charger["/State"] == 3 and charger["/Mode"] == 1 and charger["/Dc/0/Voltage"] == pytest.approx(13.6)
    assert charger["/Dc/0/Current"] is None  # not sent: invalid, not 0
