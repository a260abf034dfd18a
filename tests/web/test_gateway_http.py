"""The assembled Gateway: web writes go through ITS write gate (the one Modbus uses) and are logged
with the peer; the demo's discovery starts on loopback with the HTTP server's real port."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import aiohttp
import pytest

from gateway.app import Gateway
from gateway.config import HttpConfig, ModbusConfig, load_demo_config
from gateway.frontends.http.discovery import Discovery, NavicoAnnouncer
from registers import load_default


async def test_web_writes_use_the_gateways_one_gate(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    demo = load_demo_config()
    assert demo.http is not None
    config = dataclasses.replace(
        demo,
        state_dir=tmp_path,
        modbus=ModbusConfig(listen=("127.0.0.1", 0)),
        http=dataclasses.replace(demo.http, listen=("127.0.0.1", 0)),
    )
    gw = Gateway(load_default(), config)
    seen: list[str] = []
    gw.gate.audit_hooks.append(lambda writer, *_: seen.append(str(writer)))
    await gw.start()
    try:
        assert gw.http is not None
        port = gw.http.sockets[0][1]
        discovery = next(c for c in gw.components if isinstance(c, Discovery))
        navico = next(p for p in discovery.parts if isinstance(p, NavicoAnnouncer))
        assert navico.sent >= 1 and navico.port() == port
        caplog.set_level(logging.INFO, logger="gateway.frontends.http.write")
        async with aiohttp.ClientSession() as s:
            body = {"service": "vebus", "instance": 276, "path": "/Mode", "value": 4}
            async with s.post(f"http://127.0.0.1:{port}/api/v1/write", json=body) as r:
                assert r.status == 200
        assert gw.store.get("vebus", 276, "/Mode") == 4
        # The control rules (control:ess, control:tank-pump, ...) write through the same gate.
        web = [w for w in seen if not w.startswith("control:")]
        assert len(web) == 1 and web[0].startswith("http 127.0.0.1:")
        assert any("web write from 127.0.0.1:" in m and "/Mode = 4" in m for m in caplog.messages)
    finally:
        await gw.stop()


def test_run_config_without_writes_answers_403_by_default() -> None:
    assert HttpConfig().writes is False
