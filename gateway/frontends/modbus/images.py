"""Per-device register images, kept current as the Store changes.

A read is then a slice of bytes: the request path never encodes a value. Each device of a
service type in the CompiledMap gets one bytearray covering that type's address range;
values are encoded into it when they change (plus the derived registers that depend on
them). A device whose ``/Connected`` is 0 (a driver lost it) has no image, so its unit id
answers exception 0x0A, as a GX answers for a service that went away. Volatile derived
registers (``unix_time()``) are refreshed by ``refresh_volatile``,
which the server calls once a second.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.core.derived import evaluate
from gateway.core.store import Device
from registers.model import CompiledMap, ModbusRegister, ModbusTable


class _TablePlan:
    """Precomputed, per service type: which registers to re-encode when a path changes."""

    __slots__ = ("blank", "dependents", "table", "volatile")

    def __init__(self, table: ModbusTable, invalid_zero: bool) -> None:
        self.table = table
        dependents: dict[str, list[ModbusRegister]] = {}
        volatile: list[ModbusRegister] = []
        image = bytearray(2 * (table.high - table.low))
        for r in table.registers:
            off = 2 * (r.address - table.low)
            image[off : off + 2 * r.codec.width] = r.zero if invalid_zero else r.na
            if r.reserved:
                continue
            if r.derive is None:
                dependents.setdefault(r.path, []).append(r)
            elif r.derive.volatile:
                volatile.append(r)
            else:
                for p in r.derive.paths:
                    dependents.setdefault(p, []).append(r)
        self.blank = bytes(image)
        self.dependents = {p: tuple(rs) for p, rs in dependents.items()}
        self.volatile = tuple(volatile)


class RegisterImages:
    """A Store listener; ``by_service[service][instance]`` is the device's register image."""

    def __init__(self, cmap: CompiledMap, invalid_zero: bool = False) -> None:
        self.cmap = cmap
        self.invalid_zero = invalid_zero
        self._plans = {name: _TablePlan(t, invalid_zero) for name, t in cmap.modbus.tables.items()}
        self.by_service: dict[str, dict[int, bytearray]] = {name: {} for name in cmap.modbus.tables}
        self._devices: dict[tuple[str, int], Device] = {}

    # --- Store listener ----------------------------------------------------------------
    def device_added(self, device: Device) -> None:
        plan = self._plans.get(device.service)
        if plan is None:
            return  # a service type with no registers (nothing to serve over Modbus)
        self._devices[device.key] = device
        if device.get("/Connected") == 0:
            return  # a driver's device that does not answer: its unit id answers 0x0A
        self.by_service[device.service][device.instance] = bytearray(plan.blank)
        self._encode(device, plan, [r for r in plan.table.registers if not r.reserved])

    def device_removed(self, device: Device) -> None:
        images = self.by_service.get(device.service)
        if images is not None:
            images.pop(device.instance, None)
        self._devices.pop(device.key, None)

    def values_changed(self, device: Device, paths: Iterable[str]) -> None:
        plan = self._plans.get(device.service)
        if plan is None:
            return
        if "/Connected" in paths:  # a driver lost or found its device: 0x0A while it is away
            self.device_removed(device)
            self.device_added(device)
            return
        deps = plan.dependents
        todo: list[ModbusRegister] = []
        for p in paths:
            rs = deps.get(p)
            if rs is not None:
                todo.extend(rs)
        if todo:
            self._encode(device, plan, todo)

    # --- encoding ----------------------------------------------------------------------
    def refresh_volatile(self) -> None:
        for plan in self._plans.values():
            if plan.volatile:
                for device in [d for d in self._devices.values() if d.service == plan.table.name]:
                    self._encode(device, plan, plan.volatile)

    def _encode(self, device: Device, plan: _TablePlan, registers: Iterable[ModbusRegister]) -> None:
        image = self.by_service[device.service].get(device.instance)
        if image is None:
            return
        low = plan.table.low
        zero = self.invalid_zero
        for r in registers:
            value = evaluate(r.derive, device.get) if r.derive is not None else device.get(r.path)
            if value is None:
                data = r.zero if zero else r.na
            else:
                data = r.encode(value)
            off = 2 * (r.address - low)
            image[off : off + len(data)] = data
