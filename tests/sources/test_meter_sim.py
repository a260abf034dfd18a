"""The meter simulators speak Modbus-TCP: pymodbus's client reads them over real sockets."""

from __future__ import annotations

import struct

import pytest
from pymodbus.client import AsyncModbusTcpClient

from gateway.sim.protocols.meter_sim import MeterSimulator
from registers import load_default
from registers.meters import meter_models

MODELS = meter_models(load_default())


async def read(port: int, fc: int, address: int, count: int, unit: int) -> list[int] | int:
    """Registers, or the exception code."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    await client.connect()
    try:
        call = client.read_input_registers if fc == 4 else client.read_holding_registers
        rr = await call(address, count=count, device_id=unit)
        return int(rr.exception_code) if rr.isError() else list(rr.registers)
    finally:
        client.close()


@pytest.mark.parametrize("name", ["em24", "em540", "sdm630", "abb-b23", "sma-native"])
async def test_pymodbus_reads_every_planned_block(name: str) -> None:
    model = MODELS[name]
    sim = MeterSimulator(model, unit=3 if name == "sma-native" else 1)
    await sim.start()
    try:
        answers = {}
        for i, b in enumerate(model.blocks):
            regs = await read(sim.port, b.function, b.address, b.count, sim.unit)
            assert isinstance(regs, list) and len(regs) == b.count
            answers[i] = struct.pack(f">{b.count}H", *regs)
        decoded = model.decode(answers)
        for path, want in model.samples[0].expected.items():
            assert decoded[path] == pytest.approx(want) if isinstance(want, float) else decoded[path] == want
        if model.probe is not None:
            p = model.probe
            regs = await read(sim.port, p.function, p.address, p.codec.width, sim.unit)
            assert isinstance(regs, list)
            assert p.matches(p.value(struct.pack(f">{len(regs)}H", *regs)))
    finally:
        await sim.stop()


async def test_em24_sends_the_low_word_first_and_its_model_id() -> None:
    sim = MeterSimulator(MODELS["em24"])
    await sim.start()
    try:
        sim.set({"/Ac/Power": -2016.0, "/Ac/L1/Voltage": 230.4})
        assert await read(sim.port, 4, 0x28, 2, 1) == [0xB140, 0xFFFF]  # -20160, low word first
        assert await read(sim.port, 4, 0x00, 2, 1) == [2304, 0]
        assert await read(sim.port, 4, 0x0B, 1, 1) == [1648]
    finally:
        await sim.stop()


async def test_faults_exceptions_nan_offline_and_back() -> None:
    sim = MeterSimulator(MODELS["sdm630"])
    await sim.start()
    port = sim.port
    try:
        assert await read(port, 4, 0x0000, 2, 7) == 0x0B  # not its unit id
        assert await read(port, 4, 0x2000, 2, 1) == 0x02  # a register it does not have
        assert await read(port, 3, 0x0000, 2, 1) == 0x01  # SDM630 values are input registers
        sim.invalid(["/Ac/L1/Power"])
        regs = await read(port, 4, 0x0C, 2, 1)
        assert regs == [0x7FC0, 0x0000]  # float32 NaN
        sim.fail_with = 0x04
        assert await read(port, 4, 0x0000, 2, 1) == 0x04
        sim.fail_with = None
        await sim.offline()
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
        assert not await client.connect()  # connection refused
        client.close()
        await sim.online()
        assert sim.port == port
        assert isinstance(await read(port, 4, 0x0000, 2, 1), list)
    finally:
        await sim.stop()


async def test_abb_sends_its_sentinels() -> None:
    sim = MeterSimulator(MODELS["abb-b23"])
    await sim.start()
    try:
        sim.invalid()
        assert await read(sim.port, 3, 0x5B14, 2, 1) == [0x7FFF, 0xFFFF]
        assert await read(sim.port, 3, 0x5004, 4, 1) == [0xFFFF] * 4
        assert await read(sim.port, 3, 0x8960, 2, 1) == [0x4232, 0x3300]  # "B23"
    finally:
        await sim.stop()
