"""/healthz says what is down: a gateway in-process whose simulation has stopped answers 503."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import aiohttp

from gateway.app import Gateway
from gateway.config import HttpConfig, load_demo_config
from gateway.sources.simulated import SimulatedSource
from registers import CompiledMap


async def test_healthz_is_503_naming_the_part_that_is_down(tmp_path: Path, cmap: CompiledMap) -> None:
    demo = load_demo_config()
    config = dataclasses.replace(
        demo,
        state_dir=tmp_path,
        modbus=dataclasses.replace(demo.modbus, listen=("127.0.0.1", 0)),
        http=HttpConfig(listen=("127.0.0.1", 0)),
    )
    gateway = Gateway(cmap, config)
    await gateway.start()
    try:
        assert gateway.http is not None
        url = f"http://127.0.0.1:{gateway.http.sockets[0][1]}/healthz"
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as r:
                assert r.status == 200, await r.text()
            (source,) = [c for c in gateway.components if isinstance(c, SimulatedSource)]
            assert source._task is not None
            source._task.cancel()
            await asyncio.wait([source._task], timeout=2)
            async with session.get(url) as r:
                body = await r.json()
                assert r.status == 503, body
            assert body["status"] == "failing"
            assert body["checks"]["SimulatedSource"] == "the simulation stopped"
            assert body["problems"] == ["SimulatedSource: the simulation stopped"]
            assert body["checks"]["modbus"] == "ok"
    finally:
        await gateway.stop()


class HeldStart:
    """A component that starts only when the test lets it (after the HTTP frontend is up)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def start(self) -> None:
        await self.release.wait()

    async def stop(self) -> None:
        pass


async def test_healthz_says_starting_while_the_last_components_start(tmp_path: Path, cmap: CompiledMap) -> None:
    demo = load_demo_config()
    config = dataclasses.replace(
        demo,
        state_dir=tmp_path,
        modbus=dataclasses.replace(demo.modbus, listen=("127.0.0.1", 0)),
        http=HttpConfig(listen=("127.0.0.1", 0)),
    )
    gateway = Gateway(cmap, config)
    held = HeldStart()
    gateway.components.append(held)
    starting = asyncio.create_task(gateway.start())
    try:
        for _ in range(200):
            if gateway.http is not None:
                break
            await asyncio.sleep(0.01)
        assert gateway.http is not None and gateway.starting
        url = f"http://127.0.0.1:{gateway.http.sockets[0][1]}/healthz"
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as r:
                body = await r.json()
                assert r.status == 503, body
            assert body["checks"]["store"] == "starting"
            assert "store: starting" in body["problems"]
            held.release.set()
            await starting
            async with session.get(url) as r:
                assert r.status == 200, await r.text()
    finally:
        held.release.set()
        await starting
        await gateway.stop()
