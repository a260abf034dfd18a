"""gx-gateway: Modbus-TCP (and later NMEA 2000 / MFD) gateway over one live Store."""
