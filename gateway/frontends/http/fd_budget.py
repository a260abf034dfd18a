"""The HTTP limits' settings and the file-descriptor budget, apart from the aiohttp machinery
that enforces them (gateway/frontends/http/limits.py): the gateway's guards set the budget at every
start, with or without ``[http]``, and a gateway without it never imports aiohttp.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass, replace
from typing import Any, Final

log = logging.getLogger("gateway.frontends.http.limits")  # the name its messages always had

NOFILE_TARGET: Final = 65536
RESERVED_FDS: Final = 64  # state files, logs, N2K, outgoing device connections


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_connections: int = 128
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    keepalive_timeout_s: float = 15.0
    max_header_bytes: int = 8190
    max_headers: int = 64
    max_body_bytes: int = 64 * 1024

    def server_options(self) -> dict[str, Any]:
        """What aiohttp's request handler takes itself (passed to ``web.AppRunner``)."""
        return {
            "max_line_size": self.max_header_bytes,
            "max_field_size": self.max_header_bytes,
            "max_headers": self.max_headers,
            "keepalive_timeout": self.keepalive_timeout_s,
        }


def raise_nofile() -> int:
    """Lift the soft file-descriptor limit towards the hard one; the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = NOFILE_TARGET if hard == resource.RLIM_INFINITY else min(hard, NOFILE_TARGET)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, e)
    return int(soft)


def http_budget(limits: HttpLimits, nofile: int, modbus_connections: int) -> HttpLimits:
    """``limits`` with max_connections cut so HTTP never takes Modbus's descriptors."""
    room = nofile - modbus_connections - RESERVED_FDS
    cap = max(8, min(limits.max_connections, room // 2))
    if cap < limits.max_connections:
        log.warning("open-file limit %d: HTTP limited to %d connections to keep Modbus's share", nofile, cap)
    return replace(limits, max_connections=cap)
