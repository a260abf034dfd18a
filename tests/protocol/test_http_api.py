"""The JSON API over a real socket with aiohttp's client."""

from __future__ import annotations

import aiohttp

from gateway.core.store import Store
from gateway.frontends.http.api import HttpServer
from registers import CompiledMap


async def test_devices_values_and_errors(cmap: CompiledMap) -> None:
    store = Store()
    store.add_device("battery", 512, None, {"/Soc": 81.5, "/Dc/0/Voltage": None})
    store.add_device("system", 0, None, {"/Dc/Battery/Soc": 81.5})
    http = HttpServer(store, cmap)
    await http.start("127.0.0.1", 0)
    base = f"http://127.0.0.1:{http.sockets[0][1]}/api/v1"
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{base}/devices") as r:
                assert r.status == 200
                body = await r.json()
            assert body["devices"] == [
                {"service": "com.victronenergy.battery", "type": "battery", "instance": 512, "unit_id": 225},
                {"service": "com.victronenergy.system", "type": "system", "instance": 0, "unit_id": 100},
            ]
            for name in ("battery", "com.victronenergy.battery"):
                async with s.get(f"{base}/devices/{name}/512") as r:
                    values = (await r.json())["values"]
                assert values["/Soc"]["value"] == 81.5 and values["/Soc"]["valid"] is True
                assert values["/Dc/0/Voltage"] == {**values["/Dc/0/Voltage"], "value": None, "valid": False}
            async with s.get(f"{base}/devices/battery/512/Soc") as r:
                assert (await r.json())["value"] == 81.5
            store.publish("battery", 512, {"/Soc": 80.0})
            async with s.get(f"{base}/devices/battery/512/Soc") as r:
                assert (await r.json())["value"] == 80.0
            for url, fragment in (
                (f"{base}/devices/battery/7", "no device battery instance 7"),
                (f"{base}/devices/battery/x", "is not a number"),
                (f"{base}/devices/battery/512/Nope", "has no path /Nope"),
                (f"{base}/nothing", "Not Found"),
            ):
                async with s.get(url) as r:
                    assert r.status == 404
                    assert fragment in (await r.json())["error"]
            async with s.post(f"{base}/devices") as r:
                assert r.status == 405 and "error" in await r.json()
    finally:
        await http.stop()
