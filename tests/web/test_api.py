"""The JSON API over a real socket, each answer checked against the OpenAPI document it serves.

Writes go through the real write gate to the simulated installation's owners; a refused write
must leave the Store as it was.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import aiohttp
from openapi_spec_validator import validate

from gateway.core.store import Store
from gateway.frontends.http.api import HttpServer, openapi_document
from registers import CompiledMap
from tests.web.openapi_check import SPEC, check
from tests.web.rig import web_rig


async def _get(s: aiohttp.ClientSession, url: str) -> tuple[int, str, Any]:
    async with s.get(url) as r:
        if r.content_type == "application/json":
            return r.status, r.content_type, await r.json()
        return r.status, r.content_type, await r.text()


def test_the_document_is_valid_openapi() -> None:
    validate(openapi_document())  # raises on an invalid document


def test_every_route_is_in_the_document(cmap: CompiledMap) -> None:
    """Every route the web server answers (but the static files) is documented; the operations
    routes the assembled gateway adds are checked in tests/ops/test_api_document.py."""
    http = HttpServer(Store(), cmap)
    routes = set()
    for resource in http.runner.app.router.resources():
        info = resource.get_info()
        template = info.get("formatter") or info.get("path")
        if template is None or template.startswith("/static"):
            continue
        routes.add(re.sub(r"\{path:\.\+\}", "{path}", template))
    assert routes <= set(SPEC["paths"]), routes - set(SPEC["paths"])
    assert set(SPEC["paths"]) - routes == {"/healthz", "/metrics", "/api/v1/status"}


async def test_reads_answer_as_documented(cmap: CompiledMap) -> None:
    async with web_rig(cmap) as rig, aiohttp.ClientSession() as s:
        api = rig.base + "/api/v1"
        status, _, body = await _get(s, f"{api}/openapi.json")
        assert status == 200 and body == SPEC
        status, _, body = await _get(s, f"{api}/devices")
        check("/api/v1/devices", "get", status, body)
        assert {(d["type"], d["instance"]) for d in body["devices"]} >= {
            ("vebus", 276),
            ("battery", 512),
            ("system", 0),
        }
        for name in ("battery", "com.victronenergy.battery"):
            status, _, body = await _get(s, f"{api}/devices/{name}/512")
            check("/api/v1/devices/{service}/{instance}", "get", status, body)
            assert body["values"]["/Soc"]["value"] == rig.store.get("battery", 512, "/Soc")
        status, _, body = await _get(s, f"{api}/devices/battery/512/Dc/0/Voltage")
        check("/api/v1/devices/{service}/{instance}/{path}", "get", status, body)
        assert body["value"] == rig.store.get("battery", 512, "/Dc/0/Voltage")

        status, _, body = await _get(s, f"{api}/values?service=com.victronenergy.battery&instance=512&path=/Soc")
        check("/api/v1/values", "get", status, body)
        assert [(v["type"], v["instance"], v["path"], v["value"]) for v in body["values"]] == [
            ("battery", 512, "/Soc", rig.store.get("battery", 512, "/Soc"))
        ]
        status, _, body = await _get(s, f"{api}/values?path=/Soc")
        assert {(v["type"], v["instance"]) for v in body["values"]} == {("battery", 512), ("vebus", 276)}
        status, _, body = await _get(s, f"{api}/values")
        check("/api/v1/values", "get", status, body)
        assert len(body["values"]) == sum(len(d.values) for d in rig.store.devices())
        # an invalid value is null, never 0
        rig.store.publish("battery", 512, {"/Dc/0/Temperature": None})
        status, _, body = await _get(s, f"{api}/values?service=battery&path=/Dc/0/Temperature")
        assert body["values"][0]["value"] is None and body["values"][0]["valid"] is False

        status, _, body = await _get(s, f"{api}/registers")
        check("/api/v1/registers", "get", status, body)
        assert {
            "service": "com.victronenergy.vebus",
            "path": "/Mode",
            "register": 33,
            "type": "uint16",
            "scale": 1,
            "writable": True,
            "unit": "",
        } in body["registers"]
        assert body["unit_ids"]["227"] == 276
        status, ctype, text = await _get(s, f"{api}/registers?format=csv")
        assert status == 200 and ctype == "text/csv"
        check("/api/v1/registers", "get", status, text, "text/csv")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert {
            "service": "com.victronenergy.vebus",
            "path": "/Mode",
            "register": "33",
            "type": "uint16",
            "scale": "1",
            "access": "W",
            "unit": "1=Charger Only;2=Inverter Only;3=On;4=Off",
        } in rows

        status, _, body = await _get(s, f"{api}/paths?service=vebus,battery")
        check("/api/v1/paths", "get", status, body)
        assert body["services"]["vebus"]["/Mode"]["labels"]["4"] == "Off"
        assert body["services"]["vebus"]["/Ac/ActiveIn/CurrentLimit"] == {
            "unit": "A",
            "writable": True,
            "text": False,
            "minimum": 0,
            "maximum": 100,
        }

        status, ctype, text = await _get(s, rig.base + "/")
        assert status == 200 and ctype == "text/html" and '<meta charset="utf-8">' in text[:1024]
        check("/", "get", status, text, "text/html")
        status, ctype, text = await _get(s, rig.base + "/upnp/description.xml")
        assert (
            status == 200
            and "urn:schemas-upnp-org:device:Basic:1" in text
            and "<presentationURL>/</presentationURL>" in text
        )
        check("/upnp/description.xml", "get", status, text, "text/xml")


async def test_bad_reads_are_json_errors_as_documented(cmap: CompiledMap) -> None:
    async with web_rig(cmap) as rig, aiohttp.ClientSession() as s:
        api = rig.base + "/api/v1"
        cases = [
            (f"{api}/devices/battery/7", "/api/v1/devices/{service}/{instance}", 404, "no device battery instance 7"),
            (f"{api}/devices/nosuch/1", "/api/v1/devices/{service}/{instance}", 404, "no device nosuch"),
            (f"{api}/devices/battery/x", "/api/v1/devices/{service}/{instance}", 404, "is not a number"),
            (
                f"{api}/devices/battery/512/Nope",
                "/api/v1/devices/{service}/{instance}/{path}",
                404,
                "has no path /Nope",
            ),
            (f"{api}/values?service=nosuch", "/api/v1/values", 404, "no device nosuch"),
            (f"{api}/values?instance=x", "/api/v1/values", 400, "is not a number"),
            (f"{api}/values?path=/Nope", "/api/v1/values", 404, "no device has a value at /Nope"),
            (f"{api}/registers?format=xml", "/api/v1/registers", 400, "expected json or csv"),
            (f"{api}/paths?service=nosuch", "/api/v1/paths", 404, "unknown service type nosuch"),
        ]
        for url, template, status, fragment in cases:
            got, _, body = await _get(s, url)
            assert got == status, (url, got, body)
            check(template, "get", got, body)
            assert fragment in body["error"], (url, body)
        got, _, body = await _get(s, f"{api}/nothing")
        assert got == 404 and "error" in body


async def _write(
    s: aiohttp.ClientSession,
    url: str,
    body: Any = None,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"headers": headers or {}}
    if data is not None:
        kwargs["data"] = data
    else:
        kwargs["json"] = body
    async with s.post(url, **kwargs) as r:
        return r.status, await r.json()


async def test_writes_go_through_the_gate_and_refusals_change_nothing(cmap: CompiledMap) -> None:
    async with web_rig(cmap) as rig, aiohttp.ClientSession() as s:
        url = rig.base + "/api/v1/write"
        status, body = await _write(
            s, url, {"service": "com.victronenergy.vebus", "instance": 276, "path": "/Mode", "value": 4}
        )
        check("/api/v1/write", "post", status, body)
        assert status == 200 and body["value"] == 4
        assert rig.store.get("vebus", 276, "/Mode") == 4 and rig.store.get("vebus", 276, "/State") == 0
        assert rig.gate.accepted == 1

        before = {d.key: {p: v.value for p, v in d.values.items()} for d in rig.store.devices()}
        bad: list[tuple[Any, int, str]] = [
            (
                {"service": "vebus", "instance": 276, "path": "/Ac/ActiveIn/CurrentLimit", "value": 500},
                422,
                "above the maximum 100",
            ),
            ({"service": "vebus", "instance": 276, "path": "/Mode", "value": 7}, 422, "is not one of"),
            ({"service": "battery", "instance": 512, "path": "/Soc", "value": 50}, 422, "read-only"),
            ({"service": "vebus", "instance": 276, "path": "/Nope", "value": 1}, 404, "has no path /Nope"),
            ({"service": "vebus", "instance": 999, "path": "/Mode", "value": 3}, 404, "no device vebus instance 999"),
            ({"service": "vebus", "instance": 276, "path": "/Mode"}, 400, "missing value"),
            ({"service": "vebus", "instance": "276", "path": "/Mode", "value": 3}, 400, "instance must be an integer"),
            ({"service": "vebus", "instance": 276, "path": "/Mode", "value": True}, 400, "a number or a string"),
            (
                {"service": "vebus", "instance": 276, "path": "/Mode", "value": 3, "extra": 1},
                400,
                "unknown field extra",
            ),
            ([1, 2], 400, "expected a JSON object"),
        ]
        for payload, want, fragment in bad:
            status, body = await _write(s, url, payload)
            assert status == want, (payload, status, body)
            check("/api/v1/write", "post", status, body)
            assert fragment in body["error"], (payload, body)
        json_headers = {"Content-Type": "application/json"}
        for data, headers, want, fragment in (
            (b'{"service": ', json_headers, 400, "malformed JSON"),
            (b"x" * 5000, json_headers, 413, "at most 4096"),
            (
                b'{"service": "vebus", "instance": 276, "path": "/Mode", "value": 3}',
                {"Content-Type": "text/plain"},
                415,
                "application/json",
            ),
        ):
            status, body = await _write(s, url, data=data, headers=headers)
            assert status == want, (data[:20], status, body)
            check("/api/v1/write", "post", status, body)
            assert fragment in body["error"]
        after = {d.key: {p: v.value for p, v in d.values.items()} for d in rig.store.devices()}
        assert after == before
        assert rig.gate.accepted == 1


async def test_write_guards_token_allow_list_and_switch(cmap: CompiledMap) -> None:
    mode = {"service": "vebus", "instance": 276, "path": "/Mode", "value": 4}
    async with web_rig(cmap, writes=False) as rig, aiohttp.ClientSession() as s:
        status, body = await _write(s, rig.base + "/api/v1/write", mode)
        check("/api/v1/write", "post", status, body)
        assert status == 403 and "switched off" in body["error"] and rig.store.get("vebus", 276, "/Mode") == 3
    async with web_rig(cmap, token="s3cret") as rig, aiohttp.ClientSession() as s:
        url = rig.base + "/api/v1/write"
        for headers, why in (({}, "got no token"), ({"Authorization": "Bearer wrong"}, "got a wrong token")):
            async with s.post(url, json=mode, headers=headers) as r:
                body = await r.json()
                assert r.status == 401 and why in body["error"] and r.headers["WWW-Authenticate"] == "Bearer"
                check("/api/v1/write", "post", r.status, body)
        assert rig.store.get("vebus", 276, "/Mode") == 3
        status, body = await _write(s, url, mode, headers={"Authorization": "Bearer s3cret"})
        assert status == 200 and rig.store.get("vebus", 276, "/Mode") == 4
    async with web_rig(cmap, allow=["10.0.0.0/8"]) as rig, aiohttp.ClientSession() as s:
        status, body = await _write(s, rig.base + "/api/v1/write", mode)
        check("/api/v1/write", "post", status, body)
        assert status == 403 and "allow list" in body["error"] and rig.store.get("vebus", 276, "/Mode") == 3
        status, _, body = await _get(s, rig.base + "/api/v1/devices/vebus/276/Mode")
        assert status == 200 and body["value"] == 3  # reading stays open
    async with web_rig(cmap, allow=["127.0.0.0/8"]) as rig, aiohttp.ClientSession() as s:
        status, body = await _write(s, rig.base + "/api/v1/write", mode)
        assert status == 200 and rig.store.get("vebus", 276, "/Mode") == 4
