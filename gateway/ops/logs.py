"""Logging: one line per event, as key=value text or JSON, to stderr (journald keeps stderr).

``--log-format text`` (the default) writes ``time=... level=info logger=... msg="..."``;
``--log-format json`` one JSON object per line. A traceback never spans lines: with an
unexpected error it is folded into the ``exc`` field. Expected conditions (a client that
resets its connection, a peer that went away) lose their traceback altogether: the message
says what happened. The last warnings and errors are kept in memory (``RECENT``) for
``gx-gateway status``.
"""

from __future__ import annotations

import collections
import json
import logging
import sys
import time
import traceback
from typing import Final, TextIO

LEVELS: Final = ("debug", "info", "warning", "error")
FORMATS: Final = ("text", "json")
# Exceptions that are a peer's doing, not a bug: logged without a traceback.
EXPECTED: Final = (ConnectionError, TimeoutError, BrokenPipeError)


def _timestamp(record: logging.LogRecord) -> str:
    t = time.gmtime(record.created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"


def _exception_text(record: logging.LogRecord) -> str | None:
    if not record.exc_info or record.exc_info[1] is None:
        return None
    kind, error, tb = record.exc_info
    if isinstance(error, EXPECTED):
        return f"{type(error).__name__}: {error}"
    lines = traceback.format_exception(kind, error, tb)
    return " | ".join(part.strip().replace("\n", " ") for part in lines if part.strip())


def _quote(value: str) -> str:
    if value and not any(c in value for c in ' "=\\\n\t'):
        return value
    return json.dumps(value, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time=2026-11-27T09:00:00.000Z level=info logger=gateway.app msg="..."`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        fields = [
            f"time={_timestamp(record)}",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_quote(record.getMessage())}",
        ]
        exc = _exception_text(record)
        if exc is not None:
            fields.append(f"exc={_quote(exc)}")
        return " ".join(fields)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, msg (and exc)."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, str] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        exc = _exception_text(record)
        if exc is not None:
            event["exc"] = exc
        return json.dumps(event, ensure_ascii=False)


class RecentProblems(logging.Handler):
    """Keeps the last warnings and errors (time, level, logger, message) for the status API."""

    def __init__(self, keep: int = 20) -> None:
        super().__init__(level=logging.WARNING)
        self.events: collections.deque[dict[str, str]] = collections.deque(maxlen=keep)

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(
            {
                "time": _timestamp(record),
                "level": record.levelname.lower(),
                "logger": record.name,
                "msg": record.getMessage(),
            }
        )


RECENT: Final = RecentProblems()


def setup_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Replace the root logger's handlers: one formatted stream handler and ``RECENT``."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.addHandler(RECENT)
    root.setLevel(level.upper())
