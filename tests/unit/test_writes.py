"""The write gate: one validation for every frontend, in front of every owner."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Mapping
from pathlib import Path

import pytest

from gateway.core.derived import IMPLEMENTATIONS
from gateway.core.settings import Settings
from gateway.core.store import Device, Store, WriteRejected
from gateway.core.writes import Refusal, WriteGate, Writer, WriteRefused
from gateway.frontends.modbus.server import ModbusServer
from registers import CompiledMap
from registers.derive import FUNCTIONS
from registers.values import Scalar
from tests.modbus_rig import RawClient

WEB = Writer("http", "192.0.2.7:50000")
MIN_SOC = "/Settings/CGwacs/BatteryLife/MinimumSocLimit"  # 2901: uint16 x10, W, range 0..100 %


class Recorder:
    """An owner as a driver is: records what reaches it and publishes it."""

    def __init__(self, store: Store, refuse: bool = False) -> None:
        self.store, self.refuse, self.seen = store, refuse, []  # type: ignore[var-annotated]

    async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
        if self.refuse:
            raise WriteRejected("the inverter said no")
        self.seen.append(dict(changes))
        self.store.publish(device.service, device.instance, changes)


def gate_with_vebus(cmap: CompiledMap, refuse: bool = False) -> tuple[WriteGate, Recorder, list[tuple[object, ...]]]:
    store = Store()
    owner = Recorder(store, refuse)
    store.add_device("vebus", 276, owner, {"/Mode": 3})
    gate = WriteGate(store, cmap)
    audit: list[tuple[object, ...]] = []
    gate.audit_hooks.append(lambda *a: audit.append(a))
    return gate, owner, audit


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        ({"/Nope": 1}, Refusal.UNKNOWN_PATH),
        ({"/State": 0}, Refusal.READ_ONLY),
        ({"/Mode": 7}, Refusal.BAD_VALUE),  # not in the vebus_mode enum
        ({"/Mode": 2.5}, Refusal.BAD_VALUE),
        ({"/Mode": "4"}, Refusal.BAD_VALUE),  # text for a number
        ({"/Mode": float("nan")}, Refusal.BAD_VALUE),
        ({"/Ac/ActiveIn/CurrentLimit": 150}, Refusal.BAD_VALUE),  # declared max 100 A
        ({"/Hub4/L1/MaxFeedInPower": -5}, Refusal.BAD_VALUE),  # below what its uint16 register carries
        ({"/CustomName": 5}, Refusal.BAD_VALUE),
        ({"/Mode": 4, "/State": 1}, Refusal.READ_ONLY),  # all or nothing
    ],
)
async def test_refusals_say_why_and_nothing_reaches_the_owner(
    cmap: CompiledMap, changes: dict[str, Scalar], refusal: Refusal
) -> None:
    gate, owner, audit = gate_with_vebus(cmap)
    with pytest.raises(WriteRefused) as info:
        await gate.write("vebus", 276, changes, WEB)
    assert info.value.refusal is refusal and info.value.reason
    assert owner.seen == []
    assert gate.refused == 1 and gate.accepted == 0
    assert audit == [(WEB, "vebus", 276, changes, info.value)]


async def test_no_device_owner_refusal_and_timeout(cmap: CompiledMap) -> None:
    gate, _, _ = gate_with_vebus(cmap)
    with pytest.raises(WriteRefused) as info:
        await gate.write("vebus", 999, {"/Mode": 4}, WEB)
    assert info.value.refusal is Refusal.NO_DEVICE
    refusing, _, _ = gate_with_vebus(cmap, refuse=True)
    with pytest.raises(WriteRefused) as info:
        await refusing.write("vebus", 276, {"/Mode": 4}, WEB)
    assert info.value.refusal is Refusal.OWNER_REFUSED and "said no" in info.value.reason

    class Silent:
        async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
            await asyncio.Event().wait()

    store = Store()
    store.add_device("vebus", 276, Silent(), {})
    with pytest.raises(WriteRefused) as info:
        await WriteGate(store, cmap).write("vebus", 276, {"/Mode": 4}, WEB, timeout=0.05)
    assert info.value.refusal is Refusal.TIMEOUT


async def test_accepted_write_reaches_the_owner_as_clean_values(cmap: CompiledMap) -> None:
    gate, owner, audit = gate_with_vebus(cmap)
    await gate.write("vebus", 276, {"/Mode": 4.0, "/CustomName": "Multi"}, WEB)  # 4.0: a number from JSON
    assert owner.seen == [{"/Mode": 4, "/CustomName": "Multi"}]
    assert type(owner.seen[0]["/Mode"]) is int  # an enum value is handed on as int
    assert gate.accepted == 1 and audit[0][-1] is None


async def test_a_settings_write_not_through_modbus_is_validated_like_one_that_is(
    cmap: CompiledMap, tmp_path: Path
) -> None:
    """The same out-of-range minimum SOC is refused from the web as over Modbus (exception 03),
    and a valid one from either lands in the settings service and its file."""
    store = Store()
    settings = Settings(store, tmp_path)
    settings.start()
    gate = WriteGate(store, cmap)
    server = ModbusServer(cmap, store, gate=gate)
    await server.start("127.0.0.1", 0)
    try:
        for bad in (100.1, -5, "20"):
            with pytest.raises(WriteRefused) as info:
                await gate.write("settings", 0, {MIN_SOC: bad}, WEB)
            assert info.value.refusal is Refusal.BAD_VALUE
        c = await RawClient.connect(server.port)
        assert await c.request(100, struct.pack(">BHH", 6, 2901, 1001)) == bytes((0x86, 3))  # 100.1 %
        assert store.get("settings", 0, MIN_SOC) == 20  # the default: nothing got through
        assert await c.request(100, struct.pack(">BHH", 6, 2901, 350)) == struct.pack(">BHH", 6, 2901, 350)
        assert store.get("settings", 0, MIN_SOC) == 35
        await gate.write("settings", 0, {MIN_SOC: 40}, WEB)
        assert store.get("settings", 0, MIN_SOC) == 40
        await c.close()
    finally:
        await server.stop()
        await settings.flush()
    assert '"/Settings/CGwacs/BatteryLife/MinimumSocLimit": 40' in (tmp_path / "settings.json").read_text()


def test_every_derive_function_the_compiler_knows_is_implemented() -> None:
    """The compiler names functions only (it stays pure); the gateway must implement each."""
    assert set(FUNCTIONS) == set(IMPLEMENTATIONS)
