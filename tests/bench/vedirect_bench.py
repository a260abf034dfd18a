"""VE.Direct benchmark: 25 ports at one block a second, CPU and RSS of the gateway reading them.

Run from the repository root::

    .venv/bin/python tests/bench/vedirect_bench.py [--ports 25] [--duration 20]

Three processes: the simulators (this script with ``--simulate``: 25 ``VeDirectSim`` on ptys
behind links), then in turn (1) the floor: a process that merely reads the same bytes off the
same ptys (asyncio readers, nothing parsed), and (2) ``gx-gateway run`` with 25 ``vedirect``
devices and the Modbus frontend. For each, CPU time over the window / wall time (% of one
core) and VmRSS from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GX = Path(sys.executable).parent / "gx-gateway"
FLOOR = """
import asyncio, os, sys
async def main():
    loop = asyncio.get_running_loop()
    for path in sys.argv[1:]:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        loop.add_reader(fd, lambda fd=fd: os.read(fd, 4096))
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


MODBUS_PORT = 15020
USB_UNITS = range(231, 240)  # instances 296..288: the first nine ports (the rest have no unit id)


def answering() -> int:
    """How many of the first nine ports' devices answer over Modbus (V at 771 or 259)."""
    from pymodbus.client import ModbusTcpClient

    client = ModbusTcpClient("127.0.0.1", port=MODBUS_PORT)
    client.connect()
    try:
        return sum(
            any(not client.read_holding_registers(a, count=1, device_id=u).isError() for a in (771, 259))
            for u in USB_UNITS
        )
    finally:
        client.close()


def measure(proc: subprocess.Popen[str], duration: float) -> tuple[float, float]:
    time.sleep(3)  # settle: the ports opened, first blocks in
    c0, t0 = cpu_s(proc.pid), time.monotonic()
    time.sleep(duration)
    c1, t1 = cpu_s(proc.pid), time.monotonic()
    return 100 * (c1 - c0) / (t1 - t0), rss_mb(proc.pid)


async def simulate(folder: Path, ports: int) -> None:
    sys.path.insert(0, str(ROOT))
    from gateway.sim.vedirect_sim import VeDirectSim

    sims = [VeDirectSim("mppt" if i % 2 else "smartshunt", link=folder / f"ve{i}") for i in range(ports)]
    for sim in sims:
        await sim.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", type=int, default=25)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--simulate", metavar="DIR")
    args = ap.parse_args()
    if args.simulate:
        asyncio.run(simulate(Path(args.simulate), args.ports))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sims = subprocess.Popen(
            [sys.executable, __file__, "--simulate", tmp, "--ports", str(args.ports)], stdout=subprocess.PIPE, text=True
        )
        assert sims.stdout is not None and sims.stdout.readline().strip() == "ready"
        links = [str(folder / f"ve{i}") for i in range(args.ports)]
        try:
            floor = subprocess.Popen([sys.executable, "-c", FLOOR, *links], stdout=subprocess.PIPE, text=True)
            assert floor.stdout is not None and floor.stdout.readline().strip() == "ready"
            floor_cpu, floor_rss = measure(floor, args.duration)
            floor.terminate()
            floor.wait(5)
            devices = "".join(f'[[device]]\ndriver = "vedirect"\nport = "{p}"\n' for p in links)
            config = folder / "gateway.toml"
            config.write_text(f'state_dir = "{folder / "state"}"\n[modbus]\nlisten = "127.0.0.1:0"\n{devices}')
            config.write_text(config.read_text().replace(":0", f":{MODBUS_PORT}"))
            gw = subprocess.Popen([str(GX), "run", "--config", str(config)], stderr=subprocess.DEVNULL, cwd=ROOT)
            gw_cpu, gw_rss = measure(gw, args.duration)
            found = answering()
            gw.terminate()
            gw.wait(5)
        finally:
            sims.terminate()
            sims.wait(5)
    print(f"{args.ports} VE.Direct ports, 1 block/s each, {args.duration:g} s window")
    print(f"  floor (read the bytes only): {floor_cpu:5.2f} % of a core, RSS {floor_rss:5.1f} MB")
    print(
        f"  gx-gateway run (vedirect):   {gw_cpu:5.2f} % of a core, RSS {gw_rss:5.1f} MB ({found} of {len(USB_UNITS)} unit ids answering)"
    )


if __name__ == "__main__":
    main()
