"""The NMEA 2000 frontend: Store devices out as virtual devices' PGNs, on one scheduler.

It subscribes to the Store; each device of a service type with PGN mappings (``cmap.n2k``)
becomes its virtual devices. One task sends every PGN when due: it reads the device's
readings (valid and seen within ``stale_s``, by ``Reading.last_seen``), runs the precompiled
field specs and canboat's encoder once, and hands the PGN to the link. A PGN whose required
values are invalid or stale is skipped (it stops) and resumes by itself when they return.

Bus budget: the planned frames/s and bus load (≈140 bits per frame at 250 kbit/s) are logged
at start and reported by ``stats()``; above ``max_bus_load`` every interval is stretched by
the same factor. PGNs start at staggered phases so that many devices do not burst together.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.core.components import cancel_and_wait
from gateway.core.store import Device, Store
from gateway.frontends.n2k.assignments import Assigned, Assignments, unique_base_from_serial
from gateway.frontends.n2k.budget import budget_report, frames_of, stretch_for
from gateway.frontends.n2k.device import VirtualDevice
from gateway.transports.can import Frame, Transport, parse_interface
from gateway.transports.link import Link
from registers.model import CompiledMap
from registers.pgn_specs import N2kDeviceSpec, N2kPgn
from registers.values import Scalar

log = logging.getLogger(__name__)

FROM_THE_BUS = "n2k-in"  # /Mgmt/ProcessName of the services NMEA 2000 in publishes
GOLDEN = 0.6180339887  # phases k * GOLDEN (mod 1) spread any number of PGNs evenly


@dataclass(frozen=True, slots=True)
class N2kSettings:
    interface: str
    unique_number_base: int | None = None  # None: derived from the gateway serial
    max_bus_load: float = 0.30
    stale_s: float = 10.0
    manufacturer_code: int = 2046


@dataclass(eq=False)
class Job:
    device: VirtualDevice
    source: Device
    spec: N2kPgn
    frames: int
    interval_s: float
    due: float
    sending: bool = True  # False while its required values are missing (logged on change)
    cancelled: bool = False
    sent: int = 0
    failed: bool = False  # its last encode raised (logged once)


@dataclass(eq=False)
class Node:
    """A Store device's virtual devices and their PGN jobs."""

    devices: list[VirtualDevice] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)


class N2kFrontend:
    label = "NMEA 2000"  # its name in /healthz and /api/v1/status (gateway/ops)

    def __init__(
        self,
        store: Store,
        cmap: CompiledMap,
        settings: N2kSettings,
        state_dir: Path | None,
        serial: Callable[[], str],
        version: str,
        transport: Transport | None = None,
    ) -> None:
        self.store, self.cmap, self.settings = store, cmap, settings
        self.state_dir, self.serial, self.version = state_dir, serial, version
        self.transport = transport
        self.nodes: dict[tuple[str, int], Node] = {}
        self.stretch = 1.0
        self._heap: list[tuple[float, int, Job]] = []
        self._seq = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.gateway_device: VirtualDevice | None = None
        self._all: list[VirtualDevice] | None = None
        self._dirty = True  # a device event may have moved a claim or heartbeat deadline
        self._next_device = 0.0
        self.serial_number = ""
        self.link: Link | None = None
        self.assignments: Assignments | None = None

    # --- component -----------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        s = self.settings
        self.serial_number = self.serial()
        transport = self.transport or parse_interface("n2k.interface", s.interface, self._transmitted)
        base = s.unique_number_base if s.unique_number_base is not None else unique_base_from_serial(self.serial_number)
        self.assignments = Assignments(self.state_dir, base)
        self.assignments.load()
        self._all = None
        self.gateway_device = self._virtual("gateway", "gateway", 120, 130, "gx-gateway", "gx-gateway", {})
        self._unsubscribe = self.store.subscribe(self)  # the devices there now; they claim once the bus is up
        self.link = Link(transport, self._on_frame, self._on_up)
        self.link.start()
        with contextlib.suppress(TimeoutError):  # a short wait, so a present bus starts at once
            async with asyncio.timeout(0.5):
                await self.link.opened.wait()
        self._task = asyncio.create_task(self._run(), name="n2k scheduler")
        st = self.stats()
        log.info(
            "NMEA 2000 on %s: %d virtual devices, %d PGNs, %.0f frames/s planned, bus load %.1f %% (cap %.0f %%)",
            transport.label,
            len(st["devices"]),
            st["pgns"],
            st["planned_frames_per_s"],
            100 * st["planned_bus_load"],
            100 * s.max_bus_load,
        )

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        if self.link is not None:
            await self.link.stop()
        if self.assignments is not None:
            await self.assignments.flush()

    def health(self) -> str | None:
        """None while the bus is there and every device holds an address; else why not."""
        if self.link is None:
            return "not started"
        if not self.link.up:
            return f"{self.link.transport.label} is down: {self.link.reason}"
        failed = [vd.label for vd in self.virtual_devices() if vd.claimer is not None and vd.claimer.state == "failed"]
        return f"no address for {', '.join(failed)}" if failed else None

    # --- Store listener ------------------------------------------------------------------
    def device_added(self, device: Device) -> None:
        specs: Iterable[N2kDeviceSpec] = self.cmap.n2k.get(device.service, ())
        if device.get("/Mgmt/ProcessName") == FROM_THE_BUS:
            specs = ()  # read from NMEA 2000 (sources/n2k_in.py): already on the bus, never echoed
        node = Node()
        now = self._clock()
        for spec in specs:
            key = f"{device.service}/{device.instance}/{spec.role}"
            name = device.get("/CustomName") or device.get("/ProductName") or ""
            label = f"{device.service} {device.instance} {spec.role}" + (f" ({name})" if name else "")
            data = {p.pgn: p.pgn_id for p in spec.pgns}
            vd = self._virtual(key, spec.pool, spec.device_class, spec.device_function, spec.model, label, data)
            node.devices.append(vd)
            if self.link is not None and self.link.up:
                vd.start(self._now_ms())
            for p in spec.pgns:
                self._seq += 1
                phase = (self._seq * GOLDEN) % 1.0
                interval = p.interval_ms / 1000 * self.stretch
                job = Job(vd, device, p, frames_of(p), interval, now + 1.5 + phase * interval)
                node.jobs.append(job)
                heapq.heappush(self._heap, (job.due, self._seq, job))
        if node.devices:
            self.nodes[device.key] = node
            self._all = None
            self._dirty = True
            self._replan()
            self._wake.set()

    def device_removed(self, device: Device) -> None:
        node = self.nodes.pop(device.key, None)
        self._all = None
        if node is not None:
            for job in node.jobs:
                job.cancelled = True
            self._replan()

    def values_changed(self, device: Device, paths: Iterable[str]) -> None:
        """Nothing to do: PGNs are encoded when due, from the readings then current."""

    # --- devices -------------------------------------------------------------------------
    def _virtual(
        self, key: str, pool: str, cls: int, fn: int, model: str, label: str, data: dict[int, str]
    ) -> VirtualDevice:
        assert self.assignments is not None
        assigned = self.assignments.assign(key, pool)
        vd: VirtualDevice

        def send_data(pgn: int) -> bool:
            for node in self.nodes.values():
                for job in node.jobs:
                    if job.device is vd and job.spec.pgn == pgn:
                        return self._send_job(job, self._clock())
            return False

        vd = VirtualDevice(
            key,
            assigned,
            device_class=cls,
            device_function=fn,
            manufacturer=self.settings.manufacturer_code,
            model=model,
            label=label,
            serial=self.serial_number,
            version=self.version,
            data_pgns=data,
            send=self._send,
            send_data=send_data,
            save=self._save,
        )
        return vd

    def _save(self, key: str, changes: dict[str, int]) -> Assigned:
        assert self.assignments is not None
        return self.assignments.update(key, **changes)

    def virtual_devices(self) -> list[VirtualDevice]:
        if self._all is None:  # rebuilt when devices come and go, not per scheduler pass
            own = [self.gateway_device] if self.gateway_device is not None else []
            self._all = own + [vd for node in self.nodes.values() for vd in node.devices]
        return self._all

    def _transmitted(self) -> list[int]:
        return sorted(
            {
                60928,
                126996,
                126993,
                126464,
                59392,
                126208,
                *(p.pgn for n in self.cmap.n2k.values() for d in n for p in d.pgns),
            }
        )

    # --- sending -------------------------------------------------------------------------
    def _send(self, frame: Frame) -> bool:
        assert self.link is not None
        sent = self.link.send(frame)
        if frame[1] == 60928 and frame[2] != 254:  # our own claims reach our other devices too
            name = int.from_bytes(frame[4][:8], "little")
            self._dirty = True
            for vd in self.virtual_devices():
                if vd.name != name:
                    vd.on_claim(self._now_ms(), frame[2], name)
        return sent

    def _send_job(self, job: Job, now: float) -> bool:
        address = job.device.address
        if address is None:
            return False
        values = job.source.values
        cutoff = time.monotonic() - self.settings.stale_s

        def get(path: str) -> Scalar:
            r = values.get(path)
            return r.value if r is not None and r.valid and r.last_seen >= cutoff else None

        try:
            payload = job.spec.encode(get, job.device.assigned.instance, address)
        except Exception as e:  # a value the PGN cannot carry must stop this PGN, never the frontend
            if job.sending or not job.failed:
                log.warning("NMEA 2000: %s cannot encode PGN %d: %s", job.device.label, job.spec.pgn, e)
            job.failed = True
            payload = None
        else:
            job.failed = False
        if payload is None:
            if job.sending:
                log.info("NMEA 2000: %s stops PGN %d (values invalid or stale)", job.device.label, job.spec.pgn)
            job.sending = False
            return False
        if not job.sending:
            log.info("NMEA 2000: %s resumes PGN %d", job.device.label, job.spec.pgn)
        job.sending = True
        job.sent += 1
        assert self.link is not None
        return self.link.send((job.spec.priority, job.spec.pgn, address, 255, payload))

    async def _run(self) -> None:
        while True:
            now = self._clock()
            now_ms = int(now * 1000)
            if self._dirty or now >= self._next_device:  # claims and heartbeats, when one is due
                self._dirty = False
                next_device = now + 1.0
                for vd in self.virtual_devices():
                    deadline = vd.deadline_ms
                    if deadline is not None and deadline <= now_ms:
                        vd.tick(now_ms)
                        deadline = vd.deadline_ms
                    if deadline is not None and deadline / 1000 < next_device:
                        next_device = deadline / 1000
                self._next_device = next_device
            next_device = self._next_device
            while self._heap and self._heap[0][0] <= now:
                _, seq, job = heapq.heappop(self._heap)
                if job.cancelled:
                    continue
                self._send_job(job, now)
                job.due = max(job.due + job.interval_s, now)
                heapq.heappush(self._heap, (job.due, seq, job))
            wake = min(next_device, self._heap[0][0]) if self._heap else next_device
            self._wake.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the cancel that
            # stop() sends when _wake is set at the same moment, and stop() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, wake - self._clock())):
                    await self._wake.wait()

    def _clock(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- receiving -----------------------------------------------------------------------
    def _on_up(self) -> None:
        """The bus is there (again): every device claims, before it sends anything else."""
        now_ms = self._now_ms()
        for vd in self.virtual_devices():
            vd.start(now_ms)
        self._dirty = True
        self._wake.set()

    def _on_frame(self, frame: Frame) -> None:
        _, pgn, src, dst, payload = frame
        now_ms = self._now_ms()
        if pgn == 60928 and len(payload) >= 8:
            name = int.from_bytes(payload[:8], "little")
            for vd in self.virtual_devices():
                vd.on_claim(now_ms, src, name)
        elif pgn == 59904 and len(payload) >= 3:
            requested = int.from_bytes(payload[:3], "little")
            for vd in self.virtual_devices():
                if dst == 255 or dst == vd.address:
                    vd.on_request(requested, src, dst)
        elif pgn == 126208 and dst != 255:
            for vd in self.virtual_devices():
                if vd.address == dst:
                    vd.on_command(payload, src, now_ms)
        self._dirty = True
        self._wake.set()

    # --- budget --------------------------------------------------------------------------
    def _jobs(self) -> list[Job]:
        return [j for node in self.nodes.values() for j in node.jobs]

    def _replan(self) -> None:
        stretch = stretch_for(self._jobs(), len(self.virtual_devices()), self.settings.max_bus_load)
        if stretch != self.stretch:
            self.stretch = stretch
            for job in self._jobs():
                job.interval_s = job.spec.interval_ms / 1000 * stretch

    def stats(self) -> dict[str, Any]:
        """The bus budget and the devices, for the log and the JSON API."""
        s = self.settings
        return budget_report(s.interface, s.max_bus_load, self.stretch, self.link, self.virtual_devices(), self._jobs())
