"""SSDP/UPnP: the app as a ``urn:schemas-upnp-org:device:Basic:1`` root device (async-upnp-client).

The library answers M-SEARCH and sends NOTIFY alive/byebye; the device description it points
to (``LOCATION``) is served by our HTTP server at ``/upnp/description.xml``, built here from
the gateway's name and serial, so both say the same thing. The UDN is derived from the
serial, so a restart is the same device to a control point.
"""

from __future__ import annotations

import logging
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from typing import Any, Final

from async_upnp_client.const import DeviceInfo
from async_upnp_client.server import (
    NopRequester,
    SsdpAdvertisementAnnouncer,
    SsdpSearchResponder,
    UpnpServerDevice,
    UpnpXmlSerializer,
)

from gateway.frontends.http.common import DESCRIPTION_PATH

log = logging.getLogger(__name__)

DEVICE_TYPE: Final = "urn:schemas-upnp-org:device:Basic:1"
NAMESPACE: Final = uuid.UUID("5b0f8e36-6a53-4f2e-9d53-7c1f0b6d2a10")  # gx-gateway's own


def udn(serial: str) -> str:
    return f"uuid:{uuid.uuid5(NAMESPACE, serial)}"


def device_info(name: str, serial: str) -> DeviceInfo:
    return DeviceInfo(
        device_type=DEVICE_TYPE,
        friendly_name=name,
        manufacturer="gx-gateway",
        manufacturer_url=None,
        model_description="Energy system overview and controls for chart plotters",
        model_name="gx-gateway",
        model_number=None,
        model_url=None,
        serial_number=serial,
        udn=udn(serial),
        upc=None,
        presentation_url="/",
        url=DESCRIPTION_PATH,
        icons=[],
        xml=ET.Element("server_device"),
    )


def make_device(name: str, serial: str, base_uri: str) -> UpnpServerDevice:
    kind = type(
        "GatewayDevice",
        (UpnpServerDevice,),
        {"DEVICE_DEFINITION": device_info(name, serial), "EMBEDDED_DEVICES": [], "SERVICES": []},
    )
    device: UpnpServerDevice = kind(requester=NopRequester(), base_uri=base_uri)
    return device


def description_xml(name: str, serial: str, base_uri: str) -> str:
    """The device description a control point fetches from LOCATION."""
    root = UpnpXmlSerializer.to_xml(make_device(name, serial, base_uri))
    return '<?xml version="1.0"?>\n' + ET.tostring(root, encoding="unicode")


class SsdpAnnouncer:
    """One search responder and one announcer per interface address."""

    def __init__(
        self, interfaces: Sequence[str], name: str, port: Callable[[], int], serial: Callable[[], str]
    ) -> None:
        self.interfaces = tuple(interfaces)
        self.name = name
        self.port = port
        self.serial = serial
        self._running: list[Any] = []

    async def start(self) -> None:
        for address in self.interfaces:
            device = make_device(self.name, self.serial(), f"http://{address}:{self.port()}")
            try:
                for part in (
                    SsdpSearchResponder(device, source=(address, 0)),
                    SsdpAdvertisementAnnouncer(device, source=(address, 0)),
                ):
                    await part.async_start()
                    self._running.append(part)
            except Exception as e:  # OSError, UpnpError: log, and run on without SSDP there
                log.warning("SSDP on %s failed: %s; not announcing there", address, e)

    async def stop(self) -> None:
        for part in reversed(self._running):
            try:
                await part.async_stop()
            except Exception as e:  # a socket already gone: nothing left to stop
                log.debug("SSDP stop: %s", e)
        self._running.clear()
