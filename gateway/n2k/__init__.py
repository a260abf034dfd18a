"""NMEA 2000 out: the Store's devices as virtual NMEA 2000 devices on a CAN bus.

``frontend.py`` (the component and scheduler), ``device.py`` (NAME, address claim, network
management), ``assignments.py`` (persisted numbers), ``commands.py`` (126208), ``link.py`` and
``transport.py`` (the bus), ``budget.py`` (frames and bus load). Never imports gateway.sources.
"""

from gateway.n2k.frontend import N2kFrontend, N2kSettings

__all__ = ["N2kFrontend", "N2kSettings"]
