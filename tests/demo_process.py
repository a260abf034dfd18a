"""`gx-gateway demo` as a child process on ephemeral loopback ports, for the operations tests.

The banner says where it listens; stderr is collected (the log lines) and returned at stop.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

GX = (sys.executable, "-m", "gateway.cli")


class DemoProcess:
    def __init__(
        self,
        *extra: str,
        command: Sequence[str] = GX,
        cwd: str | None = None,
        env: Any = None,
        demo_options: Sequence[str] = (),
    ) -> None:
        """``extra``: options before the command name (e.g. ``--log-format json``);
        ``demo_options``: options of ``demo`` itself (e.g. ``--mqtt-listen HOST:PORT``)."""
        self.proc = subprocess.Popen(
            [*command, *extra, "demo", "--modbus", "127.0.0.1:0", "--http", "127.0.0.1:0", *demo_options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=env,
        )
        self.stderr: list[str] = []
        assert self.proc.stderr is not None
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()
        banner = ""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        while "Ctrl-C" not in banner and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            banner += line
        m = re.search(r"Modbus-TCP\s+127\.0\.0\.1:(\d+)", banner)
        h = re.search(r"http://127\.0\.0\.1:(\d+)/api/v1/devices", banner)
        if not (m and h):
            self.stop()
            raise AssertionError(f"the demo did not start:\n{banner}\n{''.join(self.stderr)}")
        self.banner = banner
        self.port = int(m.group(1))
        self.url = f"http://127.0.0.1:{h.group(1)}"

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, path: str) -> Any:
        status, body = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit status and everything it wrote to stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(5)
        self._drain.join(5)
        return rc, "".join(self.stderr)
