"""One virtual NMEA 2000 device: its NAME, address claim and network-management PGNs.

Each Store device with PGN mappings becomes one (an inverter/charger two), and the gateway
is one too (class 120 Display). Address claiming is canboat's ISO 11783-5 state machine
(``AddressClaimer``: lower NAME wins, the loser moves to a free address, no address left ->
silent); this class feeds it the bus's claims and the clock, sends nothing but a claim until
it holds an address, then Product Information, and answers ISO Requests (NAK for PGNs it does
not send, when asked directly) and 126208 instance changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from nmea2000 import _canboat as canboat

from gateway.frontends.n2k.assignments import Assigned
from gateway.frontends.n2k.commands import BadCommand, acknowledge, parse_command
from gateway.transports.can import Frame
from registers.pgn_specs import INDUSTRY_MARINE

log = logging.getLogger(__name__)

NETWORK_PGNS = [59392, 59904, 60928, 126208, 126464, 126993, 126996]
RECEIVED_PGNS = [59904, 60928, 126208]
HEARTBEAT_MS = 60_000
NMEA2000_VERSION = 2100  # 2.100 (the field's resolution is 0.001)


class VirtualDevice:
    def __init__(
        self,
        key: str,
        assigned: Assigned,
        *,
        device_class: int,
        device_function: int,
        manufacturer: int,
        model: str,
        label: str,
        serial: str,
        version: str,
        data_pgns: dict[int, str],
        send: Callable[[Frame], bool],
        send_data: Callable[[int], bool],
        save: Callable[[str, dict[str, int]], Assigned],
    ) -> None:
        self.key, self.assigned = key, assigned
        self.device_class, self.device_function, self.manufacturer = device_class, device_function, manufacturer
        self.model, self.label, self.serial, self.version = model, label, serial, version
        self.data_pgns = data_pgns  # PGN -> canboat id, what this device sends
        self._send, self._send_data, self._save = send, send_data, save
        self.claimer: canboat.AddressClaimer | None = None
        self.claimed = False
        self._failed_logged = False
        self._heartbeat_seq = 0
        self.next_heartbeat_ms = 0

    # --- NAME and claiming ---------------------------------------------------------------
    @property
    def name(self) -> int:
        a = self.assigned
        value: int = canboat.iso_name(
            self.manufacturer,
            a.unique,
            device_function=self.device_function,
            device_class=self.device_class,
            device_instance=a.device_instance,
            system_instance=a.system_instance,
            industry_group=INDUSTRY_MARINE,
            arbitrary_address_capable=True,
        )
        return value

    @property
    def address(self) -> int | None:
        """The source address while claimed; None means: send nothing but claims."""
        return self.claimer.address if self.claimed and self.claimer is not None else None

    def start(self, now_ms: int, preferred: int | None = None) -> None:
        address = self.assigned.address if preferred is None else preferred
        self.claimer = canboat.AddressClaimer(self.name, address, True)
        self.claimed = False
        self._emit(self.claimer.start(now_ms), now_ms)

    def tick(self, now_ms: int) -> None:
        if self.claimer is not None and self.claimer.is_timing and now_ms >= self.claimer.deadline:
            self._emit(self.claimer.tick(now_ms), now_ms)
        if self.claimed and now_ms >= self.next_heartbeat_ms:
            self.send_heartbeat(now_ms)

    @property
    def deadline_ms(self) -> int | None:
        """When ``tick`` has something to do next."""
        times = []
        if self.claimer is not None and self.claimer.is_timing:
            times.append(self.claimer.deadline)
        if self.claimed:
            times.append(self.next_heartbeat_ms)
        return min(times) if times else None

    def on_claim(self, now_ms: int, src: int, name: int) -> None:
        if self.claimer is None or name == self.name:
            return
        self._emit(self.claimer.on_address_claim(now_ms, src, name), now_ms)

    def _emit(self, frames: list[Frame], now_ms: int) -> None:
        for frame in frames:
            self._send(frame)
        self._check_state(now_ms)

    def _check_state(self, now_ms: int) -> None:
        assert self.claimer is not None
        state = self.claimer.state
        if state == "claimed" and not self.claimed:
            self.claimed = True
            address = self.claimer.address
            log.info("NMEA 2000: %s claimed address %s", self.label, address)
            if address is not None and address != self.assigned.address:
                self.assigned = self._save(self.key, {"address": address})
            self.send_product_information()
            self.next_heartbeat_ms = now_ms
        elif state != "claimed" and self.claimed:
            self.claimed = False
            log.info("NMEA 2000: %s lost its address; claiming another", self.label)
        if state == "failed" and not self._failed_logged:
            self._failed_logged = True
            log.warning("NMEA 2000: %s cannot claim an address; it stays silent", self.label)

    # --- network management PGNs ---------------------------------------------------------
    def send_product_information(self, dst: int = 255) -> None:
        if self.address is None:
            return
        prio, pgn, src, _, payload = canboat.product_information_frame(
            self.address,
            nmea2000_version=NMEA2000_VERSION,
            product_code=self.device_class * 256 + self.device_function,
            model_id=self.model[:32],
            software_version=self.version[:32],
            model_version=self.label[:32],
            model_serial=f"{self.serial}-{self.assigned.unique}"[:32],
            certification_level=0,
            load_equivalency=1,
        )
        self._send((prio, pgn, src, dst, payload))

    def send_heartbeat(self, now_ms: int) -> None:
        if self.address is None:
            return
        self._send(canboat.heartbeat_frame(self.address, self._heartbeat_seq, HEARTBEAT_MS))
        self._heartbeat_seq = (self._heartbeat_seq + 1) % 253
        self.next_heartbeat_ms = now_ms + HEARTBEAT_MS

    def on_request(self, pgn: int, requester: int, dst: int) -> None:
        """ISO Request (59904) for ``pgn``, sent to us (dst = our address) or to everyone."""
        if self.claimer is None:
            return
        if pgn == 60928:
            claim = self.claimer.respond_to_claim_request()
            if claim is not None:
                self._send(claim)
            return
        me = self.address
        if me is None:
            return
        if pgn == 126996:
            self.send_product_information()
        elif pgn == 126464:
            transmit = sorted({*self.data_pgns, 60928, 126996, 126993, 126464, 59392})
            for frame in canboat.pgn_list_frames(me, requester, transmit, RECEIVED_PGNS):
                self._send(frame)
        elif pgn == 126993:
            self._send(canboat.heartbeat_frame(me, self._heartbeat_seq, HEARTBEAT_MS))
        elif pgn in self.data_pgns:
            self._send_data(pgn)
        elif dst == me:  # a request to everyone for something we do not send gets no answer
            self._send(canboat.iso_ack_frame(me, requester, 1, pgn))

    def on_command(self, payload: bytes, requester: int, now_ms: int) -> None:
        """126208 addressed to us: change instances (persisted), or log why not and refuse."""
        me = self.address
        if me is None:
            return
        try:
            command = parse_command(payload, self.data_pgns)
        except BadCommand as e:
            log.warning("NMEA 2000: ignored a 126208 from %d to %s: %s", requester, self.label, e)
            pgn = int.from_bytes(payload[1:4], "little") if len(payload) >= 4 else 0
            self._send((3, 126208, me, requester, acknowledge(pgn, False, 1)))
            return
        changes = dict(command.changes)
        lower = changes.pop("device_instance_lower", None)
        upper = changes.pop("device_instance_upper", None)
        if lower is not None or upper is not None:
            current = self.assigned.device_instance
            lo = current & 7 if lower is None else lower
            hi = current >> 3 if upper is None else upper
            changes["device_instance"] = (hi << 3) | lo
        self.assigned = self._save(self.key, changes)
        log.info("NMEA 2000: %s instances changed by %d: %s", self.label, requester, command.changes)
        self._send((3, 126208, me, requester, acknowledge(command.pgn, True, len(command.changes))))
        if command.pgn == 60928:  # a new NAME: claim again, at the address we hold
            self.start(now_ms, preferred=me)
