"""CPU time of one ``RequestHandler.read`` (the Modbus hot path in user space), best of 9 × 1e6.

Measures what counting requests costs on the read path without sockets or the kernel, which
dominate (and blur) ``make bench``. Compare two checkouts by importing the other one:

    .venv/bin/python tests/bench/read_path.py
    PYTHONPATH=/path/to/other/checkout .venv/bin/python tests/bench/read_path.py
"""

from __future__ import annotations

import time
import timeit

import gateway.frontends.modbus.pdu as pdu
from gateway.core.store import Store
from gateway.core.writes import WriteGate
from gateway.frontends.modbus.images import RegisterImages
from registers import load_default


def main() -> None:
    cmap = load_default()
    store = Store()
    store.add_device("vebus", 276, values={"/Mode": 3})
    images = RegisterImages(cmap, invalid_zero=True)
    store.subscribe(images)
    handler = pdu.RequestHandler(cmap, images.by_service, WriteGate(store, cmap))
    n = 1_000_000
    runs = timeit.repeat(
        "read(1, 227, 3, 3, 10)", globals={"read": handler.read}, number=n, repeat=9, timer=time.process_time
    )
    print(f"{pdu.__file__}: {min(runs) / n * 1e9:.0f} ns CPU per read of 10 registers (best of 9 x {n:,})")


if __name__ == "__main__":
    main()
