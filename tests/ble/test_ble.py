"""Bluetooth LE sensors: the libraries' published advertisements, adverts we encrypt ourselves
(checked by victron-ble's decoder), a replay through the shared scanner into the Store, the
timeout, and the faults (wrong key, corrupt payload, another manufacturer, no adapter)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from victron_ble.devices import detect_device_type

from gateway.config import ConfigError, parse_config
from gateway.core.store import Store
from gateway.sim.ble_sensors import (
    BATTERY_MONITOR,
    DEMO_MOPEKA,
    MOPEKA_SERVICE,
    SMARTSHUNT_MODEL,
    battery_record,
    instant_readout,
    mopeka_payload,
    write_adverts,
)
from gateway.sources.ble_decode import BleFault, MopekaDecoder, RuuviDecoder, VictronDecoder, level_of
from gateway.sources.ble_source import BleDevices
from gateway.sources.registry import DeviceConfig, SourceContext
from gateway.transports.ble_advert import Advert
from gateway.transports.ble_scan import ScannerPool
from registers import load_default
from registers.ble import ble_map

SHUNT = "C0:3B:98:A1:00:01"
KEY = "0df4d0395b7d1a876c0c33ecb9e70dcd"
BMAP = ble_map(load_default(defer_n2k=True))


def advert(data: bytes, company: int = 0x02E1, address: str = SHUNT) -> Advert:
    return Advert(0.0, address, -60, "", {company: data})


def test_the_published_victron_ble_samples_decode_to_venus_paths() -> None:
    # victron-ble's own test vectors (a SmartShunt 500A and a BlueSolar MPPT 75|15) and their keys
    shunt = bytes.fromhex("100289a302b040af925d09a4d89aa0128bdef48c6298a9")
    battery = VictronDecoder("aff4d0995b7d1e176c0c33ecb9e70dcd", "battery", BMAP).decode(advert(shunt))
    assert battery["/Dc/0/Voltage"] == 12.53 and battery["/Soc"] == 50.0 and battery["/Dc/0/Current"] == 0
    assert battery["/ConsumedAmphours"] == -50.0 and battery["/TimeToGo"] is None  # "not available": invalid
    mppt = bytes.fromhex("100242a0016207adceb37b605d7e0ee21b24df5c")
    solar = VictronDecoder("adeccb947395801a4dd45a2eaa44bf17", "solarcharger", BMAP).decode(advert(mppt))
    assert solar["/State"] == 4 and solar["/Dc/0/Voltage"] == 13.88 and solar["/Dc/0/Current"] == 1.4  # absorption
    assert solar["/Yield/Power"] == 19 and solar["/History/Daily/0/Yield"] == pytest.approx(0.03)


def test_adverts_we_encrypt_are_what_victron_ble_decodes() -> None:
    record = battery_record(13.27, -12.345, 76.4, 41.2, 615, 296.65)
    data = instant_readout(KEY, SMARTSHUNT_MODEL, BATTERY_MONITOR, 0xBEEF, record)
    parser = detect_device_type(data)
    assert parser is not None
    lib = parser(KEY).parse(data)  # the library's own decryption and parsing
    assert (lib.get_voltage(), lib.get_current(), lib.get_soc()) == (13.27, -12.345, 76.4)
    assert lib.get_consumed_ah() == -41.2 and lib.get_remaining_mins() == 615 and lib.get_temperature() == 23.5
    ours = VictronDecoder(KEY, "battery", BMAP).decode(advert(data))
    assert ours["/Dc/0/Voltage"] == lib.get_voltage() and ours["/TimeToGo"] == 615 * 60
    assert ours["/Dc/0/Power"] == pytest.approx(13.27 * -12.345, abs=0.01) and ours["/Dc/0/Temperature"] == 23.5


def test_faults_are_one_reason_each_and_no_values() -> None:
    data = instant_readout(KEY, SMARTSHUNT_MODEL, BATTERY_MONITOR, 7, battery_record(12.5, 1.0, 90, 0, 60))
    cases = [
        (VictronDecoder("ff" * 16, "battery", BMAP), advert(data), "wrong_key"),
        (VictronDecoder(KEY, "solarcharger", BMAP), advert(data), "wrong_kind"),
        (VictronDecoder(KEY, "battery", BMAP), advert(data[:6]), "not_instant_readout"),
        (VictronDecoder(KEY, "battery", BMAP), advert(data, company=0x004C), "other_manufacturer"),  # Apple
        (MopekaDecoder("lpg", 300, 0.05, (), BMAP), advert(b"\x03\x01", company=0x0059), "not_mopeka"),
        (MopekaDecoder("lpg", 300, 0.05, (), BMAP), Advert(0, SHUNT, -1, "", {0x59: b"\x77" * 10}, (MOPEKA_SERVICE,)),
         "corrupt"),
    ]  # fmt: skip
    for decoder, adv, reason in cases:
        with pytest.raises(BleFault) as info:
            decoder.decode(adv)
        assert info.value.reason == reason, (reason, info.value)


def test_a_key_of_the_wrong_length_is_one_config_line() -> None:
    table = {"device": [{"driver": "victron-ble", "instance": 45, "address": SHUNT, "key": "0df4d0"}]}
    with pytest.raises(ConfigError, match=r"^device\[0\]\.key: expected the 32 hex digits .* got 6 characters$"):
        parse_config(table)
    bad_mac = {"device": [{"driver": "mopeka", "instance": 46, "address": "C0:3B:98"}]}
    with pytest.raises(ConfigError, match=r"^device\[0\]\.address: expected a MAC address"):
        parse_config(bad_mac)


def test_a_mopeka_reading_and_a_tank_curve() -> None:
    # raw 330 at 18 °C in fresh water: 330 * (0.600592 + 0.003124 * 58 - 0.00001368 * 58^2) = 242 mm
    payload = mopeka_payload(DEMO_MOPEKA, 330, 18, 2.9)
    tank = MopekaDecoder("fresh-water", 400.0, 0.12, (), BMAP).decode(
        Advert(0, DEMO_MOPEKA, -70, "", {0x59: payload}, (MOPEKA_SERVICE,))
    )
    assert tank["/RawValue"] == 242 and tank["/Level"] == 60.5 and tank["/Remaining"] == pytest.approx(0.0726)
    assert tank["/FluidType"] == 1 and tank["/Temperature"] == 18 and tank["/Status"] == 0
    poor = mopeka_payload(DEMO_MOPEKA, 330, 18, 2.9, quality=0)
    low = MopekaDecoder("fresh-water", 400.0, 0.12, (), BMAP).decode(
        Advert(0, DEMO_MOPEKA, -70, "", {0x59: poor}, (MOPEKA_SERVICE,))
    )
    assert low["/Level"] is None and low["/Status"] == 4  # too poor a reading: invalid, not 0
    curve = ((0.0, 0.0), (100.0, 10.0), (300.0, 80.0), (400.0, 100.0))  # a tank narrower at the bottom
    assert level_of(50, 400, curve) == 5.0 and level_of(200, 400, curve) == 45.0 and level_of(999, 400, curve) == 100


def _device(index: int, driver: str, instance: int, address: str, source: str, **options: object) -> DeviceConfig:
    defaults = {"victron-ble": {"key": KEY, "service": "battery"},
                "mopeka": {"fluid": "fresh-water", "tank_height_mm": 400.0, "curve": (), "capacity_m3": 0.12}}  # fmt: skip
    return DeviceConfig(
        index, driver, instance, None, {"address": address, "source": source, **defaults[driver], **options}
    )


async def until(check, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_replay_through_one_shared_scanner_then_connected_0(tmp_path: Path) -> None:
    log = tmp_path / "adverts.jsonl"
    adverts = []
    for n in range(8):  # 2 s of both sensors at 4 adverts/s
        record = battery_record(12.8, -3.5, 70.0 - n, 20.0, 300)
        data = instant_readout(KEY, SMARTSHUNT_MODEL, BATTERY_MONITOR, n, record)
        adverts.append(Advert(n * 0.25, SHUNT, -60, "SmartShunt", {0x02E1: data}))
        adverts.append(Advert(n * 0.25 + 0.1, DEMO_MOPEKA, -70, "", {0x59: mopeka_payload(DEMO_MOPEKA, 330, 18, 2.9)},
                              (MOPEKA_SERVICE,)))  # fmt: skip
    write_adverts(log, iter(adverts))
    with log.open("a") as f:
        f.write("not json\n")
    store, context = Store(), SourceContext(load_default())
    spec = f"replay:{log}"
    shunt = BleDevices(store, [_device(0, "victron-ble", 45, SHUNT, spec)], context, "victron-ble")
    tank = BleDevices(store, [_device(1, "mopeka", 46, DEMO_MOPEKA, spec)], context, "mopeka")
    await shunt.start()
    await tank.start()
    try:
        assert store.get("battery", 45, "/Connected") == 0  # there from the start, not yet heard
        pool = context.shared["ble"]
        assert isinstance(pool, ScannerPool) and list(pool.scanners) == [spec]  # one scanner for both
        await until(lambda: store.get("battery", 45, "/Soc") == 63.0, 5.0)  # the last advert
        assert store.get("tank", 46, "/Level") == 60.5 and store.get("tank", 46, "/Connected") == 1
        scanner = pool.scanners[spec]
        await until(lambda: scanner.ended)
        ended = time.monotonic()
        await until(
            lambda: store.get("battery", 45, "/Connected") == 0 and store.get("tank", 46, "/Connected") == 0, 10.0
        )
        assert time.monotonic() - ended < 10.0
        assert (
            store.get("battery", 45, "/Soc") is None and store.get("tank", 46, "/Level") is None
        )  # invalid, not stale
        assert scanner.malformed == 1 and shunt.counts["decoded"] == 8 and shunt.counts["timeouts"] == 1
    finally:
        await tank.stop()
        await shunt.stop()
    assert context.shared["ble"] and not pool.scanners  # the last one out stopped the scan
    assert store.device("battery", 45) is None


async def test_a_wrong_key_is_one_line_and_no_values(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "adverts.jsonl"
    data = instant_readout(KEY, SMARTSHUNT_MODEL, BATTERY_MONITOR, 1, battery_record(12.8, -3.5, 70.0, 20.0, 300))
    write_adverts(log, iter([Advert(n * 0.05, SHUNT, -60, "", {0x02E1: data}) for n in range(5)]))
    store = Store()
    wrong = BleDevices(store, [_device(0, "victron-ble", 45, SHUNT, f"replay:{log}", key="11" * 16)],
                       SourceContext(load_default()), "victron-ble")  # fmt: skip
    with caplog.at_level(logging.INFO):
        await wrong.start()
        try:
            await until(lambda: wrong.counts["wrong_key"] == 5)
            assert store.get("battery", 45, "/Soc") is None and store.get("battery", 45, "/Connected") == 0
        finally:
            await wrong.stop()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines == [
        f"Bluetooth {SHUNT} (victron-ble): the advertisement key does not match (see VictronConnect); no values taken"
    ]
    assert not any(r.exc_info for r in caplog.records)


async def test_no_bluetooth_adapter_is_one_line_in_health_and_the_log(caplog: pytest.LogCaptureFixture) -> None:
    store = Store()
    live = BleDevices(store, [_device(0, "mopeka", 46, DEMO_MOPEKA, "bluez")], SourceContext(load_default()), "mopeka")
    with caplog.at_level(logging.WARNING):
        await live.start()
        try:
            await until(lambda: live.health() is not None, 10.0)
            assert (live.health() or "").startswith("bluez: no Bluetooth")
        finally:
            await live.stop()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no Bluetooth" in warnings[0].getMessage() and not warnings[0].exc_info


def test_the_published_ruuvi_format_5_sample() -> None:
    # Ruuvi's data format 5 test vector: 24.3 °C, 53.49 %, 1000.44 hPa, battery 2.977 V
    data = bytes.fromhex("0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F")
    values = RuuviDecoder(BMAP).decode(Advert(0, "CB:B8:33:4C:88:4F", -70, "", {0x0499: data}))
    assert values["/Temperature"] == 24.3 and values["/Humidity"] == 53.49 and values["/Pressure"] == 1000.44
    assert values["/BatteryVoltage"] == pytest.approx(2.977)
    with pytest.raises(BleFault) as info:
        RuuviDecoder(BMAP).decode(Advert(0, "CB:B8:33:4C:88:4F", -70, "", {0x0499: data[:10]}))
    assert info.value.reason == "corrupt"  # a truncated payload


async def test_a_looped_replay_goes_on_and_its_unplug_file_silences_it(tmp_path: Path) -> None:
    log = tmp_path / "adverts.jsonl"
    payload = {0x59: mopeka_payload(DEMO_MOPEKA, 330, 18, 2.9)}
    write_adverts(log, iter([Advert(n * 0.05, DEMO_MOPEKA, -70, "", payload, (MOPEKA_SERVICE,)) for n in range(4)]))
    pool, heard = ScannerPool(), []
    scanner = pool.subscribe(f"replay-loop:{log}", DEMO_MOPEKA, heard.append)
    try:
        await until(lambda: len(heard) >= 10, 5.0)  # more than the file holds: it started again
        assert scanner.passes >= 2 and not scanner.ended
        (tmp_path / "adverts.jsonl.unplug").touch()
        await asyncio.sleep(0.4)
        before = len(heard)
        await asyncio.sleep(0.5)
        assert len(heard) == before and scanner.withheld > 0  # out of range: nothing delivered
        (tmp_path / "adverts.jsonl.unplug").unlink()
        await until(lambda: len(heard) > before, 2.0)
    finally:
        await pool.unsubscribe(f"replay-loop:{log}", DEMO_MOPEKA, heard.append)


def test_every_mappings_ble_row_names_a_value_its_library_has() -> None:
    """A row naming a getter the library lacks would be invalid for ever: caught here, with the
    libraries installed (registers/ compiles without them)."""
    from ruuvitag_ble.df5_decoder import DataFormat5Decoder
    from victron_ble.devices.battery_monitor import BatteryMonitorData
    from victron_ble.devices.solar_charger import SolarChargerData

    kinds = {"battery": BatteryMonitorData, "solarcharger": SolarChargerData}
    for row in BMAP.fields["victron"]:
        assert callable(getattr(kinds[row.service], f"get_{row.field}", None)), row
    for row in BMAP.fields["ruuvi"]:
        assert isinstance(getattr(DataFormat5Decoder, row.field, None), property), row
    mopeka = MopekaDecoder("fresh-water", 400.0, 0.12, (), BMAP).decode(
        Advert(0, DEMO_MOPEKA, -70, "", {0x59: mopeka_payload(DEMO_MOPEKA, 330, 18, 2.9)}, (MOPEKA_SERVICE,))
    )
    assert all(mopeka[row.path] is not None for row in BMAP.fields["mopeka"])  # each key is one the library gives
