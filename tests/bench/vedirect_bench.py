"""Serial benchmark: 25 VE.Direct ports at one block a second, one CAN-bus BMS and 4 Modbus RTU
meters polled once a second; CPU and RSS of the gateway reading them.

Run from the repository root (with ``nice``: the machine is shared)::

    nice .venv/bin/python tests/bench/vedirect_bench.py [--ports 25] [--meters 4] [--duration 20]

Three processes: the simulators (this script with ``--simulate``: 25 ``VeDirectSim`` on ptys
behind links, and an ``RtuBusSim`` with the meters on one more pty), then in turn (1) the
floor: a process that merely moves the same bytes (asyncio readers on the VE.Direct ptys,
nothing parsed; the meters' planned read requests written once a second, prebuilt with their
CRC, the answers read and not decoded; the BMS frames' lines read off their file once a
second), and (2) ``gx-gateway run`` with 25 ``vedirect`` devices, the ``meter`` devices with
``transport = "rtu"``, a ``canbms`` device replaying a candump log of 1 Hz BMS frames
(``candump-replay:``, as no virtual CAN crosses processes here) and the Modbus frontend. For
each, CPU time over the window / wall time (% of one core) and VmRSS from /proc.
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
import asyncio, os, sys, termios, tty
async def main():
    loop = asyncio.get_running_loop()
    bus, requests, candump, *ports = sys.argv[1:]
    for path in ports:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        loop.add_reader(fd, lambda fd=fd: os.read(fd, 4096))
    frames = [bytes.fromhex(r) for r in requests.split(",") if r]
    rtu = os.open(bus, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY)
    tty.setraw(rtu)
    got = asyncio.Event()
    loop.add_reader(rtu, lambda: (os.read(rtu, 4096), got.set()))
    lines = open(candump).readlines()
    per_second = max(1, len([x for x in lines if x.startswith(lines[0][:12])]))
    print("ready", flush=True)
    i = 0
    while True:
        for frame in frames:
            got.clear()
            os.write(rtu, frame)
            try:
                async with asyncio.timeout(0.3):
                    await got.wait()
            except TimeoutError:
                pass
        _ = lines[i : i + per_second]
        i += per_second
        await asyncio.sleep(1.0)
asyncio.run(main())
"""
METERS = ("em24", "em540", "et340", "sdm630")  # on one bus, units 1..4


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


def meters_answering(meters: int) -> int:
    """How many RTU meters' unit ids (the grid meter's, the AC loads') answer a valid L1 power."""
    from pymodbus.client import ModbusTcpClient

    from registers import load_default

    modbus = load_default().modbus
    client = ModbusTcpClient("127.0.0.1", port=MODBUS_PORT)
    client.connect()
    try:
        up = 0
        for u in range(1, meters + 1):
            service = "grid" if u == 1 else "acload"
            unit = modbus.unit_for_instance(40 + u)
            assert unit is not None
            register = modbus.tables[service].by_path["/Ac/L1/Power"][0]
            answer = client.read_holding_registers(register.address, count=1, device_id=unit)
            up += not answer.isError() and answer.registers[0] != register.na_raw
        return up
    finally:
        client.close()


def measure(proc: subprocess.Popen[str], duration: float) -> tuple[float, float]:
    time.sleep(3)  # settle: the ports opened, first blocks in
    c0, t0 = cpu_s(proc.pid), time.monotonic()
    time.sleep(duration)
    c1, t1 = cpu_s(proc.pid), time.monotonic()
    return 100 * (c1 - c0) / (t1 - t0), rss_mb(proc.pid)


async def simulate(folder: Path, ports: int, meters: int) -> None:
    sys.path.insert(0, str(ROOT))
    from gateway.sim.protocols.meter_sim import MeterSimulator
    from gateway.sim.rtu_sim import RtuBusSim
    from gateway.sim.vedirect_sim import VeDirectSim
    from registers import load_default
    from registers.meters import meter_models

    sims = [VeDirectSim("mppt" if i % 2 else "smartshunt", link=folder / f"ve{i}") for i in range(ports)]
    for sim in sims:
        await sim.start()
    models = meter_models(load_default())
    bus = RtuBusSim(
        {u + 1: MeterSimulator(models[m], unit=u + 1) for u, m in enumerate(METERS[:meters])}, folder / "rs485"
    )
    await bus.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


def rtu_requests(meters: int) -> list[str]:
    """The read requests the driver sends each poll (its planned blocks), as RTU frames in hex."""
    from gateway.sim.rtu_sim import crc16
    from registers import load_default
    from registers.meters import meter_models

    models = meter_models(load_default())
    out = []
    for unit, name in enumerate(METERS[:meters], start=1):
        for b in models[name].blocks:
            if not b.identity:
                adu = bytes((unit, b.function)) + b.address.to_bytes(2, "big") + b.count.to_bytes(2, "big")
                out.append((adu + crc16(adu)).hex())
    return out


def write_candump(path: Path, seconds: int) -> None:
    """A BMS's frames once a second for ``seconds``, as candump -L lines."""
    from gateway.transports.can_raw import RawFrame, format_candump_line
    from registers.canbms_frames import encode_frames

    values = {"/Soc": 76, "/Soh": 98, "/Dc/0/Voltage": 51.8, "/Dc/0/Current": -8.0, "/Dc/0/Temperature": 21.4}
    values |= {"/Info/MaxChargeVoltage": 53.2, "/Info/MaxChargeCurrent": 50.0, "/Info/MaxDischargeCurrent": 100.0}
    values |= {"/System/MinCellVoltage": 3.231, "/System/MaxCellVoltage": 3.244}
    lines = []
    for t in range(seconds):
        for can_id, data in encode_frames(values, {}, "PYLON").items():
            lines.append(format_candump_line(RawFrame(1_000_000.0 + t, can_id, False, data)))
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", type=int, default=25)
    ap.add_argument("--meters", type=int, default=4, choices=range(1, len(METERS) + 1))
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--simulate", metavar="DIR")
    args = ap.parse_args()
    if args.simulate:
        asyncio.run(simulate(Path(args.simulate), args.ports, args.meters))
        return
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sims = subprocess.Popen(
            [sys.executable, __file__, "--simulate", tmp, "--ports", str(args.ports), "--meters", str(args.meters)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert sims.stdout is not None and sims.stdout.readline().strip() == "ready"
        links = [str(folder / f"ve{i}") for i in range(args.ports)]
        bus, candump = str(folder / "rs485"), folder / "bms.candump"
        write_candump(candump, int(2 * args.duration + 30))
        requests = ",".join(rtu_requests(args.meters))
        try:
            floor = subprocess.Popen(
                [sys.executable, "-c", FLOOR, bus, requests, str(candump), *links], stdout=subprocess.PIPE, text=True
            )
            assert floor.stdout is not None and floor.stdout.readline().strip() == "ready"
            floor_cpu, floor_rss = measure(floor, args.duration)
            floor.terminate()
            floor.wait(5)
            devices = "".join(f'[[device]]\ndriver = "vedirect"\nport = "{p}"\n' for p in links)
            devices += "".join(
                f'[[device]]\ndriver = "meter"\ntransport = "rtu"\nport = "{bus}"\nunit = {u}\ninstance = {40 + u}\n'
                f'model = "{m}"\nrole = "{"grid" if u == 1 else "acload"}"\n'
                for u, m in enumerate(METERS[: args.meters], start=1)
            )
            devices += f'[[device]]\ndriver = "canbms"\ninterface = "candump-replay:{candump}"\ninstance = 512\n'

            config = folder / "gateway.toml"
            config.write_text(f'state_dir = "{folder / "state"}"\n[modbus]\nlisten = "127.0.0.1:0"\n{devices}')
            config.write_text(config.read_text().replace(":0", f":{MODBUS_PORT}"))
            gw = subprocess.Popen([str(GX), "run", "--config", str(config)], stderr=subprocess.DEVNULL, cwd=ROOT)
            gw_cpu, gw_rss = measure(gw, args.duration)
            found = answering()
            meters_up = meters_answering(args.meters)
            gw.terminate()
            gw.wait(5)
        finally:
            sims.terminate()
            sims.wait(5)
    print(
        f"{args.ports} VE.Direct ports at 1 block/s, a BMS and {args.meters} RTU meters at 1 Hz, {args.duration:g} s window"
    )
    print(f"  floor (move the bytes only): {floor_cpu:5.2f} % of a core, RSS {floor_rss:5.1f} MB")
    print(
        f"  gx-gateway run:              {gw_cpu:5.2f} % of a core, RSS {gw_rss:5.1f} MB "
        f"({found} of {len(USB_UNITS)} VE.Direct unit ids, {meters_up} of {args.meters} meters answering)"
    )


if __name__ == "__main__":
    main()
