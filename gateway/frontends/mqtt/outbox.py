"""The outgoing queue: bounded, the latest value per topic wins, and ``put`` never blocks.

The Store calls the frontend inside ``publish`` (gateway/core/store.py), so handing a message
to a slow or absent broker must cost a dict update, nothing more. A topic already waiting
keeps its place and takes the new payload (a changing value is sent once, as it is now); a
new topic past the bound pushes out the oldest waiting one, which is counted as dropped. The
keep-alive's full publish puts ``full_publish_completed`` last, so it still comes last.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import NamedTuple


class Message(NamedTuple):
    topic: str
    payload: bytes
    retain: bool
    key: str  # what "the same topic" means: the topic, or the topic and an echo id


class Outbox:
    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self._waiting: OrderedDict[str, Message] = OrderedDict()
        self._ready = asyncio.Event()
        self.dropped = 0  # pushed out by the bound before they were sent
        self.replaced = 0  # superseded by a newer value of the same topic while waiting
        self.sent = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def put(self, topic: str, payload: bytes, retain: bool = False, key: str | None = None) -> None:
        key = topic if key is None else key
        if key in self._waiting:
            self.replaced += 1
        elif len(self._waiting) >= self.limit:
            self._waiting.popitem(last=False)
            self.dropped += 1
        self._waiting[key] = Message(topic, payload, retain, key)
        self._ready.set()

    def take(self, most: int = 512) -> list[Message]:
        """Up to ``most`` waiting messages, oldest first (none waiting: an empty list)."""
        batch: list[Message] = []
        while self._waiting and len(batch) < most:
            batch.append(self._waiting.popitem(last=False)[1])
        if not self._waiting:
            self._ready.clear()
        return batch

    def give_back(self, batch: list[Message]) -> None:
        """Messages that could not be sent (the connection broke): first in line again, unless
        a newer value of the same topic came meanwhile."""
        for message in reversed(batch):
            if message.key not in self._waiting:
                self._waiting[message.key] = message
                self._waiting.move_to_end(message.key, last=False)
        while len(self._waiting) > self.limit:
            self._waiting.popitem(last=False)
            self.dropped += 1
        if self._waiting:
            self._ready.set()

    async def wait(self) -> None:
        await self._ready.wait()
