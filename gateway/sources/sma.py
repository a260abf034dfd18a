"""The ``sma`` driver: SMA inverters over SMA's own Modbus profile (unit 3, registers 30xxx).

For SMA inverters that do not speak SunSpec. Their registers are data like a meter's
(mappings/devices/sma-native.csv: power, yield, per-phase voltage and current, frequency,
with SMA's NaN values declared invalid), so this driver is the meter driver with that one
model, unit 3 and the pvinverter role.
"""

from __future__ import annotations

from typing import Final

from gateway.sources.meter import ModbusDevices
from gateway.sources.registry import DeviceConfig, DriverSpec, common, common_default

MODEL: Final = "sma-native"


class SmaDevices(ModbusDevices):
    driver = "sma"

    def role(self, d: DeviceConfig) -> str:
        return "pvinverter"

    def model_name(self, d: DeviceConfig) -> str | None:
        return MODEL


SPEC: Final = DriverSpec(
    name="sma",
    doc="an SMA inverter over SMA's native Modbus profile (not SunSpec), Modbus-TCP",
    keys=(
        *common("host", "port"),
        common_default("unit", 3),  # SMA's native profile answers at unit 3
        *common("position", "poll_interval_s", "simulator"),
    ),
    service=lambda d: "pvinverter",
    build=SmaDevices,
)
