"""The link to a broker: aiomqtt, reconnecting with back-off, fed from the Outbox.

aiomqtt (>=2.5,<3) is a maintained asyncio wrapper around paho-mqtt, the Eclipse client most
brokers and Home Assistant's own library are tested with: the protocol stays paho's, and the
loop integration (no thread, no callbacks into the Store from another thread) is aiomqtt's.
It speaks MQTT 5 (Mosquitto, FlashMQ, EMQX, VerneMQ, HiveMQ do), for retain-as-published.

While the broker is away the Outbox keeps the latest value of each topic (bounded), so the
Store never waits and nothing of the current state is lost; after a reconnect the retained
serial is published again and the next keep-alive brings every value.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import aiomqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.core.loglimit import Throttle
from gateway.frontends.mqtt.outbox import Outbox
from gateway.frontends.mqtt.venus import Venus

log = logging.getLogger(__name__)

BACKOFF_S: Final = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# Messages handed to paho before waiting for the socket; small, as aiomqtt scans its pending
# calls on every publish.
BATCH: Final = 64


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parsed = urlsplit(url)
        tls = parsed.scheme == "mqtts"
        return cls(parsed.hostname or "127.0.0.1", parsed.port or (8883 if tls else 1883), tls)

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Credentials:
    client_id: str
    username: str = ""
    password: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


class Connection:
    def __init__(self, address: BrokerAddress, credentials: Credentials, venus: Venus, outbox: Outbox) -> None:
        self.address = address
        self.credentials = credentials
        self.venus = venus
        self.outbox = outbox
        self.connected = False
        self.connects = 0
        self.last_error: str | None = None
        self.since: float | None = None  # wall clock of the last connect or disconnect
        self.throttle = Throttle(log)
        self._task: asyncio.Task[None] | None = None
        self._tls: ssl.SSLContext | None = None

    def start(self) -> None:
        """Check the TLS files now (a bad path is a start-up error), then connect in the background."""
        if self.address.tls:
            c = self.credentials
            self._tls = ssl.create_default_context(cafile=c.ca_file or None)
            if c.cert_file:
                self._tls.load_cert_chain(c.cert_file, c.key_file or None)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt-connection")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError as e:
                self.last_error = str(e)
            except OSError as e:  # refused before MQTT even started
                self.last_error = e.strerror or str(e)
            if self.connected:
                failures = 0
                log.warning("MQTT: lost %s (%s); reconnecting", self.address, self.last_error)
            self.connected = False
            self.since = time.time()
            delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
            failures += 1
            self.throttle.log(
                "connect", logging.WARNING, "MQTT: cannot reach %s (%s); retrying", self.address, self.last_error
            )
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        c = self.credentials
        async with aiomqtt.Client(
            self.address.host,
            self.address.port,
            identifier=c.client_id,
            username=c.username or None,
            password=c.password or None,
            tls_context=self._tls,
            keepalive=30,
            timeout=10,
            protocol=aiomqtt.ProtocolVersion.V5,
        ) as client:
            client.pending_calls_threshold = 2 * BATCH  # we batch on purpose: no warning per batch
            # MQTT 5's retain-as-published tells a retained W/ from a live one (Venus ignores
            # retained writes); no-local keeps our own N/ out of our R/ and W/ trees.
            options = SubscribeOptions(noLocal=True, retainAsPublished=True)
            for topic in self.venus.topics.subscriptions():
                await client.subscribe(topic, options=options)
            # "connected" means subscribed too: a keep-alive sent from now on is heard
            self.connected, self.since, self.last_error = True, time.time(), None
            self.connects += 1
            log.info("MQTT: connected to %s as %s", self.address, c.client_id)
            self.venus.connected()  # a restarted broker lost the retained topics
            loop = asyncio.get_running_loop()
            tasks = {loop.create_task(self._receive(client)), loop.create_task(self._send(client))}
            try:  # whichever ends first (the broker went) ends the session
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                task.result()

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            self.venus.handle(message.topic.value, payload, bool(message.retain))
        raise aiomqtt.MqttError("the broker closed the connection")

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            await self.outbox.wait()
            batch = self.outbox.take(BATCH)
            try:
                await asyncio.gather(*(client.publish(m.topic, m.payload, retain=m.retain) for m in batch))
            except BaseException:
                self.outbox.give_back(batch)
                raise
            self.outbox.sent += len(batch)
