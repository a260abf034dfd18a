"""NMEA 2000 in: other senders' tank, battery, charger and temperature PGNs into the Store.

Frames come from a raw CAN bus (``gateway.transports.can_raw``: SocketCAN, the python-can
virtual bus, a ``candump-replay:`` file). Per frame, cheapest checks first: the per-source
budget (a flooding sender is cut off at ``max_frames_per_source`` frames/s, counted, without
touching the others), address claims (60928: the sender's NAME; our own virtual devices'
NAMEs mark their addresses as ours, never read back), PGNs nobody maps (dropped before
reassembly), the sender filter, fast-packet reassembly and canboat's decoder (the ``nmea2000``
package), then ``mappings/n2k/`` in reverse (``n2k_reverse``). Each (sender, service, data
instance) is one Store device (``n2k_senders``); it goes ``/Connected`` 0 and its values
invalid after 3 missed intervals (at most 10 s). Every expected fault is counted in ``stats()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from nmea2000 import _canboat as canboat
from nmea2000 import backend

from gateway.core.components import cancel_and_wait
from gateway.core.store import Store
from gateway.sources.n2k_reverse import ReversePgn, reverse_map
from gateway.sources.n2k_senders import Senders, Service, name_key
from gateway.transports.can_raw import RawBus, RawFrame, parse_raw_bus
from registers.model import CompiledMap
from registers.values import Scalar

log = logging.getLogger(__name__)

CLAIM, PRODUCT, CONFIGURATION, REQUEST = 60928, 126996, 126998, 59904
PROCESS_NAME: Final = "n2k-in"  # = gateway.frontends.n2k.frontend.FROM_THE_BUS (no import: rooms)
NULL_ADDRESS: Final = 254  # a Request for Address Claimed may come from the null address
MAX_TIMEOUT_S: Final = 10.0
MIN_TIMEOUT_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class N2kInSettings:
    bus: str  # a can_raw spec
    pgns: frozenset[int] = frozenset()  # empty: every mapped PGN
    senders: tuple[str, ...] = ()  # NAMEs (16 hex digits) or manufacturers (code or canboat name); empty: all
    first_instance: int = 40
    max_frames_per_source: int = 1000  # frames/s


def own_names(base: Callable[[], int], manufacturer: int = 2046) -> Callable[[int], bool]:
    """Whether a NAME is one of our virtual devices': our manufacturer code and unique-number
    block (N2K out's, ``[n2k] unique_number_base`` or derived from the serial)."""

    def own(name: int) -> bool:
        first = base()
        return manufacturer_of(name) == manufacturer and first <= name & 0x1FFFFF < first + 256

    return own


def manufacturer_of(name: int) -> int:
    return (name >> 21) & 0x7FF


def function_of(name: int) -> int:
    return (name >> 40) & 0xFF


class N2kInput:
    label = "NMEA 2000 in"

    def __init__(
        self,
        store: Store,
        cmap: CompiledMap,
        settings: N2kInSettings,
        state_dir: Path | None,
        own: Callable[[int], bool],
        bus: RawBus | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.settings, self.own, self.clock = store, settings, own, clock
        self.bus = bus or parse_raw_bus("n2k.input", settings.bus)
        reverse = reverse_map(cmap)
        self.reverse: Mapping[int, tuple[ReversePgn, ...]] = {
            p: r for p, r in reverse.items() if not settings.pgns or p in settings.pgns
        }
        self.wanted = frozenset(self.reverse) | {PRODUCT, CONFIGURATION}
        reserved = {unit for unit in cmap.modbus.unit_ids} | {0}
        self.senders = Senders(state_dir, settings.first_instance, reserved)
        self.allowed_names, self.allowed_makers = _sender_filter(settings.senders)
        self.services: dict[str, Service] = {}
        self.own_addresses: set[int] = set()
        self.counts: Counter[str] = Counter()
        self._reassembler = canboat.Reassembler()
        self._window = 0
        self._per_source: dict[int, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.ended = False

    # --- component -----------------------------------------------------------------------
    async def start(self) -> None:
        self.senders.load()
        await self.bus.open()
        request = canboat.can_id_compose(6, REQUEST, NULL_ADDRESS, 255)
        with contextlib.suppress(Exception):  # a read-only replay counts it; a dead bus is seen below
            self.bus.send(RawFrame(0.0, request, True, CLAIM.to_bytes(3, "little")))
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._watch())]
        log.info("NMEA 2000 in on %s: %d PGNs mapped", self.bus.label, len(self.reverse))

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        await self.bus.close()
        for svc in self.services.values():
            self.store.remove_device(svc.service, svc.instance)
        self.services.clear()
        await self.senders.flush()

    def health(self) -> str | None:
        reader = self._tasks[0] if self._tasks else None
        if reader is not None and reader.done() and not reader.cancelled() and reader.exception():
            return f"NMEA 2000 in stopped: {reader.exception()}"
        return None

    def stats(self) -> dict[str, Any]:
        return {
            "bus": self.bus.label,
            "services": {k: s.instance for k, s in self.services.items()},
            "counts": dict(self.counts),
        }

    async def _read(self) -> None:
        while True:
            try:
                frame = await self.bus.receive()
            except EOFError:
                self.ended = True
                log.info("%s: the replay ended after %d frames", self.bus.label, self.counts["frames"])
                return
            self.on_frame(frame)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self.check_timeouts()

    # --- frames --------------------------------------------------------------------------
    def on_frame(self, frame: RawFrame) -> None:
        counts = self.counts
        counts["frames"] += 1
        if not frame.extended:
            counts["not_n2k"] += 1
            return
        prio, pgn, src, dst = canboat.can_id_decompose(frame.can_id)
        window = int(self.clock())
        if window != self._window:
            self._window, self._per_source = window, {}
        seen = self._per_source.get(src, 0) + 1
        self._per_source[src] = seen
        if seen > self.settings.max_frames_per_source:
            counts["flood_dropped"] += 1
            if seen == self.settings.max_frames_per_source + 1:
                log.debug("address %d sends over %d frames/s; the rest of this second is dropped", src, seen - 1)
            return
        if pgn == CLAIM:
            self._claim(src, frame.data)
            return
        if src in self.own_addresses:
            counts["own"] += 1
            return
        if pgn not in self.wanted:
            counts["unmapped"] += 1
            return
        if not self._allowed(src):
            counts["filtered"] += 1
            return
        payload = frame.data
        if backend.is_fast_pgn(pgn):
            try:
                joined = self._reassembler.push(pgn, frame.data, src, dst, prio)
            except canboat.ReassemblyError:  # a broken sequence
                counts["fast_packet_errors"] += 1
                return
            if joined is None:
                return
            payload = joined
        try:
            message = backend.decode(pgn, payload, src, dst, prio, "si")
        except (canboat.DecodeError, ValueError):  # a malformed payload
            message = None
        if message is None:
            counts["decode_errors"] += 1
            return
        counts["decoded"] += 1
        decoded = {f.id: f.value for f in message.fields}
        if pgn == PRODUCT:
            self._product(src, decoded)
        elif pgn == CONFIGURATION:
            self._description(src, decoded)
        else:
            self._data(src, pgn, decoded)

    def _claim(self, src: int, data: bytes) -> None:
        if len(data) < 8:
            self.counts["decode_errors"] += 1
            return
        name = int.from_bytes(data[:8], "little")
        if self.own(name):
            self.own_addresses.add(src)
            self.counts["own"] += 1
            return
        self.own_addresses.discard(src)
        self.counts["claims"] += 1
        moved = self.senders.claim(src, name)
        if moved is not None:
            before, after = moved
            for key in [k for k in self.services if k.startswith(before + "/")]:
                svc = self.services.pop(key)
                svc.key = after + key[len(before) :]
                self.services[svc.key] = svc
        for svc in self.services.values():
            if svc.key.startswith(name_key(name) + "/") and svc.address != src:
                svc.address = src
                self._publish(svc, {"/Mgmt/Connection": self._connection(src)})

    def _allowed(self, src: int) -> bool:
        if not self.allowed_names and not self.allowed_makers:
            return True
        name = self.senders.names.get(src)
        if name is None:
            return False  # not claimed (yet): the filter cannot tell who it is
        return name in self.allowed_names or manufacturer_of(name) in self.allowed_makers

    def _product(self, src: int, decoded: Mapping[str, object]) -> None:
        model = decoded.get("modelId")
        if isinstance(model, str) and model.strip():
            sender = self.senders.sender(src)
            self.senders.products[sender] = model.strip()
            for svc in self._of(sender):
                self._publish(svc, {"/ProductName": model.strip()})

    def _description(self, src: int, decoded: Mapping[str, object]) -> None:
        text = decoded.get("installationDescription1")
        if isinstance(text, str) and text.strip():
            sender = self.senders.sender(src)
            self.senders.descriptions[sender] = text.strip()
            for svc in self._of(sender):
                self._publish(svc, {"/CustomName": text.strip()})

    def _of(self, sender: str) -> list[Service]:
        return [s for s in self.services.values() if s.key.startswith(sender + "/")]

    def _data(self, src: int, pgn: int, decoded: Mapping[str, object]) -> None:
        candidates = self.reverse[pgn]
        name = self.senders.names.get(src)
        rev = candidates[0]
        if name is not None:
            rev = next((r for r in candidates if r.device_function == function_of(name)), rev)
        data_instance, values = rev.values_of(decoded)
        sender = self.senders.sender(src)
        key = f"{sender}/{rev.service}/{data_instance}"
        now = self.clock()
        svc = self.services.get(key) or self._new_service(key, rev.service, data_instance, src, now)
        if svc is None:
            return
        svc.heard(pgn, now)
        svc.paths.update(values)
        if not svc.connected:
            svc.connected = True
            values["/Connected"] = 1
            log.info("%s: %s %s instance %d is back", self.bus.label, rev.service, sender, data_instance)
        self._publish(svc, values)

    def _new_service(self, key: str, service: str, data_instance: int, src: int, now: float) -> Service | None:
        used = {d.instance for d in self.store.devices()}
        instance = self.senders.instance_for(key, used)
        if instance is None or self.store.device(service, instance) is not None:
            self.counts["no_instance"] += 1
            return None
        sender = key.split("/", 1)[0]
        fixed: dict[str, Scalar] = {
            "/Connected": 0,
            "/ProductName": self.senders.products.get(sender, f"NMEA 2000 {service}"),
            "/Mgmt/Connection": self._connection(src),
            "/Serial": sender,
            "/Mgmt/ProcessName": PROCESS_NAME,  # N2K out leaves these out: they are on the bus already
        }
        if sender in self.senders.descriptions:
            fixed["/CustomName"] = self.senders.descriptions[sender]
        self.store.add_device(service, instance, values=fixed)
        svc = Service(key, service, instance, data_instance, src, interval_s=0.0, last_seen=now)
        self.services[key] = svc
        log.info("%s: %s instance %d from %s at unit id %d", self.bus.label, service, data_instance, sender, instance)
        return svc

    def _connection(self, src: int) -> str:
        return f"NMEA 2000 {self.bus.label} address {src}"

    def _publish(self, svc: Service, values: Mapping[str, Scalar]) -> None:
        self.store.publish(svc.service, svc.instance, values)

    def timeout_of(self, svc: Service) -> float:
        return min(MAX_TIMEOUT_S, max(MIN_TIMEOUT_S, 3 * svc.interval_s)) if svc.interval_s > 0 else MAX_TIMEOUT_S

    def check_timeouts(self) -> None:
        now = self.clock()
        for svc in self.services.values():
            if svc.connected and now - svc.last_seen > self.timeout_of(svc):
                svc.connected = False
                self.counts["timeouts"] += 1
                self.store.publish(svc.service, svc.instance, {"/Connected": 0, **dict.fromkeys(svc.paths)})
                log.info("%s: %s unit id %d is silent; /Connected 0", self.bus.label, svc.key, svc.instance)


def _sender_filter(entries: tuple[str, ...]) -> tuple[frozenset[int], frozenset[int]]:
    """NAMEs and manufacturer codes from ``[n2k] input_senders`` (already checked by the config)."""
    names: set[int] = set()
    makers: set[int] = set()
    labels = {label.lower(): code for code, label in backend.DATABASE.lookup("MANUFACTURER_CODE")}
    for entry in entries:
        text = entry.strip()
        if len(text) == 16 and all(c in "0123456789abcdefABCDEF" for c in text):
            names.add(int(text, 16))
        elif text.isdigit():
            makers.add(int(text))
        elif text.lower() in labels:
            makers.add(labels[text.lower()])
        else:
            raise ValueError(f"n2k.input_senders: {entry!r} is not a NAME (16 hex digits) or a manufacturer")
    return frozenset(names), frozenset(makers)
