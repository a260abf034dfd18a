"""Simulation: the plant (what a boat's energy system does, ``plant.py``), the in-process
Victron stand-ins that publish it (``victron.py``), and the protocol simulators of network
devices (``protocols/``) that the drivers poll over real sockets."""
