"""Simulators of devices the gateway reads over a network, speaking their real protocol on
real sockets (SunSpec inverters over Modbus-TCP, the Fronius Solar API over HTTP, energy
meters), so the same drivers run against them and against hardware. Each follows the plant
(``gateway/sim/plant.py``) and can go offline, return "not available" values and come back.
"""
