"""Modbus PDU handling over the compiled tables: FC 3, 4 (read), 6, 16 (write), 23 (both).

Checks run in the order of the Modbus spec: function code (01), counts (03), addresses (02),
access (02), values (03), then the device (0A) and the owner's answer (0B timeout, 04
refused). A write is validated whole before anything is written (all or nothing): the
addresses here, the values by the one write gate every frontend shares (gateway/core/writes.py).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Coroutine
from typing import Any, Final

from gateway.core.writes import Refusal, WriteGate, Writer, WriteRefused
from registers.model import CompiledMap, ModbusRegister
from registers.values import Scalar

log = logging.getLogger(__name__)

ILLEGAL_FUNCTION: Final = 0x01
ILLEGAL_ADDRESS: Final = 0x02
ILLEGAL_VALUE: Final = 0x03
DEVICE_FAILURE: Final = 0x04
GATEWAY_PATH_UNAVAILABLE: Final = 0x0A
GATEWAY_TARGET_NO_RESPONSE: Final = 0x0B

MAX_READ: Final = 125
MAX_WRITE: Final = 123
MAX_RW_WRITE: Final = 121

READ_HEADER: Final = struct.Struct(">HHHBBB")  # tid, pid, length, unit, fc, byte count
EXCEPTION: Final = struct.Struct(">HHHBBB")  # tid, pid, 3, unit, fc|0x80, code
REPLY_HEADER: Final = struct.Struct(">HHHB")  # tid, pid, length, unit (PDU follows)
U16X2: Final = struct.Struct(">HH")
FC16_REQ: Final = struct.Struct(">HHB")
FC23_REQ: Final = struct.Struct(">HHHHB")

WriteReply = Coroutine[Any, Any, bytes]
# Requests are counted per (function, unit id) in one flat list of plain integers, bumped inline
# (the hot path pays an index and an add); /metrics renders them on scrape (gateway/ops/metrics.py).
COUNTED_FUNCTIONS: Final = (3, 4, 6, 16, 23)  # slot = index here; every other code shares slot 5
FUNCTION_SLOT: Final = bytes(COUNTED_FUNCTIONS.index(f) if f in COUNTED_FUNCTIONS else 5 for f in range(256))
ANONYMOUS: Final = Writer("modbus")
# What a refusal of the write gate answers on Modbus.
REFUSAL_CODES: Final = {
    Refusal.UNKNOWN_PATH: ILLEGAL_ADDRESS,
    Refusal.READ_ONLY: ILLEGAL_ADDRESS,
    Refusal.FORBIDDEN: ILLEGAL_ADDRESS,
    Refusal.BAD_VALUE: ILLEGAL_VALUE,
    Refusal.NO_DEVICE: GATEWAY_PATH_UNAVAILABLE,
    Refusal.OWNER_REFUSED: DEVICE_FAILURE,
    Refusal.TIMEOUT: GATEWAY_TARGET_NO_RESPONSE,
}


def exception(tid: int, unit: int, fc: int, code: int) -> bytes:
    return EXCEPTION.pack(tid, 0, 3, unit, (fc | 0x80) & 0xFF, code)


def frame(tid: int, unit: int, pdu: bytes) -> bytes:
    return REPLY_HEADER.pack(tid, 0, len(pdu) + 1, unit) + pdu


class RequestHandler:
    """Answers requests from the register images; routes writes through the write gate."""

    def __init__(
        self,
        cmap: CompiledMap,
        images: dict[str, dict[int, bytearray]],
        gate: WriteGate,
        *,
        writes: bool = True,
        write_timeout_s: float = 2.0,
    ) -> None:
        self.by_address = dict(cmap.modbus.by_address)
        self.unit_ids = dict(cmap.modbus.unit_ids)
        self.images = images
        self.gate = gate
        self.writes = writes
        self.write_timeout_s = write_timeout_s
        self.requests = [0] * (256 * (len(COUNTED_FUNCTIONS) + 1))  # [slot << 8 | unit]
        self.exceptions: dict[tuple[int, int, int], int] = {}  # (fc, unit, code) -> count

    def _exception(self, tid: int, unit: int, fc: int, code: int) -> bytes:
        key = (fc, unit, code)
        self.exceptions[key] = self.exceptions.get(key, 0) + 1
        return EXCEPTION.pack(tid, 0, 3, unit, (fc | 0x80) & 0xFF, code)

    # The hot path: a read is a slice of the device's image.
    def read(self, tid: int, unit: int, fc: int, start: int, count: int) -> bytes:
        self.requests[(fc - 3) << 8 | unit] += 1  # fc is 3 or 4: slots 0 and 1
        if not 0 < count <= MAX_READ:
            return self._exception(tid, unit, fc, ILLEGAL_VALUE)
        run = self.by_address.get(start)
        if run is None or start + count > run.run_end:
            return self._exception(tid, unit, fc, ILLEGAL_ADDRESS)
        table = run.table
        image = self.images[table.name].get(self.unit_ids.get(unit, unit))
        if image is None:
            return self._exception(tid, unit, fc, GATEWAY_PATH_UNAVAILABLE)
        off = (start - table.low) << 1
        n = count << 1
        return READ_HEADER.pack(tid, 0, n + 3, unit, fc, n) + image[off : off + n]

    def handle(self, tid: int, unit: int, fc: int, pdu: bytes, writer: Writer = ANONYMOUS) -> bytes | WriteReply:
        """Any request but a well-formed FC 3/4; ``pdu`` starts after the function code."""
        self.requests[FUNCTION_SLOT[fc] << 8 | unit] += 1
        result = self._handle(tid, unit, fc, pdu, writer)
        if isinstance(result, bytes) and result[7] & 0x80:
            key = (fc, unit, result[8])
            self.exceptions[key] = self.exceptions.get(key, 0) + 1
        return result

    def _handle(self, tid: int, unit: int, fc: int, pdu: bytes, writer: Writer) -> bytes | WriteReply:
        if fc in (3, 4):  # wrong length for a read
            return exception(tid, unit, fc, ILLEGAL_VALUE)
        if fc == 6:
            if len(pdu) != 4:
                return exception(tid, unit, fc, ILLEGAL_VALUE)
            start = U16X2.unpack_from(pdu)[0]
            echo = bytes((6,)) + pdu
            return self._write(tid, unit, fc, start, pdu[2:4], writer, lambda: frame(tid, unit, echo))
        if fc == 16:
            if len(pdu) < 5:
                return exception(tid, unit, fc, ILLEGAL_VALUE)
            start, count, nbytes = FC16_REQ.unpack_from(pdu)
            data = pdu[5:]
            if not 0 < count <= MAX_WRITE or nbytes != 2 * count or len(data) != nbytes:
                return exception(tid, unit, fc, ILLEGAL_VALUE)
            reply = frame(tid, unit, bytes((16,)) + pdu[:4])
            return self._write(tid, unit, fc, start, data, writer, lambda: reply)
        if fc == 23:
            if len(pdu) < 9:
                return exception(tid, unit, fc, ILLEGAL_VALUE)
            rstart, rcount, wstart, wcount, nbytes = FC23_REQ.unpack_from(pdu)
            data = pdu[9:]
            if (
                not 0 < rcount <= MAX_READ
                or not 0 < wcount <= MAX_RW_WRITE
                or nbytes != 2 * wcount
                or len(data) != nbytes
            ):
                return exception(tid, unit, fc, ILLEGAL_VALUE)
            run = self.by_address.get(rstart)
            if run is None or rstart + rcount > run.run_end:  # check the read before writing
                return exception(tid, unit, fc, ILLEGAL_ADDRESS)
            write_check = self.plan_write(unit, wstart, data)
            if isinstance(write_check, int):
                return exception(tid, unit, fc, write_check)
            if self.images[run.table.name].get(self.unit_ids.get(unit, unit)) is None:
                return exception(tid, unit, fc, GATEWAY_PATH_UNAVAILABLE)  # all or nothing: nothing written
            then_read = lambda: self._read_after_write(tid, unit, fc, rstart, rcount)  # noqa: E731
            return self._write(tid, unit, fc, wstart, data, writer, then_read)
        return exception(tid, unit, fc, ILLEGAL_FUNCTION)

    def _read_after_write(self, tid: int, unit: int, fc: int, start: int, count: int) -> bytes:
        """FC 23's read part: its addresses were checked before the write; the device may have gone."""
        run = self.by_address[start]
        image = self.images[run.table.name].get(self.unit_ids.get(unit, unit))
        if image is None:
            return self._exception(tid, unit, fc, GATEWAY_PATH_UNAVAILABLE)
        off = (start - run.table.low) << 1
        n = count << 1
        return READ_HEADER.pack(tid, 0, n + 3, unit, fc, n) + image[off : off + n]

    # --- writes ------------------------------------------------------------------------
    def _write(
        self, tid: int, unit: int, fc: int, start: int, data: bytes, writer: Writer, reply: Callable[[], bytes]
    ) -> bytes | WriteReply:
        plan = self.plan_write(unit, start, data, writer)
        if isinstance(plan, int):
            return exception(tid, unit, fc, plan)
        service, instance, changes = plan
        if not changes:  # only reserved registers: accepted and ignored
            return reply()
        return self._carry_out(tid, unit, fc, service, instance, changes, writer, reply)

    def plan_write(
        self, unit: int, start: int, data: bytes, writer: Writer | None = None
    ) -> int | tuple[str, int, dict[str, Scalar]]:
        """Validate a write of ``data`` at ``start``: an exception code, or what to write.

        With a ``writer``, a refusal by the write gate is recorded (audit) under its name."""
        count = len(data) // 2
        run = self.by_address.get(start)
        if run is None or start + count > run.run_end:
            return ILLEGAL_ADDRESS
        if not self.writes:
            return ILLEGAL_ADDRESS
        end = start + count
        registers: list[ModbusRegister] = []
        address = start
        while address < end:
            r = self.by_address[address].register
            if r.reserved:
                address = min(r.end, end)
                continue
            if r.address != address or r.end > end or not r.writable:
                return ILLEGAL_ADDRESS  # read-only, or only part of a multi-register value
            registers.append(r)
            address = r.end
        changes: dict[str, Scalar] = {}
        for r in registers:
            off = 2 * (r.address - start)
            value = r.decode(data[off : off + 2 * r.codec.width])
            if value is None:  # the "not available" value cannot be written
                return ILLEGAL_VALUE
            changes[r.path] = value
        service, instance = run.table.name, self.unit_ids.get(unit, unit)
        if not changes:
            return service, instance, changes
        try:
            self.gate.check(service, instance, changes, writer)
        except WriteRefused as e:
            if writer is not None:
                self.gate.refuse(writer, service, instance, changes, e)
            return REFUSAL_CODES[e.refusal]
        return service, instance, changes

    async def _carry_out(
        self,
        tid: int,
        unit: int,
        fc: int,
        service: str,
        instance: int,
        changes: dict[str, Scalar],
        writer: Writer,
        reply: Callable[[], bytes],
    ) -> bytes:
        try:
            await self.gate.write(service, instance, changes, writer, timeout=self.write_timeout_s, checked=True)
        except WriteRefused as e:
            return self._exception(tid, unit, fc, REFUSAL_CODES[e.refusal])
        except Exception:  # a driver bug must not wedge the connection: answer, and say so
            log.exception("write to %s instance %d failed in its owner", service, instance)
            return self._exception(tid, unit, fc, DEVICE_FAILURE)
        return reply()
