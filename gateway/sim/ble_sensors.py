"""Bluetooth LE advertisements as the sensors send them, for the BLE drivers' demo and tests.

Written from the published formats, not from the decoders (which check them):

- Victron Instant Readout: ``10 02 | model id (LE16) | record type | IV (LE16) | key[0] |``
  then the record, its bit fields packed LSB first, encrypted AES-128-CTR with the device's
  advertisement key and the IV as the low bytes of a little-endian 128-bit counter.
- Mopeka Pro Check: 10 bytes of company 0x0059 data with the Mopeka service UUID: model,
  battery (V x 32), temperature + 40 (bit 7 the button), 14-bit raw level and 2-bit quality,
  the MAC's low 3 bytes, accelerometer x and y.

``python -m gateway.sim.ble_sensors FILE`` writes the demo's replay: a SmartShunt and a Mopeka
tank sensor, once a second for two minutes.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gateway.transports.ble_advert import Advert, format_advert_line

T0: Final = 1764806400.0
SMARTSHUNT_MODEL: Final = 0xA389  # SmartShunt 500A/50mV
SMARTSOLAR_MODEL: Final = 0xA053  # SmartSolar MPPT 75/15
BATTERY_MONITOR, SOLAR_CHARGER = 0x02, 0x01
MOPEKA_SERVICE: Final = "0000fee5-0000-1000-8000-00805f9b34fb"
# The demo's sensors (their keys are in demo.toml, as a user pastes them from VictronConnect)
DEMO_SHUNT: Final = ("C0:3B:98:A1:00:01", "0df4d0395b7d1a876c0c33ecb9e70dcd")
DEMO_MOPEKA: Final = "C0:3B:98:A1:00:02"


def pack_bits(fields: Sequence[tuple[int, int]]) -> bytes:
    """(value, width) fields packed LSB first, as Victron's extra manufacturer data is."""
    acc, pos = 0, 0
    for value, width in fields:
        acc |= (value & ((1 << width) - 1)) << pos
        pos += width
    return acc.to_bytes((pos + 7) // 8, "little")


def aes_ctr(key: bytes, iv: int, data: bytes) -> bytes:
    """AES-CTR with a little-endian 128-bit counter starting at the IV (one ECB block each)."""
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    stream = b"".join(ecb.update((iv + n).to_bytes(16, "little")) for n in range((len(data) + 15) // 16))
    return bytes(a ^ b for a, b in zip(data, stream, strict=False))


def instant_readout(key_hex: str, model: int, record_type: int, iv: int, record: bytes) -> bytes:
    key = bytes.fromhex(key_hex)
    head = b"\x10\x02" + model.to_bytes(2, "little") + bytes([record_type]) + iv.to_bytes(2, "little")
    return head + bytes([key[0]]) + aes_ctr(key, iv, record)


def battery_record(
    volts: float, amps: float, soc: float, consumed_ah: float, remaining_min: int | None, kelvin: float | None = None
) -> bytes:
    aux, aux_mode = (round(kelvin * 100), 2) if kelvin is not None else (0, 3)  # 2 temperature, 3 none
    return pack_bits([
        (0xFFFF if remaining_min is None else remaining_min, 16),
        (round(volts * 100), 16),
        (0, 16),  # alarm reason: none
        (aux, 16),
        (aux_mode, 2),
        (round(amps * 1000), 22),
        (round(consumed_ah * 10), 20),  # its magnitude: the decoders make it negative (consumed)
        (round(soc * 10), 10),
    ])  # fmt: skip


def solar_record(state: int, error: int, volts: float, amps: float, yield_wh: int, pv_w: int) -> bytes:
    return pack_bits([(state, 8), (error, 8), (round(volts * 100), 16), (round(amps * 10), 16),
                      (yield_wh // 10, 16), (pv_w, 16), (0x1FF, 9)])  # fmt: skip


def mopeka_payload(address: str, raw_level: int, temp_c: int, battery_v: float, quality: int = 3) -> bytes:
    mac = bytes.fromhex(address.replace(":", ""))
    level = (raw_level & 0x3FFF) | (quality << 14)
    return (
        bytes([0x03, round(battery_v * 32), (temp_c + 40) & 0x7F]) + level.to_bytes(2, "little") + mac[3:] + b"\x00\x00"
    )


def demo_adverts(seconds: float) -> Iterator[Advert]:
    """A SmartShunt discharging slowly and a Mopeka on a fresh-water tank, each once a second."""
    address, key = DEMO_SHUNT
    for n in range(int(seconds)):
        t = T0 + n
        soc = 82.0 - n * 0.002
        record = battery_record(12.9 - n * 0.0001, -6.25, soc, 18.5 + n * 0.0017, 1260 - n // 60, 291.15)
        data = instant_readout(key, SMARTSHUNT_MODEL, BATTERY_MONITOR, (0x1000 + n) & 0xFFFF, record)
        yield Advert(t, address, -64, "SmartShunt HQ2231ABCDE", {0x02E1: data})
        yield Advert(
            t + 0.5, DEMO_MOPEKA, -71, "", {0x0059: mopeka_payload(DEMO_MOPEKA, 330, 18, 2.9)}, (MOPEKA_SERVICE,)
        )


def write_adverts(path: Path, adverts: Iterator[Advert]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("# gx-gateway BLE advertisement replay: one JSON object per line\n")
        for advert in adverts:
            out.write(format_advert_line(advert) + "\n")
            count += 1
    return count


def demo_ble_log() -> Path:
    """The demo's replay (an hour), made once in the temporary folder and reused."""
    path = Path(tempfile.gettempdir()) / "gx-gateway-ble-demo-1.jsonl"  # -1: bump when demo_adverts change
    if not path.is_file():
        part = path.with_suffix(f".{os.getpid()}.part")
        write_adverts(part, demo_adverts(3600.0))
        part.replace(path)  # atomic: concurrent demos never read half a file
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("ble-demo.jsonl")
    print(f"{out}: {write_adverts(out, demo_adverts(120.0))} advertisements")
