"""``[mqtt] listen``: the gateway runs its own broker, as a GX runs FlashMQ beside its services.

The broker is Mosquitto (Debian's ``mosquitto`` package), started as a managed child process
with a config written here, rather than a broker in Python: a GX's broker is a separate C
process too, Mosquitto is the reference implementation every client is tested against, and a
full publish of 10,000 topics to several subscribers must take well under a second, which an
asyncio broker in this process would spend our one core on. The child listens only where
``listen`` says, anonymous (as a GX's plain 1883), without persistence; it dies with us.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Final

from gateway.core.components import StartupError

log = logging.getLogger(__name__)

CANDIDATES: Final = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
READY_S: Final = 5.0


def find_mosquitto() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def claim_port(host: str, port: int) -> int:
    """The port, checked free (else a one-line StartupError), or an ephemeral one for port 0
    (Mosquitto wants a number). Checked here because an answer on a busy port would look
    like our broker's."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, port))
            return int(s.getsockname()[1])
    except OSError as e:
        why = (os.strerror(e.errno) if e.errno else str(e)).lower()
        raise StartupError(f"cannot listen on {host}:{port} for the MQTT broker: {why}") from None


class Broker:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.process: asyncio.subprocess.Process | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise StartupError(
                "mqtt.listen runs Mosquitto, which is not installed (Debian: apt install mosquitto);"
                " or point mqtt.broker at an existing broker"
            )
        self.port = claim_port(self.host, self.port)
        self._folder = tempfile.TemporaryDirectory(prefix="gx-gateway-mqtt-")
        conf = Path(self._folder.name) / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\nlog_type error\nlog_type warning\nmax_queued_messages 100000\n",
            encoding="utf-8",
        )
        self.process = await asyncio.create_subprocess_exec(
            binary, "-c", str(conf), stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        self._drain = asyncio.get_running_loop().create_task(self._log_stderr())
        log.info("MQTT broker (Mosquitto, pid %d) listening on %s:%d", self.process.pid, self.host, self.port)

    async def _wait_ready(self) -> None:
        assert self.process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_S
        while loop.time() < deadline:
            if self.process.returncode is not None:
                break
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        why = ""
        if self.process.returncode is not None and self.process.stderr is not None:
            lines = (await self.process.stderr.read()).decode(errors="replace").strip().splitlines()
            why = f": {lines[-1].split(': ', 1)[-1]}" if lines else ""
        raise StartupError(f"cannot run the MQTT broker on {self.host}:{self.port}{why or ' (it did not answer)'}")

    async def _log_stderr(self) -> None:
        """Mosquitto's warnings go to our log (and its pipe never fills)."""
        assert self.process is not None and self.process.stderr is not None
        async for line in self.process.stderr:
            log.warning("mosquitto: %s", line.decode(errors="replace").rstrip())

    async def stop(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(1.0):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
