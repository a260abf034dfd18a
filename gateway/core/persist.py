"""Atomic, debounced JSON files for the gateway's state (settings, identity, instance assignments).

Why a module of its own: every piece of state the gateway keeps across restarts has the same
needs, and each is easy to get subtly wrong.

- A power cut leaves the old or the new file, never half of one: the content goes to a
  temporary file in the same folder, is flushed and fsynced, renamed over the file, and the
  folder is fsynced so the rename itself survives.
- A burst of changes costs one save (on disk within ``delay_s``), and the save runs in a
  thread: fsync on slow flash must never delay a Modbus reply.
- Nothing is lost on a bad file: the previous good file is kept as ``<name>.bak``; a file that
  cannot be parsed (bad JSON, wrong shape, too large, nested too deep) is moved aside as
  ``<name>.corrupt-<UTC time>`` (the newest few are kept), the backup is tried, then defaults.
  Every fallback is logged loudly and recorded in ``load_report`` for a health page.
- Saves never go back in time: each snapshot carries a generation number, a lock serialises
  the renames, a write older than the one on disk is dropped, and ``flush`` waits for a save
  still in its thread instead of abandoning it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import glob
import itertools
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, Literal, TypeVar

from gateway.core.components import cancel_and_wait

__all__ = ["MAX_BYTES", "CorruptFile", "JsonFile", "LoadReport"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BYTES = 1 << 20  # a state file is a few kB; anything near this is not ours
KEEP_CORRUPT = 5


class CorruptFile(ValueError):
    """The content is not what the file should hold (a parse function raises this, or ValueError)."""


@dataclass(frozen=True)
class LoadReport:
    """What ``load`` found. ``source``: where the content came from (``none``: defaults are used);
    ``problems``: each fallback as logged, empty on a normal start (even a first one)."""

    path: Path
    source: Literal["file", "backup", "none"]
    problems: tuple[str, ...] = ()
    set_aside: tuple[Path, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


class JsonFile(Generic[T]):
    """One JSON file of state. ``parse`` turns decoded JSON into ``T`` and raises ValueError
    (or TypeError) when the shape is wrong; ``dump`` turns ``T`` back into what ``json.dumps``
    writes (not needed when ``T`` is plain JSON already).

    Use from one event loop: ``load()`` at start, ``request_save(data)`` on every change,
    ``await flush()`` at shutdown. ``save_now(data)`` writes synchronously (start-up code).
    """

    def __init__(
        self,
        path: Path,
        parse: Callable[[object], T],
        dump: Callable[[T], object] | None = None,
        *,
        delay_s: float = 1.0,
        max_bytes: int = MAX_BYTES,
        keep_corrupt: int = KEEP_CORRUPT,
    ) -> None:
        self.path = path
        self.backup = path.with_name(path.name + ".bak")
        self.parse = parse
        self.dump = dump
        self.delay_s = delay_s
        self.max_bytes = max_bytes
        self.keep_corrupt = keep_corrupt
        self.load_report: LoadReport | None = None
        self.saves = 0  # files actually written (diagnostics, tests)
        self.last_error: str | None = None  # why the last save failed; None after a good one
        self._generations = itertools.count(1)
        self._lock = threading.Lock()  # serialises renames and the fields below it
        self._written = 0  # generation of the content on disk
        self._on_disk: bytes | None = None  # that content, to skip saving it again
        self._pending: tuple[int, bytes] | None = None  # newest snapshot not yet handed to a thread
        self._task: asyncio.Task[None] | None = None
        self._inflight: asyncio.Future[bool] | None = None

    # --- loading -------------------------------------------------------------------------
    def load(self) -> T | None:
        """The saved content, the backup's when the file is unusable, or None (use defaults)."""
        problems: list[str] = []
        aside: list[Path] = []
        self._remove_stale_temporaries()
        for candidate, source in ((self.path, "file"), (self.backup, "backup")):
            try:
                raw, value = self._read(candidate)
            except FileNotFoundError:
                if candidate == self.path and self.backup.exists():
                    # A crash between the two renames of a save: the backup holds the last good file.
                    problems.append(f"{candidate.name} missing")
                    log.warning("%s is missing; trying its backup %s", candidate, self.backup.name)
                continue
            except OSError as e:
                problems.append(f"{candidate.name} unreadable: {e.strerror or e}")
                log.error("cannot read %s (%s); trying the next copy", candidate, e.strerror or e)
                continue
            except CorruptFile as e:
                moved = self._set_aside(candidate)
                if moved is not None:
                    aside.append(moved)
                where = f"kept as {moved.name}" if moved is not None else "could not be moved aside"
                problems.append(f"{candidate.name} corrupt ({e}); {where}")
                log.error("%s is corrupt (%s); %s", candidate, e, where)
                continue
            if source == "backup":
                log.warning("using the backup %s instead of %s", candidate, self.path.name)
                self._restore(raw)
            else:
                with self._lock:
                    self._on_disk = raw
            self.load_report = LoadReport(
                self.path, "file" if source == "file" else "backup", tuple(problems), tuple(aside)
            )
            return value
        if problems:
            log.error("%s: no usable copy; using defaults", self.path)
        self.load_report = LoadReport(self.path, "none", tuple(problems), tuple(aside))
        return None

    def _read(self, path: Path) -> tuple[bytes, T]:
        with open(path, "rb") as f:
            raw = f.read(self.max_bytes + 1)
        if len(raw) > self.max_bytes:
            raise CorruptFile(f"larger than {self.max_bytes} bytes")
        try:
            return raw, self.parse(json.loads(raw.decode("utf-8")))
        except RecursionError:
            raise CorruptFile("nested too deeply") from None
        except (ValueError, TypeError) as e:  # JSON, UTF-8 and shape errors are all ValueError
            raise CorruptFile(str(e) or type(e).__name__) from None

    def _restore(self, raw: bytes) -> None:
        """Put the backup's content back as the file (best effort: it is in memory either way)."""
        try:
            self._write(next(self._generations), raw)
        except OSError as e:
            log.error("cannot restore %s from its backup: %s", self.path, e)

    def _set_aside(self, path: Path) -> Path | None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")  # sorts by time as text
        target = path.with_name(f"{path.name}.corrupt-{stamp}")
        for n in itertools.count(1):
            if not target.exists():
                break
            target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        try:
            os.replace(path, target)
        except OSError as e:
            log.error("cannot move %s aside: %s", path, e)
            return None
        self._prune_corrupt()
        return target

    def _prune_corrupt(self) -> None:
        """Keep the newest ``keep_corrupt`` corrupt copies (of the file and of its backup)."""
        copies = self.path.parent.glob(glob.escape(self.path.name) + "*.corrupt-*")
        by_age = sorted(copies, key=lambda p: p.name.rpartition(".corrupt-")[2], reverse=True)
        for old in by_age[self.keep_corrupt :]:
            with contextlib.suppress(OSError):
                old.unlink()

    def _remove_stale_temporaries(self) -> None:
        """Temporary files left by a process killed mid-save (never the file or its backup)."""
        for tmp in self.path.parent.glob("." + glob.escape(self.path.name) + ".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    # --- saving --------------------------------------------------------------------------
    def check_writable(self) -> None:
        """Raise OSError now, in one line, rather than at the first save."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)

    def request_save(self, data: T) -> None:
        """Save ``data`` within ``delay_s`` (taken now: later changes to it are not saved).
        Needs the running event loop; the write itself runs in a thread."""
        raw = self.encode(data)
        idle = self._pending is None and (self._inflight is None or self._inflight.done())
        if idle and raw == self._on_disk:  # no thread is writing, so _on_disk is current
            return
        self._pending = (next(self._generations), raw)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._save_later(), name=f"save {self.path.name}")

    def save_now(self, data: T) -> bool:
        """Write ``data`` synchronously (start-up, tools). True if written, False if unchanged.
        Raises OSError."""
        return self._write(next(self._generations), self.encode(data))

    async def flush(self) -> None:
        """Write the newest snapshot now (shutdown). A save already in its thread is awaited,
        never abandoned, so it cannot land after this one."""
        if self._task is not None:
            # Only ever interrupts the debounce wait or the (shielded) await; a caller's own
            # cancel (its timeout) still propagates.
            await cancel_and_wait(self._task)
            self._task = None
        if self._inflight is not None:
            await self._inflight
            self._inflight = None
        await self._save_pending()

    async def settle(self) -> None:
        """Wait until every requested save is done (tests, diagnostics); unlike ``flush`` it
        does not cut the debounce short."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    def encode(self, data: T) -> bytes:
        """The bytes a snapshot is saved as (stable: keys sorted, so equal content is equal bytes)."""
        obj = self.dump(data) if self.dump is not None else data
        return (json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")

    async def _save_later(self) -> None:
        while self._pending is not None:  # changes during a save get a save of their own
            await asyncio.sleep(self.delay_s)
            await self._save_pending()

    async def _save_pending(self) -> None:
        if self._pending is None:
            return
        generation, raw = self._pending
        self._pending = None
        self._inflight = asyncio.ensure_future(asyncio.to_thread(self._write_logged, generation, raw))
        # Shielded: cancelling the waiting task (flush) must not orphan the thread's rename.
        await asyncio.shield(self._inflight)

    def _write_logged(self, generation: int, raw: bytes) -> bool:
        try:
            return self._write(generation, raw)
        except OSError as e:  # the values stay live in memory; say so, without a traceback
            log.error("cannot save %s: %s", self.path, e)
            return False

    def _write(self, generation: int, raw: bytes) -> bool:
        """Write ``raw`` unless a newer generation or the same bytes are already on disk.

        The temporary file is written and fsynced outside the lock (a slow fsync does not hold
        up a newer save); the generation is checked again under the lock, just before the rename.
        """
        with self._lock:
            if self._superseded(generation, raw):
                return False
        try:
            tmp = self._write_temporary(raw)
        except OSError as e:
            self.last_error = str(e)
            raise
        try:
            with self._lock:
                if self._superseded(generation, raw):
                    return False
                try:
                    # The current file becomes the backup. A crash between the two renames
                    # leaves no file but a good backup, which load() falls back to.
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(self.path, self.backup)
                    os.replace(tmp, self.path)
                    _fsync_dir(self.path.parent)
                except OSError as e:
                    self._on_disk = None  # unknown now: the next save must write
                    self.last_error = str(e)
                    raise
                self._written, self._on_disk, self.last_error = generation, raw, None
                self.saves += 1
                log.debug("saved %s (generation %d)", self.path, generation)
                return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # still there when superseded or failed

    def _superseded(self, generation: int, raw: bytes) -> bool:
        """(Under the lock.) True when this write has nothing to add to what is on disk."""
        if generation <= self._written:
            log.debug("%s: dropped generation %d, %d is on disk", self.path.name, generation, self._written)
            return True
        if raw == self._on_disk:
            self._written = generation
            return True
        return False

    def _write_temporary(self, raw: bytes) -> str:
        """``raw`` in a new temporary file beside the file, flushed and fsynced."""
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with open(fd, "wb") as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp


def _fsync_dir(folder: Path) -> None:
    """Make the renames durable. Some file systems cannot fsync a folder: that is not an error."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)
