"""What ``gx-gateway scan --ble`` finds: the BLE sensors in the air, by kind, and whether a key
is needed. It listens to one source's scanner for a while (every address) and classifies each
advertiser by its manufacturer data, without the decoding libraries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.transports.ble_advert import Advert
from gateway.transports.ble_scan import ScannerPool

VICTRON, MOPEKA, RUUVI = 0x02E1, 0x0059, 0x0499
VICTRON_RECORDS = {0x01: ("solar charger", "solarcharger"), 0x02: ("battery monitor", "battery")}
MOPEKA_MODELS = {0x03: "Pro Check", 0x04: "Pro-200", 0x05: "Pro Check H2O", 0x08: "Pro Plus", 0x0A: "TD40/TD200",
                 0x0C: "Pro Check Universal"}  # fmt: skip


@dataclass
class Seen:
    address: str
    name: str
    rssi: int
    driver: str | None  # None: not a sensor we read
    kind: str
    needs_key: bool = False
    service: str | None = None  # victron-ble's service key
    adverts: int = 0


def classify(advert: Advert) -> Seen:
    seen = Seen(advert.address, advert.name, advert.rssi, None, "other")
    victron = advert.manufacturer.get(VICTRON)
    if victron is not None and len(victron) > 4 and victron[0] == 0x10:
        kind, service = VICTRON_RECORDS.get(victron[4], (f"Victron record {victron[4]:#04x}", None))
        seen.driver, seen.kind, seen.needs_key, seen.service = ("victron-ble" if service else None), kind, True, service
        seen.kind = f"Victron {kind}"
    elif (mopeka := advert.manufacturer.get(MOPEKA)) is not None and mopeka[:1] and mopeka[0] in MOPEKA_MODELS:
        seen.driver, seen.kind = "mopeka", f"Mopeka {MOPEKA_MODELS[mopeka[0]]}"
    elif (ruuvi := advert.manufacturer.get(RUUVI)) is not None and ruuvi[:1] in (b"\x03", b"\x05", b"\x06", b"\xe1"):
        seen.driver, seen.kind = "ruuvi", "RuuviTag"
    return seen


async def discover(source: str, seconds: float, tick: Callable[[float], None] = lambda _: None) -> list[Seen]:
    """Every advertiser heard within ``seconds`` (the strongest RSSI kept), sensors first."""
    found: dict[str, Seen] = {}

    def heard(advert: Advert) -> None:
        new = classify(advert)
        old = found.setdefault(advert.address, new)
        old.adverts += 1
        old.rssi = max(old.rssi, advert.rssi)
        old.name = old.name or advert.name

    pool = ScannerPool()
    scanner = pool.subscribe(source, "*", heard)
    start = time.monotonic()
    try:
        while (elapsed := time.monotonic() - start) < seconds and not scanner.ended and not scanner.problem:
            tick(min(elapsed, seconds))
            await asyncio.sleep(0.1)
    finally:
        await pool.unsubscribe(source, "*", heard)
    if scanner.problem and not found:
        raise OSError(scanner.problem)
    return sorted(found.values(), key=lambda s: (s.driver is None, -s.rssi))
