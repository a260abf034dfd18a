"""Simulated SunSpec inverters (Fronius, SMA, ABB/FIMER, SolarEdge) over real Modbus-TCP.

Each follows a compressed day (``day_s`` real seconds = 24 h; the sun as in gateway/sim/plant),
honours the power limit it is sent (model 123, 704 or SolarEdge's registers, with the
inverter's own revert timer), and can go offline and come back, return "not implemented"
sentinels, a scale factor of 0x8000 or Fronius' all-zero frames on command. Brand quirks:

- Fronius: models 1, 103, 120, 123; unit 1; ``null_frames(n)`` = the next n inverter reads
  are all zero with St = 7.
- SMA: models 1, 103, 120, 123 at unit 126; reads longer than ``SMA_MAX_READ`` registers are
  answered short; model 123's Conn registers cannot be read; the installer enabled limiting.
- ABB/FIMER: models 1, 103, 120, 123 at base 40000, unit 1.
- SolarEdge: models 1, 103, 120 then a meter (model 1 + 203) with no end marker between;
  power control in its own registers (0xF300...); one Modbus-TCP client at a time.
"""

from __future__ import annotations

import math
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from gateway.sim.plant import SUNRISE_H, SUNSET_H
from gateway.sim.protocols.modbus_server import SimModbusServer
from gateway.sim.protocols.sunspec_image import SunSpecImage

SMA_MAX_READ: Final = 50
ILLEGAL_ADDRESS, NO_RESPONSE = 0x02, 0x0B
SE_ENABLE, SE_TIMEOUT, SE_FALLBACK, SE_LIMIT = 0xF300, 0xF310, 0xF312, 0xF322
FAULTS: Final = ("none", "sentinels", "sf_8000")


@dataclass(frozen=True)
class Profile:
    manufacturer: str
    model_name: str
    unit: int
    models: tuple[int, ...]
    max_power_w: float
    limit: str  # "123" | "sma" | "704" | "solaredge"
    max_clients: int | None = None
    base: int = 40000


PROFILES: Final = {
    "fronius": Profile("Fronius", "Symo 8.2-3-M", 1, (1, 103, 120, 123), 8200.0, "123"),
    "sma": Profile("SMA", "STP 10.0-3AV-40", 126, (1, 103, 120, 123), 10000.0, "sma"),
    "abb": Profile("FIMER", "PVS-10-TL", 1, (1, 103, 120, 123), 10000.0, "123"),
    "solaredge": Profile("SolarEdge", "SE8K", 1, (1, 103, 120, 1, 203), 8000.0, "solaredge", max_clients=1),
    "generic704": Profile("Simulated", "DER 704", 1, (1, 103, 120, 704), 6000.0, "704"),
}


def f32_lwf(value: float) -> tuple[int, int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return lo, hi


class SunSpecSim:
    """One simulated inverter (and SolarEdge's meter) behind a ``SimModbusServer``."""

    def __init__(
        self,
        kind: str,
        *,
        serial: str = "SIM0001",
        max_power_w: float | None = None,
        day_s: float = 3600.0,
        start_hour: float = 10.0,
        site_w: Callable[[float], tuple[float, float, float]] | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.profile = p = PROFILES[kind]
        self.max_w = max_power_w or p.max_power_w
        self.day_s, self.start_hour, self.clock = day_s, start_hour, clock
        self.site_w = site_w  # the meter: grid import per phase (None: a house of its own behind the meter)
        self.rng = random.Random(seed)
        self.fault = "none"
        self.null_frames = 0
        self.t0 = self._last = clock()
        self.power_w = 0.0
        self.limit_written_at = -1e18
        self.writes: list[tuple[int, int]] = []  # (address, count) of every accepted write
        self.image = img = SunSpecImage(p.base, p.models)
        self.server = SimModbusServer(self, max_clients=p.max_clients)
        for i, slot in enumerate(s for s in img.slots if s.id == 1):
            name = p.model_name if i == 0 else "SE-MTR-3Y"
            img.set(slot, "Mn", p.manufacturer)
            img.set(slot, "Md", name)
            img.set(slot, "Vr", "1.2.3")
            img.set(slot, "SN", serial if i == 0 else f"{serial}-M{i}")
            img.set_raw(slot, "DA", p.unit)
        self.inv = img.slot(103)
        for name, sf in (("A_SF", -2), ("V_SF", -1), ("W_SF", 0), ("Hz_SF", -2), ("WH_SF", 0)):
            img.set_raw(self.inv, name, sf)
        nameplate = img.slot(120)
        img.set_raw(nameplate, "WRtg_SF", 0)
        img.set(nameplate, "DERTyp", 4)
        img.set(nameplate, "WRtg", self.max_w)
        self.energy_wh = 150_000.0 + self.rng.random() * 1000  # 50 kWh a phase: the uint16 registers hold it too
        self._init_controls()
        self.meter = img.slot(203) if 203 in p.models else None
        self.import_wh, self.export_wh = 90_000.0, 120_000.0  # per phase 30 / 40 kWh: uint16 registers hold them
        if self.meter is not None:
            for name, sf in (("A_SF", -2), ("V_SF", -1), ("Hz_SF", -2), ("W_SF", 0), ("PF_SF", 0), ("TotWh_SF", 0)):
                img.set_raw(self.meter, name, sf)
        self.update(force=True)

    def _init_controls(self) -> None:
        img, p = self.image, self.profile
        if p.limit in ("123", "sma"):
            ctl = img.slot(123)
            img.set_raw(ctl, "WMaxLimPct_SF", -1)
            img.set(ctl, "WMaxLimPct", 100.0)
            for name in ("WMaxLimPct_WinTms", "WMaxLimPct_RmpTms", "Conn_WinTms", "Conn_RvrtTms"):
                img.set_raw(ctl, name, 0)
            img.set_raw(ctl, "Conn", 1)
            img.set_raw(ctl, "WMaxLimPct_RvrtTms", 120 if p.limit == "sma" else 0)
            img.set_raw(ctl, "WMaxLim_Ena", 1 if p.limit == "sma" else 0)
        elif p.limit == "704":
            ctl = img.slot(704)
            img.set_raw(ctl, "WMaxLimPct_SF", 0)
            for name, raw in (("WMaxLimPctEna", 0), ("WMaxLimPct", 100), ("WMaxLimPctRvrt", 100)):
                img.set_raw(ctl, name, raw)
            img.set_raw(ctl, "WMaxLimPctEnaRvrt", 0)
            img.set_raw(ctl, "WMaxLimPctRvrtTms", 0)
        else:
            img.extra.update({SE_ENABLE: 0, SE_TIMEOUT: 0, SE_TIMEOUT + 1: 0})
            for address, value in ((SE_FALLBACK, 100.0), (SE_LIMIT, 100.0)):
                img.extra[address], img.extra[address + 1] = f32_lwf(value)

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        await self.server.start(host, port)

    async def stop(self) -> None:
        await self.server.stop()

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    # --- the day and the limit ---------------------------------------------------------
    def hour(self) -> float:
        return (self.start_hour + (self.clock() - self.t0) * 24.0 / self.day_s) % 24.0

    def available_w(self) -> float:
        h = self.hour()
        if not SUNRISE_H < h < SUNSET_H:
            return 0.0
        sun: float = math.sin(math.pi * (h - SUNRISE_H) / (SUNSET_H - SUNRISE_H)) ** 1.5
        return self.max_w * 0.85 * sun

    def limit_pct(self) -> float:
        """The limit in force, after the inverter's own revert timer."""
        img, p, now = self.image, self.profile, self.clock()
        if p.limit in ("123", "sma"):
            ctl = img.slot(123)
            rvrt = img.raw(ctl, "WMaxLimPct_RvrtTms")
            if isinstance(rvrt, int) and 0 < rvrt < 0xFFFF and now - self.limit_written_at >= rvrt:
                if p.limit == "sma":
                    img.set(ctl, "WMaxLimPct", 100.0)  # the installer's enable stays
                else:
                    img.set_raw(ctl, "WMaxLim_Ena", 0)
            pct = img.value(ctl, "WMaxLimPct")
            return pct if img.raw(ctl, "WMaxLim_Ena") == 1 and pct is not None else 100.0
        if p.limit == "704":
            ctl = img.slot(704)
            rvrt = img.raw(ctl, "WMaxLimPctRvrtTms")
            if isinstance(rvrt, int) and 0 < rvrt < 0xFFFFFFFF and now - self.limit_written_at >= rvrt:
                img.set_raw(ctl, "WMaxLimPctEna", img.raw(ctl, "WMaxLimPctEnaRvrt"))
                img.set_raw(ctl, "WMaxLimPct", img.raw(ctl, "WMaxLimPctRvrt"))
            pct = img.value(ctl, "WMaxLimPct")
            return pct if img.raw(ctl, "WMaxLimPctEna") == 1 and pct is not None else 100.0
        x = img.extra
        timeout = x[SE_TIMEOUT] | (x[SE_TIMEOUT + 1] << 16)
        if timeout and now - self.limit_written_at >= timeout:
            x[SE_LIMIT], x[SE_LIMIT + 1] = x[SE_FALLBACK], x[SE_FALLBACK + 1]
        if x[SE_ENABLE] != 1:
            return 100.0
        pct = float(struct.unpack(">f", struct.pack(">HH", x[SE_LIMIT + 1], x[SE_LIMIT]))[0])
        return min(100.0, max(0.0, pct))

    def update(self, force: bool = False) -> None:
        """Move the inverter (and meter) on to now; at most every 0.1 s."""
        now = self.clock()
        dt = now - self._last
        if dt < 0.1 and not force:
            return
        self._last = now
        img, inv = self.image, self.inv
        self.power_w = min(self.available_w(), self.limit_pct() * self.max_w / 100.0)
        self.energy_wh += self.power_w * dt / 3600.0
        volts = [230.0 + self.rng.uniform(-1.5, 1.5) for _ in range(3)]
        amps = [self.power_w / 3 / v for v in volts]
        values: dict[str, float] = {"A": sum(amps), "W": self.power_w, "Hz": 50.0 + self.rng.uniform(-0.03, 0.03)}
        values.update({f"Aph{ph}": a for ph, a in zip("ABC", amps, strict=True)})
        values.update({f"PhVph{ph}": v for ph, v in zip("ABC", volts, strict=True)})
        values["WH"] = self.energy_wh
        for name, value in values.items():
            img.set(inv, name, value)
        img.set_raw(inv, "St", 4 if self.power_w > 0 else 2)
        if self.fault == "sentinels":
            for name in (*values, "St"):
                img.set(inv, name, None)
        img.set_raw(inv, "W_SF", -32768 if self.fault == "sf_8000" else 0)
        if self.meter is not None:
            self._update_meter(dt, volts)

    def _update_meter(self, dt: float, volts: list[float]) -> None:
        img, m = self.image, self.meter
        assert m is not None
        phases = self.site_w(self.power_w) if self.site_w is not None else (300.0 - self.power_w / 3,) * 3
        grid = sum(phases)
        if grid >= 0:
            self.import_wh += grid * dt / 3600.0
        else:
            self.export_wh -= grid * dt / 3600.0
        values = {"W": grid, "Hz": 50.0, "PF": 98.0, "TotWhImp": self.import_wh, "TotWhExp": self.export_wh}
        for i, ph in enumerate("ABC"):
            values |= {f"Wph{ph}": phases[i], f"Aph{ph}": abs(phases[i]) / volts[i], f"PhVph{ph}": volts[i]}
            values |= {f"TotWhImpPh{ph}": self.import_wh / 3, f"TotWhExpPh{ph}": self.export_wh / 3}
            values[f"PFph{ph}"] = 98.0
        for name, value in values.items():
            img.set(m, name, value)

    # --- Modbus handler ----------------------------------------------------------------
    def read(self, unit: int, address: int, count: int) -> bytes | int:
        if unit != self.profile.unit:
            return NO_RESPONSE
        self.update()
        img = self.image
        if self.profile.limit == "sma":
            ctl = img.slot(123)
            conn = ctl.address + ctl.layout.points["Conn_WinTms"].offset
            if address < conn + 3 and conn < address + count:  # SMA: Conn_* cannot be read
                return ILLEGAL_ADDRESS
            count = min(count, SMA_MAX_READ)
        data = img.read(address, count)
        if data is None:
            return ILLEGAL_ADDRESS
        inv = self.inv
        if self.null_frames > 0 and address <= inv.address + 2 and address + count > inv.address + 2:
            self.null_frames -= 1
            frame = bytearray(data)
            start = 2 * (inv.address + 2 - address)
            st = 2 * (inv.address + inv.layout.points["St"].offset - address)
            frame[start : min(len(frame), st)] = bytes(min(len(frame), st) - start)
            if st + 2 <= len(frame):
                frame[st : st + 2] = b"\x00\x07"
            return bytes(frame)
        return data

    def write(self, unit: int, address: int, data: bytes) -> int | None:
        if unit != self.profile.unit:
            return NO_RESPONSE
        count = len(data) // 2
        img, p = self.image, self.profile
        if p.limit == "solaredge":
            if not all(SE_ENABLE <= a < SE_LIMIT + 2 and a in img.extra for a in range(address, address + count)):
                return ILLEGAL_ADDRESS
        else:
            ctl = img.slot(123 if p.limit in ("123", "sma") else 704)
            if not (ctl.address + 2 <= address and address + count <= ctl.address + ctl.layout.size):
                return ILLEGAL_ADDRESS
        self.limit_pct()  # a revert that is due happens before the new write
        img.write(address, data)
        self.writes.append((address, count))
        self.limit_written_at = self.clock()
        self.update(force=True)
        return None
