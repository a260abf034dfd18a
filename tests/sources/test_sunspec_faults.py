"""Bad devices and bad frames: the driver never publishes a stale or made-up number."""

from __future__ import annotations

import asyncio
import socket
import struct

from gateway.core.store import Device, Store
from gateway.sim.protocols.modbus_server import SimModbusServer
from gateway.sources.device_state import MISSES_BEFORE_OFFLINE, Phase
from tests.sources.rig import POLL_S, device, polled, simulator, until

AC = ("/Ac/Power", "/Ac/L1/Voltage", "/Ac/L1/Current", "/Ac/L1/Energy/Forward", "/Ac/Frequency")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pv(store: Store, instance: int = 20) -> Device:
    d = store.device("pvinverter", instance)
    assert d is not None
    return d


async def test_offline_at_start_then_found_without_a_restart() -> None:
    store = Store()
    async with simulator("fronius") as sim:
        port = sim.address[1]
        await sim.server.go_offline()
        async with polled(store, device(0, 20, port, 1)) as source:
            state = source.pollers[0].state
            assert pv(store).get("/Connected") == 0  # in the Store at once, as disconnected
            await until(lambda: state.phase is Phase.OFFLINE, timeout=POLL_S * 6, what="offline")
            assert state.last_error is not None and "connect" in state.last_error
            assert all(pv(store).get(p) is None for p in AC)
            await sim.server.come_back()
            await until(lambda: pv(store).get("/Connected") == 1, timeout=40 * POLL_S + 2, what="found again")
            assert state.phase is Phase.ONLINE and isinstance(pv(store).get("/Ac/Power"), float)


async def test_offline_mid_poll_is_invalid_within_three_polls_and_comes_back() -> None:
    store = Store()
    async with simulator("abb") as sim, polled(store, device(0, 20, sim.address[1], 1)) as source:
        await until(lambda: pv(store).get("/Connected") == 1)
        assert all(pv(store).get(p) is not None for p in AC)
        loop = asyncio.get_running_loop()
        gone = loop.time()
        await sim.server.go_offline()
        await until(lambda: pv(store).get("/Connected") == 0, timeout=5, what="disconnected")
        assert loop.time() - gone <= (MISSES_BEFORE_OFFLINE + 1) * POLL_S + 0.3
        assert all(pv(store).get(p) is None for p in AC)  # never left stale
        assert pv(store).get("/Position") == 0 and pv(store).get("/CustomName") is None  # config stays
        await sim.server.come_back()
        await until(lambda: pv(store).get("/Connected") == 1, timeout=40 * POLL_S + 2, what="back")
        assert all(pv(store).get(p) is not None for p in AC)
        assert source.pollers[0].state.phase is Phase.ONLINE


async def test_a_device_that_accepts_and_never_answers_goes_offline() -> None:
    store = Store()
    async with simulator("fronius") as sim, polled(store, device(0, 20, sim.address[1], 1)) as source:
        await until(lambda: pv(store).get("/Connected") == 1)
        sim.server.silent = True
        await until(lambda: pv(store).get("/Connected") == 0, timeout=3 * 1.0 + 3 * POLL_S + 2, what="offline")
        state = source.pollers[0].state
        assert state.last_error is not None and "no answer" in state.last_error
        assert pv(store).get("/Ac/Power") is None


class Handler:
    """A Modbus device that is not what the driver expects."""

    def __init__(self, endless: bool) -> None:
        self.endless = endless
        self.reads = 0

    def read(self, unit: int, address: int, count: int) -> bytes | int:
        self.reads += 1
        if not self.endless:
            return bytes(2 * count)  # answers, but no "SunS" anywhere
        if address == 40000:
            return b"SunS" + bytes(2 * count - 4)
        return struct.pack(">HH", 1, 0)[: 2 * count].ljust(2 * count, b"\0")  # model 1, L=0, forever

    def write(self, unit: int, address: int, data: bytes) -> int | None:
        return 2


async def test_no_suns_marker_and_an_endless_chain_are_probe_errors() -> None:
    for endless, expected in ((False, '"SunS"'), (True, "does not end")):
        handler = Handler(endless)
        server = SimModbusServer(handler)
        await server.start()
        store = Store()
        try:
            async with polled(store, device(0, 20, server.port, 1)) as source:
                state = source.pollers[0].state
                await until(lambda: state.phase is Phase.OFFLINE, timeout=20 * POLL_S, what="offline")  # noqa: B023
                assert state.last_error is not None and expected in state.last_error, state.last_error
                assert pv(store).get("/Connected") == 0
                assert handler.reads < 3 * (64 + 4)  # bounded walk
        finally:
            await server.stop()


async def test_scale_factor_0x8000_and_sentinels_are_invalid_never_zero() -> None:
    store = Store()
    async with simulator("fronius") as sim, polled(store, device(0, 20, sim.address[1], 1)):
        await until(lambda: isinstance(pv(store).get("/Ac/Power"), float))
        sim.fault = "sf_8000"
        await until(lambda: pv(store).get("/Ac/Power") is None, what="W invalid")
        assert isinstance(pv(store).get("/Ac/L1/Voltage"), float)  # only W's factor is bad
        assert pv(store).get("/Connected") == 1
        sim.fault = "sentinels"
        await until(lambda: all(pv(store).get(p) is None for p in AC), what="all invalid")
        sim.fault = "none"
        await until(lambda: all(isinstance(pv(store).get(p), float) for p in AC), what="valid again")


async def test_fronius_null_frames_are_read_again_never_published() -> None:
    store = Store()
    published: list[object] = []

    class Watch:
        def device_added(self, device: Device) -> None: ...
        def device_removed(self, device: Device) -> None: ...
        def values_changed(self, device: Device, paths: object) -> None:
            if device.service == "pvinverter" and "/Ac/Power" in paths:  # type: ignore[operator]
                published.append(device.get("/Ac/Power"))

    store.subscribe(Watch())
    async with simulator("fronius") as sim, polled(store, device(0, 20, sim.address[1], 1)) as source:
        await until(lambda: pv(store).get("/Connected") == 1)
        for _ in range(8):  # a null frame before each of the next polls
            sim.null_frames = 1
            polls = source.pollers[0].state.polls
            await until(lambda: source.pollers[0].state.polls > polls)  # noqa: B023
        assert sim.null_frames == 0
        assert published and all(isinstance(w, float) and w > 100 for w in published), published
        sim.null_frames = 1000  # nothing but null frames: missed polls, then offline, never zeros
        await until(lambda: pv(store).get("/Connected") == 0, timeout=5)
        assert "all-zero" in (source.pollers[0].state.last_error or "")
        assert all(w != 0 for w in published)
