"""Energy-meter simulators: any model of mappings/devices served over Modbus-TCP.

The register image comes from the same compiled model the driver decodes with: every planned
block is readable (gaps read as zero), the probe register answers a matching model id, and
values are encoded by the model's own fields (so a low-word-first meter sends low words first).
It starts on the model's first sample dump; ``set`` changes values, ``invalid`` sends the
meter's "not available" values (NaN for float meters, the declared sentinels otherwise), and
the device can go offline, hang or answer exceptions (see ModbusDevice).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.core.store import Store
from gateway.sim.protocols.modbus_device import ModbusDevice, RegisterBank
from registers.meters import MeterModel
from registers.values import Scalar, as_number


class MeterSimulator(ModbusDevice):
    def __init__(self, model: MeterModel, unit: int = 1) -> None:
        banks: dict[int, RegisterBank] = {}
        for block in model.blocks:
            banks.setdefault(block.function, RegisterBank()).cover(block.address, block.count)
        if model.probe is not None:
            probe = model.probe
            banks.setdefault(probe.function, RegisterBank()).put(probe.address, probe.example())
        super().__init__(banks, {unit})
        self.model = model
        self.unit = unit
        self.values: dict[str, Scalar] = {}
        if model.samples:
            self.set(model.samples[0].expected)

    def set(self, values: Mapping[str, Scalar]) -> None:
        """Put values (path -> value, None = "not available") into the registers."""
        for f in self.model.fields:
            if f.path in values:
                self.values[f.path] = values[f.path]
                self.banks[f.function].put(f.address, f.encode(values[f.path]))

    def invalid(self, paths: list[str] | None = None) -> None:
        """Send "not available" (NaN / sentinels) for ``paths`` (default: every numeric path)."""
        chosen = paths if paths is not None else [f.path for f in self.model.fields if f.codec.form != "string"]
        self.set(dict.fromkeys(chosen))

    def load_sample(self, index: int) -> None:
        """Serve the raw words of one of the model's sample dumps."""
        sample = self.model.samples[index]
        for (function, address), data in sample.words.items():
            self.banks[function].put(address, data)
        self.values.update(sample.expected)


PHASES = ("L1", "L2", "L3")


def site_grid_values(store: Store, loads_w: tuple[float, float, float], volts: float = 230.0) -> dict[str, Scalar]:
    """What a grid meter of the simulated site reads, per phase: the inverter/charger's AC input
    plus ``loads_w`` on the AC input, less the PV inverters on the AC input (import positive)."""
    values: dict[str, Scalar] = {}
    total = 0.0
    for i, ph in enumerate(PHASES):
        watts = loads_w[i]
        for d in store.devices("vebus"):
            watts += as_number(d.get(f"/Ac/ActiveIn/{ph}/P")) or 0.0
        for d in store.devices("pvinverter"):
            if as_number(d.get("/Position")) in (0.0, 2.0):
                watts -= as_number(d.get(f"/Ac/{ph}/Power")) or 0.0
        watts = round(watts, 1)
        total += watts
        values[f"/Ac/{ph}/Power"] = watts
        values[f"/Ac/{ph}/Voltage"] = volts
        values[f"/Ac/{ph}/Current"] = round(abs(watts) / volts, 3)
    values["/Ac/Power"] = round(total, 1)
    return values
