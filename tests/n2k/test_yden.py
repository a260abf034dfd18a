"""The Yacht Devices RAW transport against a gateway stand-in on 127.0.0.1 speaking YD RAW
(``19F21414 01 2D ...`` lines to the gateway, ``hh:mm:ss.ms R 19EA1464 ...`` lines from the bus)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from gateway.core.store import Store
from gateway.transports.can import YdenRaw
from tests.n2k.decode import decode_lines
from tests.n2k.rig import VALUES, frontend, wait_for


class YdenStandIn:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        while line := await reader.readline():
            self.lines.append(line.decode("ascii").strip())

    def candump(self) -> list[str]:
        out = []
        for line in self.lines:
            can_id, *data = line.split()
            out.append(f"({time.time():.6f}) can0 {can_id}#{''.join(data)}")
        return out

    def to_bus(self, text: str) -> None:
        for w in self.writers:
            w.write(text.encode("ascii"))


async def test_yden_sends_pgns_and_answers_an_iso_request() -> None:
    stand_in = YdenStandIn()
    server = await asyncio.start_server(stand_in.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = Store()
    store.add_device("battery", 512, values=VALUES[("battery", 512)])
    fe = frontend(store, "unused")
    fe.transport = YdenRaw("127.0.0.1", port)
    await fe.start()
    try:
        assert await wait_for(lambda: any(m.pgn == 127508 for m in decode_lines(stand_in.candump())), timeout=6.0)
        battery = fe.nodes[("battery", 512)].devices[0]
        assert battery.address is not None
        # A plotter at 0x64 asks the battery for its Product Information (ISO Request, 59904).
        stand_in.to_bus(f"12:00:00.000 R 18EA{battery.address:02X}64 14 F0 01\r\n")
        assert await wait_for(
            lambda: any(m.pgn == 126996 and m.src == battery.address for m in decode_lines(stand_in.candump()[-40:])),
            timeout=2.0,
        )
        volts = [m.fields["voltage"] for m in decode_lines(stand_in.candump()) if m.pgn == 127508]
        assert volts[-1] == pytest.approx(52.37, abs=0.006)
    finally:
        await fe.stop()
        server.close()
        await server.wait_closed()


async def test_unreachable_yden_is_logged_once_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = Store()
    store.add_device("battery", 512, values=VALUES[("battery", 512)])
    fe = frontend(store, "unused")
    fe.transport = YdenRaw("127.0.0.1", port)
    with caplog.at_level(logging.WARNING, logger="gateway.frontends.n2k"):
        await fe.start()
        try:
            await wait_for(lambda: False, timeout=2.0)
        finally:
            await fe.stop()
    failures = [r for r in caplog.records if f"yden:127.0.0.1:{port}" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in failures]
    assert fe.link is not None and not fe.link.up
    assert all(vd.address is None for vd in fe.virtual_devices())  # nobody claims without a bus
