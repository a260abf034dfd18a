"""Headless Chromium driven over the DevTools protocol (a websocket, with aiohttp): no npm.

Started with a fresh profile, no network services of its own, and ``--remote-debugging-port=0``;
the port it picked is read from DevToolsActivePort in the profile folder.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
)


class Page:
    """One tab: commands go over the browser's websocket with this tab's session id."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: str, counter: itertools.count[int]) -> None:
        self.ws = ws
        self.session = session
        self.counter = counter
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.console: list[str] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self.counter)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[n] = future
        await self.ws.send_str(json.dumps({"id": n, "method": method, "params": params, "sessionId": self.session}))
        return await asyncio.wait_for(future, 15)

    def dispatch(self, msg: dict[str, Any]) -> None:
        future = self.waiting.pop(msg.get("id", -1), None)
        if future is not None and not future.done():
            if "error" in msg:
                future.set_exception(RuntimeError(f"DevTools: {msg['error']}"))
            else:
                future.set_result(msg.get("result", {}))
        elif msg.get("method") == "Runtime.exceptionThrown":
            self.console.append(json.dumps(msg["params"]["exceptionDetails"])[:500])

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def size(self, width: int, height: int) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
        )

    async def open(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll until the expression is truthy (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(RuntimeError):
                value = await self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never satisfied: {expression}")
            await asyncio.sleep(0.1)

    async def click(self, selector: str) -> None:
        """A real mouse click (press and release) at the middle of the element."""
        box = await self.evaluate(
            f"(function(){{var e=document.querySelector({json.dumps(selector)}); if(!e) return null;"
            "e.scrollIntoView(); var r=e.getBoundingClientRect(); return [r.left+r.width/2, r.top+r.height/2];})()"
        )
        assert box is not None, f"no element {selector}"
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    async def screenshot(self, path: Path) -> Path:
        data = await self.send("Page.captureScreenshot", format="png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data["data"]))
        return path


@contextlib.asynccontextmanager
async def chromium(exe: str) -> AsyncIterator[Page]:
    """A headless browser with one page; everything is closed and removed at the end."""
    # Chromium's helper processes may still write to the profile while it exits.
    with tempfile.TemporaryDirectory(prefix="gxgw-chromium-", ignore_cleanup_errors=True) as profile:
        proc = await asyncio.create_subprocess_exec(
            exe,
            *FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: its helpers end with it
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 20
            while not port_file.is_file() or len(port_file.read_text().splitlines()) < 2:
                assert proc.returncode is None, f"chromium exited with {proc.returncode}"
                assert time.monotonic() < deadline, "chromium did not open its DevTools port"
                await asyncio.sleep(0.1)
            port, path = port_file.read_text().splitlines()[:2]
            async with aiohttp.ClientSession() as s, s.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0) as ws:
                counter = itertools.count(1)
                await ws.send_str(
                    json.dumps({"id": 0, "method": "Target.createTarget", "params": {"url": "about:blank"}})
                )
                target = await _answer(ws, 0)
                await ws.send_str(
                    json.dumps(
                        {
                            "id": -2,
                            "method": "Target.attachToTarget",
                            "params": {"targetId": target["targetId"], "flatten": True},
                        }
                    )
                )
                session = (await _answer(ws, -2))["sessionId"]
                page = Page(ws, session, counter)
                pump = asyncio.create_task(_pump(ws, page))
                try:
                    await page.send("Page.enable")
                    await page.send("Runtime.enable")
                    yield page
                finally:
                    pump.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pump
        finally:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # helpers left behind by the browser we started


async def _answer(ws: aiohttp.ClientWebSocketResponse, n: int) -> dict[str, Any]:
    while True:
        msg = json.loads((await asyncio.wait_for(ws.receive(), 15)).data)
        if msg.get("id") == n:
            result: dict[str, Any] = msg["result"]
            return result


async def _pump(ws: aiohttp.ClientWebSocketResponse, page: Page) -> None:
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            page.dispatch(json.loads(msg.data))
