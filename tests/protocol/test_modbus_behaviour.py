"""docs/modbus.md, line by line, over a real socket (one test or more per table row)."""

from __future__ import annotations

import asyncio
import struct

import pytest

from registers import CompiledMap
from tests.modbus_rig import MakeRig, RawClient, Rig, adu, read_pdu, words

BATTERY_UNIT = 225  # -> instance 512 (unit_ids.csv)
VEBUS_UNIT = 227  # -> instance 276
SETPOINT = "/Settings/CGwacs/AcPowerSetPoint"


def exc(fc: int, code: int) -> bytes:
    return bytes((fc | 0x80, code))


def fc16(start: int, values: list[int], count: int | None = None, nbytes: int | None = None) -> bytes:
    data = struct.pack(f">{len(values)}H", *values)
    n = len(values) if count is None else count
    return struct.pack(">BHHB", 16, start, n, len(data) if nbytes is None else nbytes) + data


# --- FC 3 / FC 4, 1-125 registers, all mapped: values (FC 3 and 4 read the same table) ----------
async def test_fc3_and_fc4_read_the_same_values(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    for fc in (3, 4):
        # 258 /Dc/0/Power int16, 259 V x100, 260 /Dc/1/Voltage (absent), 261 A x10
        reply = await c.request(BATTERY_UNIT, read_pdu(258, 4, fc))
        assert reply[:2] == bytes((fc, 8))
        assert words(reply) == [(-654) & 0xFFFF, 5231, 0xFFFF, (-125) & 0xFFFF]
    await c.close()


async def test_read_125_registers_and_strings(rig: Rig, cmap: CompiledMap) -> None:
    c = await RawClient.connect(rig.port)
    table = cmap.modbus.tables["vebus"]
    start = next(
        a
        for a in range(table.low, table.high)
        if a in cmap.modbus.by_address and cmap.modbus.by_address[a].run_end - a >= 125
    )
    reply = await c.request(VEBUS_UNIT, read_pdu(start, 125))
    assert reply[1] == 250
    assert words(reply)[33 - start] == 3  # /Mode inside the long read
    name = await c.request(BATTERY_UNIT, read_pdu(1336, 8))
    assert name[2:18] == b"House bank\x00\x00\x00\x00\x00\x00"
    await c.close()


async def test_32bit_values_high_word_first(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    reply = await c.request(BATTERY_UNIT, read_pdu(256, 2))  # /Dc/0/Power int32
    assert reply[2:6] == struct.pack(">i", -654)
    await c.close()


async def test_unit_ids_100_and_0_reach_instance_0(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    for unit in (100, 0):
        reply = await c.request(unit, read_pdu(2700, 1))  # settings AcPowerSetPoint
        assert words(reply) == [50]
    await c.close()


# --- FC 6 / FC 16 on W registers: through the Store to the owner; echo reply ----------------------
async def test_fc6_writes_through_the_store_and_echoes(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    pdu = struct.pack(">BHH", 6, 33, 4)  # vebus /Mode = 4 (off)
    assert await c.request(VEBUS_UNIT, pdu) == pdu
    assert rig.owner.writes == [("vebus", 276, {"/Mode": 4})]
    assert rig.store.get("vebus", 276, "/Mode") == 4
    assert words(await c.request(VEBUS_UNIT, read_pdu(33, 1))) == [4]
    await c.close()


async def test_fc16_writes_several_and_echoes_address_and_count(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    # 37 /Hub4/L1/AcPowerSetpoint int16, 38 DisableCharge, 39 DisableFeedIn
    reply = await c.request(VEBUS_UNIT, fc16(37, [(-1500) & 0xFFFF, 1, 0]))
    assert reply == struct.pack(">BHH", 16, 37, 3)
    assert rig.owner.writes == [
        ("vebus", 276, {"/Hub4/L1/AcPowerSetpoint": -1500, "/Hub4/DisableCharge": 1, "/Hub4/DisableFeedIn": 0})
    ]
    # The int32 variant of the same path reads the new value too.
    assert (await c.request(VEBUS_UNIT, read_pdu(96, 2)))[2:6] == struct.pack(">i", -1500)
    await c.close()


async def test_fc16_writes_a_string(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    text = b"Port bank".ljust(16, b"\x00")
    await c.request(BATTERY_UNIT, fc16(1336, list(struct.unpack(">8H", text))))
    assert rig.store.get("battery", 512, "/CustomName") == "Port bank"
    await c.close()


# --- FC 23: write first, then read -----------------------------------------------------------------
async def test_fc23_writes_then_reads(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    pdu = struct.pack(">BHHHHBH", 23, 33, 1, 33, 1, 2, 1)  # read 33 after writing /Mode = 1
    reply = await c.request(VEBUS_UNIT, pdu)
    assert reply == bytes((23, 2)) + struct.pack(">H", 1)
    assert rig.store.get("vebus", 276, "/Mode") == 1
    await c.close()


def fc23(rstart: int, rcount: int, wstart: int, value: int) -> bytes:
    return struct.pack(">BHHHHBH", 23, rstart, rcount, wstart, 1, 2, value)


# --- FC 23 is all or nothing: every exception path leaves everything as it was ----------------------
@pytest.mark.parametrize(
    ("case", "unit", "pdu", "code"),
    [
        ("read count 0", VEBUS_UNIT, fc23(33, 0, 33, 1), 3),
        ("read count 126", VEBUS_UNIT, fc23(33, 126, 33, 1), 3),
        ("read address unmapped", VEBUS_UNIT, fc23(9999, 1, 33, 1), 2),
        ("read runs past its block", VEBUS_UNIT, fc23(33, 125, 33, 1), 2),
        ("write to a read-only register", VEBUS_UNIT, fc23(33, 1, 3, 1), 2),
        ("write value outside the enum", VEBUS_UNIT, fc23(33, 1, 33, 9), 3),
        ("no device for the write", BATTERY_UNIT, fc23(259, 1, 33, 1), 10),
        # The write's device (settings 0) exists, the read's (battery 0) does not: the old
        # server wrote, then answered 0A.
        ("no device for the read", 100, fc23(259, 1, 2700, 123), 10),
    ],
)
async def test_fc23_refused_writes_nothing(rig: Rig, case: str, unit: int, pdu: bytes, code: int) -> None:
    before = {(s, i, p): rig.store.get(s, i, p) for s, i, p in [("vebus", 276, "/Mode"), ("settings", 0, SETPOINT)]}
    c = await RawClient.connect(rig.port)
    assert await c.request(unit, pdu) == exc(23, code), case
    assert rig.owner.writes == [], case
    assert {k: rig.store.get(*k) for k in before} == before, case
    await c.close()


async def test_fc23_refused_when_writes_are_off_or_the_owner_refuses(make_rig: MakeRig) -> None:
    off = await make_rig(writes=False)
    c = await RawClient.connect(off.port)
    assert await c.request(VEBUS_UNIT, fc23(33, 1, 33, 1)) == exc(23, 2)
    assert off.store.get("vebus", 276, "/Mode") == 3 and off.owner.writes == []
    await c.close()
    refusing = await make_rig()
    refusing.owner.reject = True
    c = await RawClient.connect(refusing.port)
    assert await c.request(VEBUS_UNIT, fc23(33, 1, 33, 1)) == exc(23, 4)
    assert refusing.store.get("vebus", 276, "/Mode") == 3


async def test_fc23_is_all_or_nothing(rig: Rig) -> None:
    """A refused read part writes nothing: the client must never believe a write failed that happened."""
    c = await RawClient.connect(rig.port)
    write_mode_4 = struct.pack(">HHBH", 33, 1, 2, 4)
    read_battery_voltage = struct.pack(">BHH", 23, 259, 1)  # a battery register, asked of the vebus unit
    assert await c.request(VEBUS_UNIT, read_battery_voltage + write_mode_4) == exc(23, 0x0A)
    assert await c.request(VEBUS_UNIT, struct.pack(">BHH", 23, 0, 1) + write_mode_4) == exc(23, 2)  # unmapped read
    assert await c.request(VEBUS_UNIT, struct.pack(">BHHHHBH", 23, 33, 1, 33, 1, 2, 9)) == exc(23, 3)  # bad value
    assert await c.request(VEBUS_UNIT, struct.pack(">BHHHHBH", 23, 33, 1, 3, 1, 2, 1)) == exc(23, 2)  # read-only
    assert rig.owner.writes == []
    assert rig.store.get("vebus", 276, "/Mode") == 3
    await c.close()


# --- any other function code: fc + 0x80, exception 01 -------------------------------------------------
async def test_unsupported_function_codes(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    for fc in (1, 2, 5, 15, 22, 43, 0x7F):
        assert await c.request(BATTERY_UNIT, bytes((fc, 0, 0, 0, 1))) == exc(fc, 1)
    await c.close()


# --- count 0 or over the limit, byte count mismatch: exception 03 -----------------------------------
async def test_bad_counts(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    for fc in (3, 4):
        assert await c.request(BATTERY_UNIT, read_pdu(259, 0, fc)) == exc(fc, 3)
        assert await c.request(BATTERY_UNIT, read_pdu(259, 126, fc)) == exc(fc, 3)
    assert await c.request(VEBUS_UNIT, fc16(37, [0, 0], nbytes=3)) == exc(16, 3)
    assert await c.request(VEBUS_UNIT, fc16(37, [0, 0], count=3)) == exc(16, 3)
    assert await c.request(VEBUS_UNIT, fc16(37, [0] * 2, count=124, nbytes=248)) == exc(16, 3)  # over 123
    assert await c.request(VEBUS_UNIT, fc16(37, [0] * 123)) == exc(16, 2)  # 123 is legal (runs into R regs)
    assert await c.request(VEBUS_UNIT, struct.pack(">BHHHHBH", 23, 33, 0, 33, 1, 2, 1)) == exc(23, 3)
    assert await c.request(VEBUS_UNIT, struct.pack(">BHHHHBH", 23, 33, 1, 33, 1, 4, 1)) == exc(23, 3)
    assert await c.request(VEBUS_UNIT, struct.pack(">BH", 6, 33)) == exc(6, 3)  # short FC 6
    assert await c.request(BATTERY_UNIT, struct.pack(">BHHB", 3, 259, 1, 0)) == exc(3, 3)  # long FC 3
    assert rig.owner.writes == []
    await c.close()


# --- write value outside the declared range or enum: 03, nothing written ----------------------------
async def test_out_of_range_writes_change_nothing(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    assert await c.request(VEBUS_UNIT, struct.pack(">BHH", 6, 33, 7)) == exc(6, 3)  # /Mode enum 1..4
    assert await c.request(100, struct.pack(">BHH", 6, 2901, 1001)) == exc(6, 3)  # min SOC 0..100 %, x10
    # All or nothing: a valid /Mode with an invalid enum value beside it writes neither.
    assert await c.request(VEBUS_UNIT, fc16(38, [1, 9])) == exc(16, 3)
    assert rig.owner.writes == []
    assert rig.store.get("vebus", 276, "/Mode") == 3
    assert rig.store.get("vebus", 276, "/Hub4/DisableCharge") is None
    await c.close()


# --- start unmapped, range into a gap or past the end: 02 ------------------------------------------
async def test_unmapped_and_gaps(rig: Rig, cmap: CompiledMap) -> None:
    c = await RawClient.connect(rig.port)
    assert 0 not in cmap.modbus.by_address and 2 not in cmap.modbus.by_address
    assert await c.request(VEBUS_UNIT, read_pdu(0, 1)) == exc(3, 2)
    assert await c.request(VEBUS_UNIT, read_pdu(65535, 1)) == exc(3, 2)
    run = cmap.modbus.by_address[259]
    length = run.run_end - 259
    assert await c.request(BATTERY_UNIT, read_pdu(259, length)) != exc(3, 2)
    assert await c.request(BATTERY_UNIT, read_pdu(259, length + 1)) == exc(3, 2)
    assert await c.request(VEBUS_UNIT, struct.pack(">BHH", 6, 0, 1)) == exc(6, 2)
    await c.close()


# --- reserved registers inside a range: 0xFFFF; writes to them ignored --------------------------------
async def test_reserved_reads_ffff_and_ignores_writes(rig: Rig, cmap: CompiledMap) -> None:
    c = await RawClient.connect(rig.port)
    r = cmap.modbus.by_address[212].register  # vebus reserved[1], access W in the reference
    assert r.reserved and r.writable
    reply = await c.request(VEBUS_UNIT, read_pdu(211, 3))
    assert words(reply)[1] == 0xFFFF
    assert await c.request(VEBUS_UNIT, struct.pack(">BHH", 6, 212, 5)) == struct.pack(">BHH", 6, 212, 5)
    assert rig.owner.writes == []
    assert words(await c.request(VEBUS_UNIT, read_pdu(212, 1))) == [0xFFFF]
    await c.close()


# --- write to a read-only register, or writes disabled: 02 ------------------------------------------
async def test_read_only_register(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    assert await c.request(BATTERY_UNIT, struct.pack(">BHH", 6, 259, 5000)) == exc(6, 2)
    assert await c.request(VEBUS_UNIT, fc16(33, [3, 0])) == exc(16, 2)  # 34 is read-only
    assert await c.request(BATTERY_UNIT, struct.pack(">BHH", 6, 257, 1)) == exc(6, 2)  # half an int32
    assert rig.owner.writes == []
    await c.close()


async def test_writes_disabled(make_rig: MakeRig) -> None:
    rig = await make_rig(writes=False)
    c = await RawClient.connect(rig.port)
    assert await c.request(VEBUS_UNIT, struct.pack(">BHH", 6, 33, 4)) == exc(6, 2)
    assert await c.request(VEBUS_UNIT, fc16(33, [4])) == exc(16, 2)
    assert rig.owner.writes == []
    assert words(await c.request(VEBUS_UNIT, read_pdu(33, 1))) == [3]  # reads still work
    await c.close()


# --- unit id with no device of that service: 0A ----------------------------------------------------
async def test_unknown_unit_gateway_path_unavailable(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    assert await c.request(VEBUS_UNIT, read_pdu(259, 1)) == exc(3, 0x0A)  # a battery register at the vebus
    assert await c.request(17, read_pdu(33, 1)) == exc(3, 0x0A)
    assert await c.request(100, read_pdu(840, 1)) == exc(3, 0x0A)  # no system service in this rig
    assert await c.request(17, struct.pack(">BHH", 6, 33, 4)) == exc(6, 0x0A)
    await c.close()


async def test_device_appearing_and_vanishing(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    assert await c.request(BATTERY_UNIT + 1, read_pdu(259, 1)) == exc(3, 0x0A)  # 226 -> 279
    rig.store.add_device("battery", 279, rig.owner, {"/Dc/0/Voltage": 12.8})
    assert words(await c.request(BATTERY_UNIT + 1, read_pdu(259, 1))) == [1280]
    rig.store.remove_device("battery", 279)
    assert await c.request(BATTERY_UNIT + 1, read_pdu(259, 1)) == exc(3, 0x0A)
    await c.close()


# --- device known but its driver does not answer a write in time: 0B; refusal: 04 --------------------
async def test_owner_timeout_and_refusal(make_rig: MakeRig) -> None:
    rig = await make_rig(write_timeout_s=0.2)
    c = await RawClient.connect(rig.port)
    rig.owner.delay_s = 5.0
    assert await c.request(VEBUS_UNIT, struct.pack(">BHH", 6, 33, 4)) == exc(6, 0x0B)
    rig.owner.delay_s = 0.0
    rig.owner.reject = True
    assert await c.request(VEBUS_UNIT, struct.pack(">BHH", 6, 33, 4)) == exc(6, 0x04)
    assert rig.store.get("vebus", 276, "/Mode") == 3
    await c.close()


async def test_owner_bug_answers_04_and_the_connection_goes_on(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.owner.crash = True
    c = await RawClient.connect(rig.port)
    await c.send(adu(1, VEBUS_UNIT, struct.pack(">BHH", 6, 33, 4)) + adu(2, VEBUS_UNIT, read_pdu(33, 1)))
    assert (await c.frame())[::2] == (1, exc(6, 0x04))
    assert (await c.frame())[::2] == (2, bytes((3, 2, 0, 3)))
    assert "failed in its owner" in caplog.text
    await c.close()


# --- value invalid/absent: sentinels (or zero with invalid = "zero") --------------------------------
async def test_invalid_values_read_as_sentinels(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    rig.store.publish("battery", 512, {"/Dc/0/Voltage": None, "/Dc/0/Current": float("nan"), "/CustomName": None})
    assert words(await c.request(BATTERY_UNIT, read_pdu(259, 3))) == [0xFFFF, 0xFFFF, 0x7FFF]  # 260 absent
    rig.store.publish("battery", 512, {"/Dc/0/Power": None})
    assert (await c.request(BATTERY_UNIT, read_pdu(256, 2)))[2:] == bytes.fromhex("7fffffff")  # int32
    assert (await c.request(BATTERY_UNIT, read_pdu(330, 2)))[2:] == bytes.fromhex("ffffffff")  # uint32
    assert (await c.request(BATTERY_UNIT, read_pdu(1336, 8)))[2:] == bytes(16)  # string
    await c.close()


async def test_invalid_zero_option(make_rig: MakeRig) -> None:
    rig = await make_rig(invalid_zero=True)
    c = await RawClient.connect(rig.port)
    rig.store.publish("battery", 512, {"/Dc/0/Voltage": None})
    assert words(await c.request(BATTERY_UNIT, read_pdu(259, 3))) == [0, 0, (-125) & 0xFFFF]
    assert words(await c.request(VEBUS_UNIT, read_pdu(122, 1))) == [0xFFFF]  # reserved stays 0xFFFF
    await c.close()


# --- several requests in one segment, or pipelined: all answered, in order, own tids -----------------
async def test_many_requests_in_one_segment(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    burst = b"".join(adu(tid, BATTERY_UNIT, read_pdu(259, 1)) for tid in range(1, 301))  # ~3.6 kB
    await c.send(burst)
    for tid in range(1, 301):
        rtid, _, pdu = await c.frame()
        assert rtid == tid and words(pdu) == [5231]
    await c.close()


async def test_pipelined_with_a_slow_write_in_the_middle(rig: Rig) -> None:
    rig.owner.delay_s = 0.1
    c = await RawClient.connect(rig.port)
    await c.send(adu(1, VEBUS_UNIT, read_pdu(33, 1)))
    await c.send(adu(2, VEBUS_UNIT, struct.pack(">BHH", 6, 33, 2)))
    await c.send(adu(3, VEBUS_UNIT, read_pdu(33, 1)) + adu(4, 99, bytes((43, 14, 1, 0))))
    replies = [await c.frame() for _ in range(4)]
    assert [r[0] for r in replies] == [1, 2, 3, 4]
    assert words(replies[0][2]) == [3]
    assert words(replies[2][2]) == [2]  # read after the write sees it
    assert replies[3][2] == exc(43, 1)
    await c.close()


# --- protocol id != 0, length < 2 or > 254: connection closed --------------------------------------
async def test_malformed_headers_close_the_connection(rig: Rig) -> None:
    for bad in (
        adu(1, BATTERY_UNIT, read_pdu(259, 1), protocol=1),
        struct.pack(">HHHB", 1, 0, 1, 1) + b"\x03",
        struct.pack(">HHHB", 1, 0, 255, 1) + bytes(254),
    ):
        c = await RawClient.connect(rig.port)
        assert words(await c.request(BATTERY_UNIT, read_pdu(259, 1))) == [5231]
        await c.send(bad)
        assert await c.closed()
        await c.close()


# --- partial frame then silence: closed after the idle timeout --------------------------------------
async def test_partial_frame_then_silence(make_rig: MakeRig) -> None:
    rig = await make_rig(idle_timeout_s=0.3)
    c = await RawClient.connect(rig.port)
    await c.send(adu(1, BATTERY_UNIT, read_pdu(259, 1))[:9])
    assert not await c.closed(timeout=0.1)
    assert await c.closed(timeout=2.0)
    await c.close()


# --- more connections than the limit: oldest idle closed, or the new one refused ----------------------
async def test_connection_limit_closes_the_oldest_idle(make_rig: MakeRig) -> None:
    rig = await make_rig(max_connections=2)
    a = await RawClient.connect(rig.port)
    await a.request(BATTERY_UNIT, read_pdu(259, 1))
    await asyncio.sleep(0.02)
    b = await RawClient.connect(rig.port)
    await b.request(BATTERY_UNIT, read_pdu(259, 1))
    c = await RawClient.connect(rig.port)
    assert words(await c.request(BATTERY_UNIT, read_pdu(259, 1))) == [5231]
    assert await a.closed()  # the oldest idle one made room
    assert words(await b.request(BATTERY_UNIT, read_pdu(259, 1))) == [5231]
    assert len(rig.server.connections) == 2
    for x in (a, b, c):
        await x.close()


async def test_connection_limit_refuses_when_none_idle(make_rig: MakeRig) -> None:
    rig = await make_rig(max_connections=1, write_timeout_s=5.0)
    rig.owner.delay_s = 1.0
    a = await RawClient.connect(rig.port)
    await a.send(adu(1, VEBUS_UNIT, struct.pack(">BHH", 6, 33, 4)))  # a write in flight: not idle
    await asyncio.sleep(0.1)
    b = await RawClient.connect(rig.port)
    assert await b.closed()
    assert (await a.frame())[2] == struct.pack(">BHH", 6, 33, 4)
    assert rig.server.refused == 1
    await a.close()
    await b.close()


# --- client address not in the allow-list: closed at accept -----------------------------------------
async def test_allow_list(make_rig: MakeRig) -> None:
    denied = await make_rig(allow=["10.0.0.0/8", "192.168.1.0/24"])
    c = await RawClient.connect(denied.port)
    assert await c.closed()
    await c.close()
    allowed = await make_rig(allow=["10.0.0.0/8", "127.0.0.0/8"])
    c = await RawClient.connect(allowed.port)
    assert words(await c.request(BATTERY_UNIT, read_pdu(259, 1))) == [5231]
    await c.close()


async def test_values_follow_the_store(rig: Rig) -> None:
    c = await RawClient.connect(rig.port)
    rig.store.publish("battery", 512, {"/Soc": 55.55})
    assert words(await c.request(BATTERY_UNIT, read_pdu(266, 1))) == [556]  # half away from zero
    await c.close()
