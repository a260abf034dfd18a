"""The ``gx-gateway`` command: ``main.py`` builds the parser from one module per command group
(``maps``, ``run``, ``simulate``, ``scan``; ``status`` and ``export`` live in gateway/ops)."""
