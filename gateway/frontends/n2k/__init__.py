"""NMEA 2000 out: the Store's devices as virtual NMEA 2000 devices on a CAN bus.

``frontend.py`` (the component and scheduler), ``device.py`` (NAME, address claim, network
management), ``assignments.py`` (persisted numbers), ``commands.py`` (126208) and
``budget.py`` (frames and bus load); the bus itself is ``gateway/transports/can.py`` and
``gateway/transports/link.py``. Never imports a source.
"""
