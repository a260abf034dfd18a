"""NMEA 2000 in's Store side: decoded PGNs of each sender as GX services.

Each (sender, service, data instance) is one Store device (its instance from ``n2k_senders``);
``mappings/n2k/`` read in reverse (``n2k_reverse``) gives its paths. Product Information
(126996) names it, Configuration Information (126998) gives its custom name. A service goes
``/Connected`` 0 and its values invalid after 3 missed intervals (at least 1 s, at most 10 s).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Final

from gateway.core.store import Store
from gateway.sources.n2k_frames import Claim, Decoded
from gateway.sources.n2k_names import function_of
from gateway.sources.n2k_reverse import ReversePgn
from gateway.sources.n2k_senders import Senders, Service, name_key
from registers.values import Scalar

log = logging.getLogger(__name__)

PRODUCT, CONFIGURATION = 126996, 126998
PROCESS_NAME: Final = "n2k-in"  # = gateway.frontends.n2k.frontend.FROM_THE_BUS (no import: rooms)
MAX_TIMEOUT_S: Final = 10.0
MIN_TIMEOUT_S: Final = 1.0


class ServiceTable:
    def __init__(
        self,
        store: Store,
        reverse: Mapping[int, tuple[ReversePgn, ...]],
        senders: Senders,
        label: str,
        counts: Counter[str],
        clock: Callable[[], float],
    ) -> None:
        self.store, self.reverse, self.senders = store, reverse, senders
        self.label, self.counts, self.clock = label, counts, clock
        self.services: dict[str, Service] = {}

    def claim(self, event: Claim) -> None:
        """A (new) claim: services heard before it are re-keyed to the NAME; a sender that
        moved to another address keeps its services."""
        src, name = event.address, event.name
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

    def decoded(self, event: Decoded) -> None:
        if event.pgn == PRODUCT:
            self._text(event.address, event.fields.get("modelId"), self.senders.products, "/ProductName")
        elif event.pgn == CONFIGURATION:
            text = event.fields.get("installationDescription1")
            self._text(event.address, text, self.senders.descriptions, "/CustomName")
        else:
            self._data(event)

    def _text(self, src: int, value: object, table: dict[str, str], path: str) -> None:
        if isinstance(value, str) and value.strip():
            sender = self.senders.sender(src)
            table[sender] = value.strip()
            for svc in self.services.values():
                if svc.key.startswith(sender + "/"):
                    self._publish(svc, {path: value.strip()})

    def _data(self, event: Decoded) -> None:
        src = event.address
        candidates = self.reverse[event.pgn]
        name = self.senders.names.get(src)
        rev = candidates[0]
        if name is not None:  # a PGN two roles send (127508): the sender's device function picks
            rev = next((r for r in candidates if r.device_function == function_of(name)), rev)
        data_instance, values = rev.values_of(event.fields)
        sender = self.senders.sender(src)
        key = f"{sender}/{rev.service}/{data_instance}"
        now = self.clock()
        svc = self.services.get(key) or self._new_service(key, rev.service, data_instance, src, now)
        if svc is None:
            return
        svc.heard(event.pgn, now)
        svc.paths.update(values)
        if not svc.connected:
            svc.connected = True
            values["/Connected"] = 1
            log.info("%s: %s %s instance %d is back", self.label, rev.service, sender, data_instance)
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
        log.info("%s: %s instance %d from %s at unit id %d", self.label, service, data_instance, sender, instance)
        return svc

    def _connection(self, src: int) -> str:
        return f"NMEA 2000 {self.label} address {src}"

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
                self._publish(svc, {"/Connected": 0, **dict.fromkeys(svc.paths)})
                log.info("%s: %s unit id %d is silent; /Connected 0", self.label, svc.key, svc.instance)

    def remove_all(self) -> None:
        for svc in self.services.values():
            self.store.remove_device(svc.service, svc.instance)
        self.services.clear()
