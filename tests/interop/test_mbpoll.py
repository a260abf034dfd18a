"""mbpoll (Debian's C client on libmodbus) against our server, as an integrator would use it."""

from __future__ import annotations

from tests.helpers import parse_mbpoll, run_mbpoll
from tests.modbus_rig import Rig


async def test_mbpoll_reads_fc3_and_fc4(rig: Rig) -> None:
    for table in ("3", "4"):
        rc, out = await run_mbpoll(rig.port, "-a", "225", "-r", "258", "-c", "4", "-t", table, "127.0.0.1")
        assert rc == 0, out
        assert parse_mbpoll(out) == {258: -654, 259: 5231, 260: -1, 261: -125}


async def test_mbpoll_reads_32bit_big_endian(rig: Rig) -> None:
    rc, out = await run_mbpoll(rig.port, "-a", "225", "-r", "256", "-t", "4:int", "-B", "127.0.0.1")
    assert rc == 0, out
    assert parse_mbpoll(out) == {256: -654}


async def test_mbpoll_writes_and_reads_back(rig: Rig) -> None:
    rc, out = await run_mbpoll(rig.port, "-a", "227", "-r", "33", "-t", "4", "127.0.0.1", "4")
    assert rc == 0 and "Written 1 references" in out, out
    assert rig.store.get("vebus", 276, "/Mode") == 4
    rc, out = await run_mbpoll(rig.port, "-a", "227", "-r", "33", "-t", "4", "127.0.0.1")
    assert parse_mbpoll(out) == {33: 4}


async def test_mbpoll_sees_exceptions(rig: Rig) -> None:
    rc, out = await run_mbpoll(rig.port, "-a", "17", "-r", "33", "-t", "4", "127.0.0.1")
    assert rc != 0 and "Gateway path unavailable" in out
    rc, out = await run_mbpoll(rig.port, "-a", "227", "-r", "33", "-t", "4", "127.0.0.1", "9")
    assert rc != 0 and "Illegal data value" in out, out
    assert rig.store.get("vebus", 276, "/Mode") == 3


# Captured from mbpoll 1.0-0 (Debian) reading 258..261 of the rig's battery as input registers.
SAMPLE_OUTPUT = (
    "Protocol configuration: Modbus TCP\n"
    "Slave configuration...: address = [225]\n"
    "                        start reference = 258, count = 4\n"
    "-- Polling slave 225...\n"
    "[258]: \t64882 (-654)\n"
    "[259]: \t5231\n"
    "[260]: \t65535 (-1)\n"
    "[261]: \t65411 (-125)\n"
)


def test_parse_mbpoll_takes_signed_readings_and_ignores_the_banner() -> None:
    """Runs without mbpoll: the one parser the mbpoll tests (and the demo's) rely on."""
    assert parse_mbpoll(SAMPLE_OUTPUT) == {258: -654, 259: 5231, 260: -1, 261: -125}
    assert parse_mbpoll("[256]: \t-654\n") == {256: -654}  # -t 4:int prints the signed value only
    assert parse_mbpoll("Gateway path unavailable\n") == {}
