"""Sources: device drivers over transports, publishing into the Store and carrying out the
writes the Store routes to their devices. ``registry.py`` (how a driver declares its
``[[device]]`` keys and is built), ``drivers.py`` (the table of drivers), one module per
driver (``sunspec``, ``fronius``, ``meter``, ``sma``, ``simulated``) with its decoding helpers,
``poller.py`` and ``device_state.py`` (the shared poll loop and online/offline bookkeeping) and
``network_scan.py`` (finding devices for ``gx-gateway scan``). Never imports a frontend.
"""
