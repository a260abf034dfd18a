"""pymodbus's async client (the project's chosen client library) against our server."""

from __future__ import annotations

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ExceptionResponse

from tests.modbus_rig import Rig


async def test_pymodbus_reads_and_writes(rig: Rig) -> None:
    client = AsyncModbusTcpClient("127.0.0.1", port=rig.port, timeout=2, retries=0)
    assert await client.connect()
    try:
        rr = await client.read_holding_registers(259, count=3, device_id=225)
        assert not rr.isError()
        assert rr.registers == [5231, 0xFFFF, (-125) & 0xFFFF]
        ir = await client.read_input_registers(259, count=3, device_id=225)
        assert ir.registers == rr.registers
        wr = await client.write_register(33, 1, device_id=227)
        assert not wr.isError()
        assert rig.store.get("vebus", 276, "/Mode") == 1
        wm = await client.write_registers(37, [100, 1], device_id=227)
        assert not wm.isError()
        assert rig.store.get("vebus", 276, "/Hub4/DisableCharge") == 1
        bad = await client.read_holding_registers(259, count=1, device_id=17)
        assert bad.isError() and isinstance(bad, ExceptionResponse) and bad.exception_code == 0x0A
        bad = await client.write_register(33, 9, device_id=227)
        assert bad.isError() and isinstance(bad, ExceptionResponse) and bad.exception_code == 3
    finally:
        client.close()
