"""How plotters and browsers find the app: the Navico announcement, SSDP/UPnP and mDNS.

Each is off until ``[discovery]`` lists the interface addresses to announce on: announcing
on every interface made Navico plotters reload the app endlessly, and a gateway with a
leg on a shore or cell network should stay quiet there. The announced URL is
``http://<interface address>:<HTTP port>/``, with the port the HTTP server actually bound.

- Navico (B&G, Simrad, Lowrance): a JSON datagram to 239.2.1.1:2053 every 10 s.
- SSDP/UPnP (async-upnp-client): a ``urn:schemas-upnp-org:device:Basic:1`` root device whose
  presentationURL is the app; its description is served at ``/upnp/description.xml``.
- mDNS (zeroconf): an ``_http._tcp`` service with ``path=/``.

A discovery that cannot start (the port is taken by a daemon that does not share it, no
multicast route) is logged in one line and the gateway runs on: it is a convenience, the
URL still works when typed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any, Final

from gateway.core.components import cancel_and_wait
from gateway.frontends.http.ssdp import SsdpAnnouncer

log = logging.getLogger(__name__)

NAVICO_GROUP: Final = ("239.2.1.1", 2053)
NAVICO_INTERVAL_S: Final = 10.0


def navico_announcement(name: str, address: str, port: int) -> dict[str, Any]:
    """The Navico MFD announcement for the app at ``http://address:port/``."""
    base = f"http://{address}:{port}"
    return {
        "Version": "1",
        "Source": name,
        "IP": address,
        "FeatureName": name,
        "Text": [{"Language": "en", "Name": name, "Description": "Batteries, solar, AC power and tanks"}],
        "Icon": f"{base}/static/icon.png",
        "URL": f"{base}/",
        "OnlyShowOnClientIP": "false",
        "BrowserPanel": {"Enable": True, "ProgressBarEnable": True, "MenuText": [{"Language": "en", "Name": name}]},
    }


def multicast_sender(interface: str) -> socket.socket:
    """A UDP socket whose multicast leaves by ``interface`` only (TTL 1: the local network)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)  # a plotter app on this host too
    except OSError:
        sock.close()
        raise
    return sock


class NavicoAnnouncer:
    """Sends the announcement on each listed interface now and every ``interval_s``."""

    def __init__(
        self,
        interfaces: Sequence[str],
        name: str,
        port: Callable[[], int],
        interval_s: float = NAVICO_INTERVAL_S,
        group: tuple[str, int] = NAVICO_GROUP,
    ) -> None:
        self.interfaces = tuple(interfaces)
        self.name = name
        self.port = port
        self.interval_s = interval_s
        self.group = group
        self.sent = 0
        self._socks: list[tuple[str, socket.socket]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for interface in self.interfaces:
            try:
                self._socks.append((interface, multicast_sender(interface)))
            except OSError as e:
                log.warning("Navico announcement on %s: %s; not announcing there", interface, e.strerror or e)
        if self._socks:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            for interface, sock in self._socks:
                data = json.dumps(navico_announcement(self.name, interface, self.port())).encode()
                try:
                    sock.sendto(data, self.group)
                    self.sent += 1
                except OSError as e:  # no route for now (interface down): try again next time
                    log.debug("Navico announcement on %s: %s", interface, e)
            await asyncio.sleep(self.interval_s)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        for _, sock in self._socks:
            sock.close()
        self._socks.clear()


class MdnsAnnouncer:
    """An ``_http._tcp`` service per interface address, by zeroconf on those interfaces only."""

    def __init__(self, interfaces: Sequence[str], name: str, port: Callable[[], int]) -> None:
        self.interfaces = list(interfaces)
        self.name = name
        self.port = port
        self._zc: Any = None
        self.infos: list[Any] = []

    async def start(self) -> None:
        from zeroconf import ServiceInfo
        from zeroconf.asyncio import AsyncZeroconf

        host = socket.gethostname().split(".")[0] or "gx-gateway"
        try:
            self._zc = AsyncZeroconf(interfaces=self.interfaces)
            for address in self.interfaces:
                info = ServiceInfo(
                    "_http._tcp.local.",
                    f"{self.name} ({address})._http._tcp.local.",
                    addresses=[socket.inet_aton(address)],
                    port=self.port(),
                    properties={"path": "/"},
                    server=f"{host}-{address.replace('.', '-')}.local.",
                )
                await self._zc.async_register_service(info, allow_name_change=True)
                self.infos.append(info)
        except Exception as e:  # zeroconf raises its own and OS errors; neither stops the gateway
            log.warning("mDNS announcement on %s failed: %s", ", ".join(self.interfaces), e)
            await self.stop()

    async def stop(self) -> None:
        if self._zc is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self._zc.async_unregister_all_services()
            await self._zc.async_close()
            self._zc = None
        self.infos.clear()


class Discovery:
    """The announcements ``[discovery]`` asks for, started after the HTTP server (its port)."""

    def __init__(
        self,
        name: str,
        port: Callable[[], int],
        serial: Callable[[], str],
        *,
        navico: Sequence[str] = (),
        ssdp: Sequence[str] = (),
        mdns: Sequence[str] = (),
    ) -> None:
        self.parts: list[NavicoAnnouncer | SsdpAnnouncer | MdnsAnnouncer] = []
        if navico:
            self.parts.append(NavicoAnnouncer(navico, name, port))
        if ssdp:
            self.parts.append(SsdpAnnouncer(ssdp, name, port, serial))
        if mdns:
            self.parts.append(MdnsAnnouncer(mdns, name, port))

    async def start(self) -> None:
        for part in self.parts:
            await part.start()

    async def stop(self) -> None:
        for part in reversed(self.parts):
            await part.stop()
