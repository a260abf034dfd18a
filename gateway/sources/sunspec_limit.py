"""Power limiting (``/Ac/PowerLimit``, W) carried out per brand, and the limit in force.

- Model 123 (Fronius, ABB/FIMER, generic): WMaxLimPct (scaled by WMaxLimPct_SF),
  WMaxLimPct_RvrtTms = the revert time, WMaxLim_Ena = 1, in one write that keeps the window and
  ramp times the installer set.
- SMA (model 123): only when the installer enabled limiting (WMaxLim_Ena already 1); only
  WMaxLimPct is written, never other settings (flash wear). Unreadable model-123 registers
  are tolerated: the block is then read from WMaxLimPct on, or not at all.
- Model 704 where 123 is absent: WMaxLimPctEna, WMaxLimPct, its reversion values and
  WMaxLimPctRvrtTms in one write.
- SolarEdge: its own registers (enable 0xF300, command timeout 0xF310, fallback 0xF312, limit
  float32 % at 0xF322, low word first); timeout and fallback once per probe.

Always clamped to 1–100 % of the maximum power (never 0 %: some inverters go to standby).
Keep-alive: a limit is re-sent every half revert time, but only while a client asked for it
within the last revert time; when the writes stop, the driver stops and the inverter's own
revert timer brings it back to 100 %. It never keeps re-sending a limit nobody asked for.
All methods are called with the link's lock held.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Final

from gateway.core.store import WriteRejected
from gateway.sources.sunspec_chain import ModelAt
from gateway.transports.tcp import ExceptionResponse, ModbusLink
from registers.codec import round_half_away
from registers.sunspec_models import layout

U16: Final = struct.Struct(">H")
I16: Final = struct.Struct(">h")
U32: Final = struct.Struct(">I")
F32_LWF: Final = struct.Struct("<f")  # SolarEdge: float32 low word first = both halves swapped
SE_ENABLE, SE_TIMEOUT, SE_FALLBACK, SE_LIMIT = 0xF300, 0xF310, 0xF312, 0xF322


def f32_low_word_first(value: float) -> bytes:
    b = struct.pack(">f", value)
    return b[2:] + b[:2]


def from_f32_low_word_first(data: bytes) -> float:
    value: float = struct.unpack(">f", data[2:4] + data[0:2])[0]
    return value


class PowerLimiter:
    """The common part: clamping, the keep-alive rule, the limit in force."""

    kind = "none"

    def __init__(self, link: ModbusLink, unit: int, revert_s: float, clock: Callable[[], float] = time.monotonic):
        self.link, self.unit, self.revert_s, self.clock = link, unit, revert_s, clock
        self.max_w: float | None = None
        self.target_pct: float | None = None  # what a client asked for last
        self.asked_at = -1e18
        self.sent_at = -1e18
        self.sent = 0  # writes sent to the inverter (tests, diagnostics)

    def percent_of(self, watts: float) -> float:
        if self.max_w is None or self.max_w <= 0:
            raise WriteRejected("the inverter's maximum power is unknown, so a limit in W cannot be set")
        return min(100.0, max(1.0, watts * 100.0 / self.max_w))

    async def apply(self, watts: float) -> float:
        """Carry out a client's limit; the limit in force afterwards (W)."""
        pct = self.percent_of(watts)
        await self.send(pct)
        self.target_pct, self.asked_at, self.sent_at = pct, self.clock(), self.clock()
        self.sent += 1
        return pct * (self.max_w or 0.0) / 100.0

    async def keep_alive(self) -> None:
        now = self.clock()
        if self.target_pct is None or now - self.asked_at >= self.revert_s:
            self.target_pct = None  # nobody asks any more: let the inverter revert
            return
        if now - self.sent_at >= self.revert_s / 2:
            await self.send(self.target_pct)
            self.sent_at = now
            self.sent += 1

    def in_force(self, enabled: bool, pct: float | None) -> float | None:
        if self.max_w is None:
            return None
        if not enabled:
            return self.max_w
        return None if pct is None else pct * self.max_w / 100.0

    async def send(self, pct: float) -> None:
        raise WriteRejected("this inverter offers no power limiting (no model 123 or 704)")

    async def read(self) -> float | None:
        return self.max_w


class Model123(PowerLimiter):
    kind = "model 123"
    P: Final = layout(123).points

    def __init__(self, link: ModbusLink, unit: int, revert_s: float, model: ModelAt, sma: bool = False) -> None:
        super().__init__(link, unit, revert_s)
        self.model, self.sma = model, sma
        self.kind = "SMA model 123" if sma else "model 123"
        self.first = 0  # offset the readable part starts at (SMA: from WMaxLimPct on)
        self.readable = True
        self.block: bytes | None = None

    def _reg(self, name: str) -> int | None:
        off = self.P[name].offset - self.first
        if self.block is None or off < 0 or 2 * off + 2 > len(self.block):
            return None
        return int(U16.unpack_from(self.block, 2 * off)[0])

    async def read(self) -> float | None:
        if self.readable:
            try:
                data = await self.link.read_locked(
                    self.unit, self.model.address + self.first, self.model.size - self.first
                )
                self.block = data
            except ExceptionResponse:
                if self.first == 0:  # SMA: some 123 registers cannot be read; try from WMaxLimPct on
                    self.first = self.P["WMaxLimPct"].offset
                    return await self.read()
                self.readable, self.block = False, None
        ena, raw, sf = self._reg("WMaxLim_Ena"), self._reg("WMaxLimPct"), self._reg("WMaxLimPct_SF")
        if ena is None or raw is None or sf is None:
            return None
        sf = I16.unpack(U16.pack(sf))[0]
        pct = None if raw == 0xFFFF or sf == -32768 else raw * 10.0**sf
        return self.in_force(ena == 1, pct)

    def _raw_pct(self, pct: float) -> int:
        sf = self._reg("WMaxLimPct_SF")
        exp = I16.unpack(U16.pack(sf))[0] if sf is not None and sf != 0x8000 else 0
        return max(0, min(0xFFFE, round_half_away(pct / 10.0**exp)))

    async def send(self, pct: float) -> None:
        pct_at = self.model.address + self.P["WMaxLimPct"].offset
        if self.sma:
            if self._reg("WMaxLim_Ena") != 1:
                raise WriteRejected("SMA: power limiting is not enabled by the installer (WMaxLim_Ena is not 1)")
            await self.link.write_locked(self.unit, pct_at, U16.pack(self._raw_pct(pct)))
            return
        win, ramp = self._reg("WMaxLimPct_WinTms") or 0, self._reg("WMaxLimPct_RmpTms") or 0
        rvrt = max(1, min(0xFFFE, round(self.revert_s)))
        data = b"".join(U16.pack(v) for v in (self._raw_pct(pct), win, rvrt, ramp, 1))
        await self.link.write_locked(self.unit, pct_at, data)


class Model704(PowerLimiter):
    kind = "model 704"
    P: Final = layout(704).points

    def __init__(self, link: ModbusLink, unit: int, revert_s: float, model: ModelAt) -> None:
        super().__init__(link, unit, revert_s)
        self.model = model
        self.block: bytes | None = None

    def _u16(self, name: str) -> int | None:
        off = 2 * self.P[name].offset
        return None if self.block is None or off + 2 > len(self.block) else int(U16.unpack_from(self.block, off)[0])

    async def read(self) -> float | None:
        self.block = await self.link.read_locked(self.unit, self.model.address, min(125, self.model.size))
        ena, raw, sf = self._u16("WMaxLimPctEna"), self._u16("WMaxLimPct"), self._u16("WMaxLimPct_SF")
        if ena is None or raw is None or sf is None:
            return None
        exp = I16.unpack(U16.pack(sf))[0]
        return self.in_force(ena == 1, None if raw == 0xFFFF or exp == -32768 else raw * 10.0**exp)

    async def send(self, pct: float) -> None:
        sf = self._u16("WMaxLimPct_SF")
        exp = I16.unpack(U16.pack(sf))[0] if sf is not None and sf != 0x8000 else 0
        raw, full = round_half_away(pct / 10.0**exp), round_half_away(100.0 / 10.0**exp)
        data = U16.pack(1) + U16.pack(raw) + U16.pack(full) + U16.pack(0) + U32.pack(max(1, round(self.revert_s)))
        await self.link.write_locked(self.unit, self.model.address + self.P["WMaxLimPctEna"].offset, data)


class SolarEdge(PowerLimiter):
    kind = "SolarEdge"

    def __init__(self, link: ModbusLink, unit: int, revert_s: float) -> None:
        super().__init__(link, unit, revert_s)
        self.configured = False  # timeout and fallback written (once per probe)

    async def read(self) -> float | None:
        enable = await self.link.read_locked(self.unit, SE_ENABLE, 1)
        limit = await self.link.read_locked(self.unit, SE_LIMIT, 2)
        pct = from_f32_low_word_first(limit)
        return self.in_force(enable == b"\x00\x01", pct if 0.0 <= pct <= 100.0 else None)

    async def send(self, pct: float) -> None:
        if not self.configured:
            timeout = max(1, round(self.revert_s))
            await self.link.write_locked(self.unit, SE_ENABLE, U16.pack(1))
            await self.link.write_locked(self.unit, SE_TIMEOUT, U32.pack(timeout)[2:] + U32.pack(timeout)[:2])
            await self.link.write_locked(self.unit, SE_FALLBACK, f32_low_word_first(100.0))
            self.configured = True
        await self.link.write_locked(self.unit, SE_LIMIT, f32_low_word_first(pct))
