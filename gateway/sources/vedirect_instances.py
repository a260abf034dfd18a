"""Device instances for VE.Direct ports without an ``instance`` key, stable across restarts.

A GX numbers a VE.Direct device by the port it is on; so does this: the first free instance
of the "VE.Direct via USB" range of unit_ids.csv (288, 289 ... 296 = unit ids 239 ... 231) is
given to a port and kept, by port path (``/dev/serial/by-id/...`` stays the same across
re-plugs), in ``<state_dir>/vedirect.json``. Without a state_dir the numbers hold for this run.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Final

from gateway.core.persist import JsonFile

log = logging.getLogger(__name__)

FILE_NAME: Final = "vedirect.json"
USB_INSTANCES: Final = (288, 289, 290, 291, 292, 293, 294, 295, 296)


def parse_book(data: object) -> dict[str, int]:
    if not isinstance(data, dict) or not isinstance(data.get("ports"), dict):
        raise ValueError('expected {"ports": {PATH: INSTANCE}}')
    ports = data["ports"]
    if not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in ports.items()):
        raise ValueError("ports: expected path -> integer instance")
    return dict(ports)


def assign(state_dir: Path | None, paths: Collection[str], taken: Collection[int]) -> Mapping[str, int]:
    """An instance per port path in ``paths``: the kept one, else the first free one (not in
    ``taken``, the configured instances, nor kept for another port); new ones are saved."""
    file = JsonFile(state_dir / FILE_NAME, parse_book, lambda b: {"ports": b}) if state_dir else None
    book = (file.load() if file is not None else None) or {}
    used = set(taken) | set(book.values())
    changed = False
    for path in paths:
        if path in book:
            continue
        free = next((i for i in USB_INSTANCES if i not in used), None)
        if free is None:
            free = max(used | {USB_INSTANCES[-1]}) + 1
            log.warning("vedirect %s: instance %d (more VE.Direct ports than unit ids for them)", path, free)
        book[path] = free
        used.add(free)
        changed = True
        log.info("vedirect %s: device instance %d", path, free)
    if changed and file is not None:
        try:
            file.save_now(book)
        except OSError as e:
            log.error("cannot keep VE.Direct instances in %s (%s); they may change at the next start", file.path, e)
    return {p: book[p] for p in paths}
