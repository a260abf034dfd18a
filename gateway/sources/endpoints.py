"""Where devices named by name are reachable: ``[[simulator]]`` servers started by this gateway.

The simulators component starts before the sources and records each simulator's address
(loopback, an ephemeral port) here; a ``[[device]]`` with ``simulator = "NAME"`` is pointed
at it when its driver starts. One ``Endpoints`` per gateway, so gateways in one process
(tests) never see each other's simulators.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.core.components import StartupError

if TYPE_CHECKING:
    from gateway.sources.registry import DeviceConfig


class Endpoints:
    def __init__(self) -> None:
        self._addresses: dict[str, tuple[str, int]] = {}

    def register(self, name: str, address: tuple[str, int]) -> None:
        self._addresses[name] = address

    def forget(self, name: str) -> None:
        self._addresses.pop(name, None)

    def of(self, device: DeviceConfig) -> tuple[str, int]:
        """Where a ``[[device]]`` is: its ``simulator``'s address, else its ``host`` and ``port``."""
        simulator = device.options.get("simulator")
        if simulator:
            return self.address(str(simulator))
        return str(device.option("host")), int(device.option("port"))

    def address(self, name: str) -> tuple[str, int]:
        try:
            return self._addresses[name]
        except KeyError:
            raise StartupError(f"simulator {name!r} is not running (no [[simulator]] of that name)") from None
