"""``gx-gateway simulate vedirect``: the real text protocol on a pty behind a by-id-like link,
and its stdin commands pull and push back the cable."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

from registers.vedirect import TextFramer
from tests.gateway_process import GX


def test_simulate_vedirect_streams_blocks_and_unplugs_on_command(tmp_path: Path) -> None:
    link = tmp_path / "usb-VictronEnergy_VE_Direct-if00"
    proc = subprocess.Popen(
        [str(GX), "simulate", "vedirect", "--product", "mppt", "--link", str(link), "--interval-s", "0.2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == f'VE.Direct mppt simulator on {link} (port = "{link}")'
        fd = os.open(link, os.O_RDONLY | os.O_NONBLOCK)
        framer, blocks = TextFramer(), []
        deadline = time.monotonic() + 5
        while len(blocks) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
            with contextlib.suppress(BlockingIOError):
                blocks += framer.feed(os.read(fd, 4096))
        os.close(fd)
        assert len(blocks) >= 3 and blocks[-1]["PID"] == "0xA053" and framer.bad_checksum == 0
        proc.stdout.readline()  # the help line
        proc.stdin.write("unplug\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ok: unplug"
        assert not link.exists()
        proc.stdin.write("plug\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ok: plug"
        assert link.is_symlink() and link.exists()
    finally:
        proc.terminate()
        proc.wait(5)
