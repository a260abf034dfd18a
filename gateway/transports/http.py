"""HTTP client transport: one aiohttp session per user, GETs with a total timeout.

Why a wrapper: every HTTP driver (the Fronius Solar API today) and the network scan need the
same three things — a session opened when the first device starts (a gateway without an HTTP
device never imports aiohttp: tests/unit/test_lazy_imports.py), a per-request timeout, and a
failure as one line (``HttpError``) instead of aiohttp's exception tree. ``limit_per_host=1``
by default: a Fronius datamanager answers one request at a time.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a session opens
    import aiohttp


class HttpError(Exception):
    """A request that got no answer (refused, reset, bad HTTP): ``reason`` says why in one line."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason = url, reason


class HttpClient:
    def __init__(self, limit_per_host: int = 1) -> None:  # 0 = no limit
        self.limit_per_host = limit_per_host
        self.session: aiohttp.ClientSession | None = None
        self.requests = 0

    async def open(self) -> None:
        import aiohttp

        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit_per_host=self.limit_per_host))

    async def get(self, url: str, timeout_s: float) -> tuple[int, bytes]:
        """(HTTP status, body). Raises TimeoutError after ``timeout_s``, HttpError on a failure."""
        import aiohttp  # loaded since the session was made: a dict lookup

        if self.session is None:
            await self.open()
        assert self.session is not None
        self.requests += 1
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
                return r.status, await r.read()
        except TimeoutError:  # aiohttp's ServerTimeoutError is both: a timeout, as callers count it
            raise
        except aiohttp.ClientError as e:
            raise HttpError(url.split("?")[0], str(e) or type(e).__name__) from None

    async def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.close()
            await asyncio.sleep(0)  # let the connector's transports close before the loop goes on
