"""Live Bluetooth LE scanning through bleak (BlueZ over D-Bus); imported only for a live source.

Passive scanning where BlueZ allows it would need experimental features; active scanning is
what BlueZ does by default and what Venus does. Every failure to scan (no adapter, BlueZ not
running, no D-Bus, no permission) is one OSError line, so the caller can retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from gateway.transports.ble_advert import Advert


def _advert(device: BLEDevice, data: AdvertisementData) -> Advert:
    return Advert(
        time.time(),
        device.address.upper(),
        data.rssi,
        data.local_name or device.name or "",
        dict(data.manufacturer_data),
        tuple(u.lower() for u in data.service_uuids),
    )


async def scan(adapter: str | None, deliver: Callable[[Advert], None], up: Callable[[], None]) -> None:
    """Scan until cancelled, handing every advertisement to ``deliver``."""

    def seen(device: BLEDevice, data: AdvertisementData) -> None:
        deliver(_advert(device, data))

    try:
        scanner = BleakScanner(seen, bluez={"adapter": adapter} if adapter else {})
        async with scanner:
            up()
            await asyncio.Event().wait()
    except FileNotFoundError:  # no system D-Bus socket: no BlueZ here (a container without it)
        raise OSError("no Bluetooth: the system D-Bus is not there (BlueZ's bluetoothd must run)") from None
    except (BleakError, OSError, EOFError) as exc:  # EOFError: the D-Bus connection dropped
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OSError(f"no Bluetooth scanning{f' on {adapter}' if adapter else ''}: {why}") from None
