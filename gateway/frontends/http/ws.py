"""``GET /ws``: a snapshot of every value on connect, then every change, to each client.

No subscribe message is needed. A client may send ``{"filter": {"services": [...], "paths":
[...]}}`` (either list optional; ``{"filter": null}`` clears it) and gets a new snapshot of
what passes. Messages (docs/api.md)::

    {"type": "snapshot", "time": 1700000000.1, "values": {"battery/512": {"/Soc": 81.5, ...}}}
    {"type": "changes", "time": 1700000001.1, "values": {"battery/512": {"/Soc": 81.4}}, "removed": []}

``null`` is an invalid value. ``time`` is when the Store saw the oldest change in the message.

Fan-out: Store listeners collect the changes of one loop iteration into one batch, flushed
with ``call_soon``. Each client has one pending map ``device -> path -> latest value``; a batch
is merged into it, so a client that is slower than the changes skips intermediate values and
its backlog can never exceed one entry per path. A client with no filter and nothing pending
shares the batch and its JSON text with every other such client (encoded once). One task per
client sends; a send that cannot complete within ``send_timeout_s`` (the client stopped
reading and the socket buffers are full) drops that client. Nobody else waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from aiohttp import WSMsgType, web

from gateway.core.components import cancel_and_wait
from gateway.core.store import Device, Store
from gateway.frontends.http.common import short
from registers.values import Scalar

log = logging.getLogger(__name__)

Values = dict[str, Scalar]
Batch = dict[str, Values | None]  # "battery/512" -> changed paths, or None = the device went away
MAX_CLIENT_MESSAGE: Final = 16 * 1024
MAX_OUTBOX: Final = 4  # unanswered filter messages before a client is closed


def device_key(device: Device) -> str:
    return f"{device.service}/{device.instance}"


def _current(device: Device) -> Values:
    return {p: (v.value if v.valid else None) for p, v in device.values.items()}


def merge(into: Batch, batch: Batch) -> None:
    for key, values in batch.items():
        if values is None:
            into[key] = None
        else:
            mine = into.get(key)
            if mine is None:
                into[key] = dict(values)
            else:
                mine.update(values)


def encode(kind: str, at: float, batch: Batch) -> str:
    body: dict[str, Any] = {"type": kind, "time": round(at, 6)}
    body["values"] = {k: v for k, v in batch.items() if v is not None}
    if kind == "changes":
        body["removed"] = [k for k, v in batch.items() if v is None]
    return json.dumps(body, separators=(",", ":"), allow_nan=False)


class Filter:
    """Which devices and paths a client wants; ``None`` lists mean everything."""

    def __init__(self, services: Iterable[str] | None, paths: Iterable[str] | None) -> None:
        self.services = None if services is None else frozenset(short(s) for s in services)
        self.paths = None if paths is None else frozenset(paths)

    def narrow(self, batch: Batch) -> Batch:
        out: Batch = {}
        for key, values in batch.items():
            if self.services is not None and key.partition("/")[0] not in self.services:
                continue
            if values is None or self.paths is None:
                out[key] = values
            else:
                picked = {p: v for p, v in values.items() if p in self.paths}
                if picked:
                    out[key] = picked
        return out


def parse_filter(text: str) -> Filter | None:
    """The filter a client sent; ValueError with a message when it is not one."""
    msg = json.loads(text)
    if not isinstance(msg, dict) or "filter" not in msg:
        raise ValueError('expected {"filter": {"services": [...], "paths": [...]}} or {"filter": null}')
    f = msg["filter"]
    if f is None:
        return None
    if not isinstance(f, dict) or set(f) - {"services", "paths"}:
        raise ValueError("a filter has services and/or paths, each a list of strings")
    lists = [f.get("services"), f.get("paths")]
    for items in lists:
        if items is not None and (not isinstance(items, list) or not all(isinstance(s, str) for s in items)):
            raise ValueError("services and paths must be lists of strings")
    return Filter(lists[0], lists[1])


class Client:
    __slots__ = ("at", "filter", "outbox", "pending", "shared", "wake", "ws")

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.filter: Filter | None = None
        self.pending: Batch = {}
        self.shared = False  # pending IS the hub's current batch (not to be modified)
        self.at = 0.0
        self.outbox: list[str] = []  # snapshots and error replies, sent before any pending change
        self.wake = asyncio.Event()

    def reply(self, text: str) -> None:
        self.outbox.append(text)
        self.wake.set()

    def offer(self, batch: Batch, at: float) -> None:
        if self.filter is not None:
            batch = self.filter.narrow(batch)
            if not batch:
                return
        elif not self.pending:
            self.pending, self.shared, self.at = batch, True, at
            self.wake.set()
            return
        if self.shared:
            self.pending, self.shared = {k: (None if v is None else dict(v)) for k, v in self.pending.items()}, False
        if not self.pending:
            self.at = at
        merge(self.pending, batch)
        self.wake.set()

    def take(self) -> tuple[Batch, bool, float]:
        out = (self.pending, self.shared, self.at)
        self.pending, self.shared = {}, False
        return out


class WebSocketHub:
    """Store listener + the set of connected clients."""

    def __init__(self, store: Store, send_timeout_s: float = 5.0) -> None:
        self.store = store
        self.send_timeout_s = send_timeout_s
        self.clients: set[Client] = set()
        self.dropped = 0  # clients dropped for not reading (diagnostics, tests)
        self._batch: Batch = {}
        self._batch_at = 0.0
        self._shared: tuple[Batch, str] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._scheduled = False

    def start(self) -> None:
        self._unsubscribe = self.store.subscribe(self)
        self._batch.clear()  # devices already there are in every snapshot

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for c in list(self.clients):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await c.ws.close(code=1001, message=b"gateway stopping")

    # --- Store listener ---------------------------------------------------------------------
    def device_added(self, device: Device) -> None:
        self._add(device_key(device), _current(device))

    def device_removed(self, device: Device) -> None:
        if not self._batch:
            self._batch_at = time.time()
        self._batch[device_key(device)] = None
        self._schedule()

    def values_changed(self, device: Device, paths: Iterable[str]) -> None:
        values = device.values
        self._add(device_key(device), {p: (values[p].value if values[p].valid else None) for p in paths})

    def _add(self, key: str, values: Values) -> None:
        if not self.clients:
            return
        if not self._batch:
            self._batch_at = time.time()
        mine = self._batch.get(key)
        if mine is None:
            self._batch[key] = values
        else:
            mine.update(values)
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._batch = self._batch, {}
        if batch:
            for c in self.clients:
                c.offer(batch, self._batch_at)

    def shared_text(self, batch: Batch, at: float) -> str:
        if self._shared is None or self._shared[0] is not batch:
            self._shared = (batch, encode("changes", at, batch))
        return self._shared[1]

    # --- one client -------------------------------------------------------------------------
    def snapshot(self, f: Filter | None) -> str:
        batch: Batch = {device_key(d): _current(d) for d in self.store.devices()}
        return encode("snapshot", time.time(), f.narrow(batch) if f is not None else batch)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_CLIENT_MESSAGE)
        await ws.prepare(request)
        client = Client(ws)
        self.clients.add(client)  # every change from now on comes after this snapshot
        client.reply(self.snapshot(None))
        sender = asyncio.create_task(self._send_loop(client, request))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                if len(client.outbox) >= MAX_OUTBOX:
                    break  # asks faster than it reads
                try:
                    f = parse_filter(msg.data)
                except ValueError as e:
                    client.reply(json.dumps({"type": "error", "error": str(e)}))
                    continue
                client.filter, client.pending, client.shared = f, {}, False
                client.reply(self.snapshot(f))
        finally:
            self.clients.discard(client)
            await cancel_and_wait(sender)
        return ws

    async def _send_loop(self, client: Client, request: web.Request) -> None:
        while not client.ws.closed:
            await client.wake.wait()
            client.wake.clear()
            while client.outbox:
                if not await self._send(client, request, client.outbox.pop(0)):
                    return
            batch, shared, at = client.take()
            text = self.shared_text(batch, at) if shared else encode("changes", at, batch)
            if batch and not await self._send(client, request, text):
                return

    async def _send(self, client: Client, request: web.Request, text: str) -> bool:
        """Send one message; False when the client is gone or was dropped for not reading."""
        try:
            async with asyncio.timeout(self.send_timeout_s):
                await client.ws.send_str(text)
        except TimeoutError:
            self.dropped += 1
            self.clients.discard(client)
            log.info("websocket client %s stopped reading; dropped", request.remote)
            if request.transport is not None:
                request.transport.abort()
            return False
        except ConnectionError:
            self.clients.discard(client)
            return False
        return True
