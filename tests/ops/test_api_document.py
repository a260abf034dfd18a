"""Every route of the assembled gateway's HTTP server is in the OpenAPI document, and the
operations endpoints answer as it says."""

from __future__ import annotations

import re

import aiohttp

from gateway.app import Gateway
from gateway.config import Config, HttpConfig, ModbusConfig
from registers import CompiledMap
from tests.web.openapi_check import SPEC, check


async def test_assembled_routes_are_documented_and_answer_as_documented(cmap: CompiledMap) -> None:
    config = Config(
        state_dir=None,
        modbus=ModbusConfig(listen=("127.0.0.1", 0)),
        http=HttpConfig(listen=("127.0.0.1", 0)),
    )
    gateway = Gateway(cmap, config)
    await gateway.start()
    try:
        assert gateway.http is not None
        routes = set()
        for resource in gateway.http.runner.app.router.resources():
            info = resource.get_info()
            template = info.get("formatter") or info.get("path")
            if template is not None and not template.startswith("/static"):
                routes.add(re.sub(r"\{path:\.\+\}", "{path}", template))
        assert routes == set(SPEC["paths"]), routes ^ set(SPEC["paths"])
        base = f"http://127.0.0.1:{gateway.http.sockets[0][1]}"
        async with aiohttp.ClientSession() as s:
            for path in ("/healthz", "/api/v1/status"):
                async with s.get(base + path) as r:
                    check(path, "get", r.status, await r.json())
                    assert r.status == 200
            async with s.get(base + "/metrics") as r:
                assert r.status == 200 and r.content_type == "text/plain"
                assert "# TYPE" in await r.text()
    finally:
        await gateway.stop()
