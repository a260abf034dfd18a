"""The CAN-bus BMS frames (the protocol of a GX's BMS-Can port): layout, decoding, encoding.

11-bit ids, little-endian fields, about one frame of each a second at 500 kbit/s. Shared by
the ``canbms`` driver (decode) and the BMS simulator (encode), so the two cannot drift:

- 0x351 charge voltage limit (u16 0.1 V), charge current limit (s16 0.1 A), discharge current
  limit (s16 0.1 A), discharge voltage limit (u16 0.1 V) — a limit of 0 A is a real limit;
- 0x355 SOC (u16 %), SOH (u16 %); 0x356 voltage (s16 0.01 V), current (s16 0.1 A),
  temperature (s16 0.1 °C);
- 0x35A alarms (bytes 0-3) and warnings (bytes 4-7), two bits per condition, 01 = active;
  a path is 2 when its alarm is active, 1 for its warning, else 0;
- 0x35C request flags (bit 7 charge enable, bit 6 discharge enable);
- 0x35E manufacturer name (ASCII); 0x373 min/max cell voltage (mV) and temperature (K).

A frame shorter than a field leaves that field out (counted by the caller); unknown ids are
the caller's to count.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Final

from registers.values import Scalar

KEEPALIVE_ID: Final = 0x305  # sent by the inverter side; some batteries stop without it

# id -> (byte offset, struct code, scale, path)
FIELDS: Final[Mapping[int, tuple[tuple[int, str, float, str], ...]]] = {
    0x351: (
        (0, "<H", 0.1, "/Info/MaxChargeVoltage"),
        (2, "<h", 0.1, "/Info/MaxChargeCurrent"),
        (4, "<h", 0.1, "/Info/MaxDischargeCurrent"),
        (6, "<H", 0.1, "/Info/BatteryLowVoltage"),
    ),
    0x355: ((0, "<H", 1, "/Soc"), (2, "<H", 1, "/Soh")),
    0x356: ((0, "<h", 0.01, "/Dc/0/Voltage"), (2, "<h", 0.1, "/Dc/0/Current"), (4, "<h", 0.1, "/Dc/0/Temperature")),
    0x373: (
        (0, "<H", 0.001, "/System/MinCellVoltage"),
        (2, "<H", 0.001, "/System/MaxCellVoltage"),
        (4, "<H", 1, "/System/MinCellTemperature"),  # kelvin on the wire: KELVIN below
        (6, "<H", 1, "/System/MaxCellTemperature"),
    ),
}
KELVIN: Final = frozenset({"/System/MinCellTemperature", "/System/MaxCellTemperature"})
# 0x35A: (byte within the 4-byte group, bit pair 0..3) -> path
ALARMS: Final[Mapping[tuple[int, int], str]] = {
    (0, 1): "/Alarms/HighVoltage",
    (0, 2): "/Alarms/LowVoltage",
    (0, 3): "/Alarms/HighTemperature",
    (1, 0): "/Alarms/LowTemperature",
    (1, 1): "/Alarms/HighChargeTemperature",
    (1, 2): "/Alarms/LowChargeTemperature",
    (1, 3): "/Alarms/HighDischargeCurrent",
    (2, 0): "/Alarms/HighChargeCurrent",
    (2, 3): "/Alarms/InternalFailure",
    (3, 0): "/Alarms/CellImbalance",
}
KNOWN_IDS: Final = frozenset({*FIELDS, 0x35A, 0x35C, 0x35E, 0x359, 0x35F, 0x370, 0x371, 0x372})


def decode_frame(can_id: int, data: bytes) -> tuple[dict[str, Scalar], int]:
    """Paths a frame gives and how many of its fields were cut off (short DLC)."""
    values: dict[str, Scalar] = {}
    short = 0
    for offset, code, scale, path in FIELDS.get(can_id, ()):
        size = struct.calcsize(code)
        if len(data) < offset + size:
            short += 1
            continue
        raw = struct.unpack_from(code, data, offset)[0]
        value = raw * scale
        if path in KELVIN:
            value = round(value - 273.15, 2)
        values[path] = int(value) if scale == 1 and path not in KELVIN else round(value, 6)
    if can_id == 0x35A:
        if len(data) < 8:
            short += 1
        else:
            for (byte, pair), path in ALARMS.items():
                alarm = data[byte] >> (2 * pair) & 3 == 1
                warning = data[4 + byte] >> (2 * pair) & 3 == 1
                values[path] = 2 if alarm else 1 if warning else 0
    elif can_id == 0x35C:
        if not data:
            short += 1
        else:
            values["/Io/AllowToCharge"] = data[0] >> 7 & 1
            values["/Io/AllowToDischarge"] = data[0] >> 6 & 1
    elif can_id == 0x35E:
        name = data.rstrip(b"\x00 ").decode("ascii", "replace")
        if name:
            values["/ProductName"] = name
    return values, short


def encode_frames(values: Mapping[str, float], alarms: Mapping[str, int], name: str) -> dict[int, bytes]:
    """The frames a BMS sends for ``values`` (paths as above) and ``alarms`` (path -> 0/1/2)."""
    frames: dict[int, bytes] = {}
    for can_id, fields in FIELDS.items():
        data = bytearray(8)
        for offset, code, scale, path in fields:
            v = float(values.get(path, 0))
            if path in KELVIN:
                v += 273.15
            struct.pack_into(code, data, offset, round(v / scale))
        frames[can_id] = bytes(data)
    flags = bytearray(8)
    for (byte, pair), path in ALARMS.items():
        state = alarms.get(path, 0)
        flags[byte] |= (1 if state == 2 else 2) << (2 * pair)
        flags[4 + byte] |= (1 if state == 1 else 2) << (2 * pair)
    frames[0x35A] = bytes(flags)
    frames[0x355] = frames[0x355][:4]
    frames[0x35C] = bytes([0xC0])
    frames[0x35E] = name.encode("ascii")[:8].ljust(8, b" ")
    return frames
