"""A small JSON-over-HTTP client for the CLI commands that ask a running gateway.

Standard library only (urllib): ``status --health`` runs as a container health check every
few seconds and should start quickly. Every failure becomes one ``ApiError`` line.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Final

DEFAULT_URL: Final = "http://127.0.0.1:8088"


class ApiError(Exception):
    """The gateway could not be asked (one line saying why)."""


def base_url(url: str | None, host: str | None = None, port: int | None = None) -> str:
    """The API's base URL from ``--url`` or ``--host``/``--port`` (default: the demo's address)."""
    if url is None and host is not None:
        url = f"http://{host}:{port if port is not None else 8088}"
    url = (url or DEFAULT_URL).rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(f"--url: expected http://HOST:PORT, got {url!r}")
    return url


def get_json(base: str, path: str, timeout: float = 5.0, accept_status: tuple[int, ...] = ()) -> Any:
    """GET ``base + path`` as JSON; statuses in ``accept_status`` return their body too."""
    url = base + path
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:
        if e.code in accept_status:
            return json.load(e)
        raise ApiError(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        reason = e.reason.strerror if isinstance(e.reason, OSError) and e.reason.strerror else e.reason
        raise ApiError(f"cannot reach the gateway at {base}: {reason}") from None
    except (OSError, ValueError) as e:  # timeouts, resets, a body that is not JSON
        raise ApiError(f"{url}: {e}") from None
