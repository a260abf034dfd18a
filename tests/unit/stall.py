"""A test seam for save races: stall a save in its thread, on cue, without sleeps."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path

import pytest


class StallFirstSave:
    """Stalls the first save that runs in a worker thread at its fsync, before it renames,
    until the test releases it; records what lands on the file, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.landed: list[object] = []
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd: int) -> None:
            if threading.current_thread() is not threading.main_thread() and not self.stalled.is_set():
                self.stalled.set()
                assert self.release.wait(10), "the test never released the stalled save"
            real_fsync(fd)

        def replace(src: str | Path, dst: str | Path) -> None:
            if Path(dst) == path:
                self.landed.append(json.loads(Path(src).read_text()))
            real_replace(src, dst)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)

    async def wait_stalled(self) -> None:
        assert await asyncio.to_thread(self.stalled.wait, 10)
