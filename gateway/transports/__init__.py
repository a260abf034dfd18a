"""Transports: the media devices are reached over, one module each, shared by every driver
(and frontend) that uses that medium: ``tcp.py`` (Modbus-TCP client links), ``http.py`` (one
HTTP client session per gateway), ``can.py`` (CAN buses and NMEA 2000 gateways: SocketCAN,
python-can's virtual bus, Yacht Devices RAW, Actisense, candump files) and ``link.py`` (keeps
a bus open with back-off). A transport knows bytes and frames, never paths or the Store.
"""
