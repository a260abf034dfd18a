"""Where devices named by name are reachable: ``[[simulator]]`` servers started by this gateway.

The simulators component starts before the sources and records each simulator's address
(loopback, an ephemeral port) here; a ``[[device]]`` with ``simulator = "NAME"`` is pointed
at it when its driver starts. One ``Endpoints`` per gateway, so gateways in one process
(tests) never see each other's simulators.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from gateway.core.components import StartupError


class Addressed(Protocol):
    """A ``[[device]]`` as far as its address goes (gateway.sources.registry.DeviceConfig)."""

    @property
    def options(self) -> Mapping[str, Any]: ...


class Endpoints:
    def __init__(self) -> None:
        self._addresses: dict[str, tuple[str, int]] = {}

    def register(self, name: str, address: tuple[str, int]) -> None:
        self._addresses[name] = address

    def forget(self, name: str) -> None:
        self._addresses.pop(name, None)

    def of(self, device: Addressed) -> tuple[str, int]:
        """Where a ``[[device]]`` is: its ``simulator``'s address, else its ``host`` and ``port``."""
        options = device.options
        simulator = options.get("simulator")
        if simulator:
            return self.address(str(simulator))
        return str(options["host"]), int(options["port"])

    def address(self, name: str) -> tuple[str, int]:
        try:
            return self._addresses[name]
        except KeyError:
            raise StartupError(f"simulator {name!r} is not running (no [[simulator]] of that name)") from None
