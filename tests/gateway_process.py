"""``gx-gateway run`` as a separate process on loopback, for tests that kill it or limit it."""

from __future__ import annotations

import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import ROOT

GX = Path(sys.executable).parent / "gx-gateway"
LISTENING = re.compile(r"(Modbus-TCP|HTTP) listening on [^:]+:(\d+)")


class GatewayProcess:
    def __init__(self, proc: subprocess.Popen[str], ports: dict[str, int]) -> None:
        self.proc = proc
        self.ports = ports

    @property
    def modbus(self) -> int:
        return self.ports["Modbus-TCP"]

    @property
    def http(self) -> int:
        return self.ports["HTTP"]


def write_config(folder: Path, extra: str = "", http: bool = True) -> Path:
    text = f'state_dir = "{folder / "state"}"\n[modbus]\nlisten = "127.0.0.1:0"\nwrites = true\n{extra}\n'
    if http:
        text += '[http]\nlisten = "127.0.0.1:0"\n'
    path = folder / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


@contextmanager
def gateway_process(config: Path, nofile: int | None = None, timeout_s: float = 15.0) -> Iterator[GatewayProcess]:
    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    proc = subprocess.Popen(
        [str(GX), "run", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit,
    )
    ports: dict[str, int] = {}
    want = {"Modbus-TCP"} | ({"HTTP"} if "[http]" in config.read_text() else set())
    deadline = time.monotonic() + timeout_s
    assert proc.stderr is not None
    try:
        while not want <= set(ports):
            line = proc.stderr.readline()
            if not line:
                raise AssertionError(f"gateway exited before listening (code {proc.wait()})")
            m = LISTENING.search(line)
            if m:
                ports[m.group(1)] = int(m.group(2))
            assert time.monotonic() < deadline, "gateway did not start in time"
        yield GatewayProcess(proc, ports)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        proc.stderr.close()
