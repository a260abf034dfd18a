"""Discovery on loopback only: the Navico announcement, an SSDP search, an mDNS lookup.

Each receiver joins the multicast group on 127.0.0.1, and the gateway sends with
IP_MULTICAST_IF 127.0.0.1 (multicast loop on), so nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import json
import socket

import aiohttp

from gateway.frontends.http.discovery import NAVICO_GROUP, Discovery, NavicoAnnouncer
from registers import CompiledMap
from tests.web.rig import web_rig

NAVICO_FIELDS = {"Version", "Source", "IP", "FeatureName", "Text", "Icon", "URL", "OnlyShowOnClientIP", "BrowserPanel"}


def _member(group: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((group, port))  # only datagrams sent to the group
    sock.setsockopt(
        socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton("127.0.0.1")
    )
    sock.setblocking(False)
    return sock


async def test_navico_announcement_is_the_documented_json_to_the_group(cmap: CompiledMap) -> None:
    receiver = _member(*NAVICO_GROUP)
    loop = asyncio.get_running_loop()
    async with web_rig(cmap) as rig, aiohttp.ClientSession() as s:
        port = rig.http.sockets[0][1]
        announcer = NavicoAnnouncer(["127.0.0.1"], "Boat energy", lambda: port, interval_s=0.2)
        await announcer.start()
        try:
            messages = []
            deadline = loop.time() + 5.0
            while len(messages) < 2:  # the first at start, the next one an interval later
                data = await asyncio.wait_for(loop.sock_recv(receiver, 4096), max(0.1, deadline - loop.time()))
                msg = json.loads(data)
                if msg.get("URL") == f"http://127.0.0.1:{port}/":  # ours: a demo on this host announces too
                    messages.append(msg)
        finally:
            await announcer.stop()
            receiver.close()
        for msg in messages:
            assert set(msg) == NAVICO_FIELDS
            assert msg["Version"] == "1" and msg["IP"] == "127.0.0.1" and msg["FeatureName"] == "Boat energy"
            assert msg["URL"] == f"http://127.0.0.1:{port}/"
            assert msg["Text"][0]["Language"] == "en" and msg["Text"][0]["Name"] == "Boat energy"
            assert msg["BrowserPanel"]["Enable"] is True
        async with s.get(messages[0]["URL"]) as r:  # the announced URL serves the app
            assert r.status == 200 and "<title>" in await r.text()
        async with s.get(messages[0]["Icon"]) as r:
            assert r.status == 200 and (await r.read()).startswith(b"\x89PNG")


async def test_ssdp_search_and_mdns_lookup_find_the_app(cmap: CompiledMap) -> None:
    from zeroconf import ServiceInfo
    from zeroconf.asyncio import AsyncZeroconf

    async with web_rig(cmap, name="Boat energy", serial="abc123") as rig, aiohttp.ClientSession() as s:
        port = rig.http.sockets[0][1]
        discovery = Discovery("Boat energy", lambda: port, lambda: "abc123", ssdp=["127.0.0.1"], mdns=["127.0.0.1"])
        await discovery.start()
        try:
            # SSDP: an M-SEARCH to the group from 127.0.0.1 gets a unicast answer with LOCATION
            search = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            search.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
            search.bind(("127.0.0.1", 0))
            search.setblocking(False)
            msearch = (
                'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\n'
                "ST: urn:schemas-upnp-org:device:Basic:1\r\n\r\n"
            )
            loop = asyncio.get_running_loop()
            reply = ""
            for _ in range(10):  # UDP may be lost (a busy machine, the group joined late): ask again, bounded
                search.sendto(msearch.encode(), ("239.255.255.250", 1900))
                try:
                    reply = (await asyncio.wait_for(loop.sock_recv(search, 4096), 1.0)).decode()
                except TimeoutError:
                    continue
                if f"127.0.0.1:{port}/" in reply:
                    break  # ours (another SSDP server on this host may answer too)
            search.close()
            headers = {
                k.strip().upper(): v.strip()
                for k, _, v in (line.partition(":") for line in reply.split("\r\n")[1:])
                if k
            }
            assert reply.startswith("HTTP/1.1 200 OK")
            assert headers["ST"] == "urn:schemas-upnp-org:device:Basic:1"
            assert headers["LOCATION"] == f"http://127.0.0.1:{port}/upnp/description.xml"
            async with s.get(headers["LOCATION"]) as r:
                xml = await r.text()
            assert "<friendlyName>Boat energy</friendlyName>" in xml and "<presentationURL>/</presentationURL>" in xml
            assert f"<UDN>{headers['USN'].split('::')[0]}</UDN>" in xml  # the same device in both

            # mDNS: a zeroconf client on loopback resolves the _http._tcp service
            client = AsyncZeroconf(interfaces=["127.0.0.1"])
            try:
                info = ServiceInfo("_http._tcp.local.", "Boat energy (127.0.0.1)._http._tcp.local.")
                assert await info.async_request(client.zeroconf, 6000)
                assert info.port == port and info.parsed_addresses() == ["127.0.0.1"]
                assert info.properties[b"path"] == b"/"
            finally:
                await client.async_close()
        finally:
            await discovery.stop()
