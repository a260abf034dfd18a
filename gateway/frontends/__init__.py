"""Frontends: the Store served over a protocol, each on the compiled map. ``modbus/`` (the GX
register list over Modbus-TCP), ``n2k/`` (virtual NMEA 2000 devices on a CAN bus), ``http/``
(the MFD app and the JSON API) and ``mqtt/`` (the Venus topics). A frontend depends on the
core and the transports only: never on a source, a rule or another frontend
(tests/unit/test_rooms.py). Every write it takes goes through the one write gate.
"""
