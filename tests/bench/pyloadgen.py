"""Fallback Modbus-TCP load generator for tests/bench/modbus_bench.py (no C compiler/libmodbus).

Same interface and output as c/loadgen.c: N connections, one FC3/FC4 request in flight on
each, "START"/"STOP" when the measurement window opens/closes, then one JSON line. One
thread, uvloop when installed. Like the C one it can saturate its own core before a fast
server does; the bench reports the load generator's core usage so that shows.

usage: pyloadgen.py -p PORT [-n CONNS] [-u UNIT] [-a ADDR] [-c COUNT] [-f 3|4] [-w S] [-d S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import time

MAX_SAMPLES = 1_000_000  # per connection: bounds memory and the loop whatever the rate
MAX_ERRORS = 1000


async def worker(
    port: int, unit: int, fc: int, addr: int, count: int, t0: float, t1: float, lat: list[int]
) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors, first_error, tid = 0, "", 0
    reply_len = 9 + 2 * count
    try:
        start = time.perf_counter_ns()
        while start < t1 and len(lat) < MAX_SAMPLES and errors < MAX_ERRORS:
            tid = (tid + 1) & 0xFFFF
            writer.write(struct.pack(">HHHBBHH", tid, 0, 6, unit, fc, addr, count))
            head = await reader.readexactly(8)
            rtid, _, length, _, rfc = struct.unpack(">HHHBB", head)
            body = await reader.readexactly(length - 2)
            end = time.perf_counter_ns()
            if rtid != tid or rfc != fc or 8 + len(body) != reply_len:
                errors += 1
                first_error = first_error or f"bad reply: fc {rfc:#x}, {8 + len(body)} bytes"
            elif start >= t0 and end <= t1:
                lat.append(end - start)
            start = end
    except (OSError, asyncio.IncompleteReadError) as e:
        errors += 1
        first_error = first_error or repr(e)
    finally:
        writer.close()
    return errors, first_error


async def main(args: argparse.Namespace) -> None:
    now = time.perf_counter_ns()
    t0 = now + int(args.warmup * 1e9)
    t1 = t0 + int(args.duration * 1e9)
    lats: list[list[int]] = [[] for _ in range(args.threads)]
    tasks = [
        asyncio.create_task(worker(args.port, args.unit, args.fc, args.addr, args.count, t0, t1, lat)) for lat in lats
    ]
    await asyncio.sleep(max(0.0, (t0 - time.perf_counter_ns()) / 1e9))
    print("START", flush=True)
    await asyncio.sleep(max(0.0, (t1 - time.perf_counter_ns()) / 1e9))
    print("STOP", flush=True)
    results = await asyncio.gather(*tasks)
    all_lat = sorted(x for lat in lats for x in lat)
    n = len(all_lat)
    out = {
        "requests": n,
        "seconds": args.duration,
        "p50_us": round(all_lat[n // 2] / 1e3, 1) if n else 0.0,
        "p99_us": round(all_lat[int(n * 0.99)] / 1e3, 1) if n else 0.0,
        "errors": sum(e for e, _ in results),
        "threads": args.threads,
        "capped": any(len(lat) >= MAX_SAMPLES for lat in lats),
        "first_error": next((f for _, f in results if f), ""),
        "loadgen": "python-asyncio",
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-p", dest="port", type=int, required=True)
    parser.add_argument("-n", dest="threads", type=int, default=1)
    parser.add_argument("-u", dest="unit", type=int, default=1)
    parser.add_argument("-a", dest="addr", type=int, default=0)
    parser.add_argument("-c", dest="count", type=int, default=10)
    parser.add_argument("-f", dest="fc", type=int, choices=(3, 4), default=3)
    parser.add_argument("-w", dest="warmup", type=float, default=0.5)
    parser.add_argument("-d", dest="duration", type=float, default=3.0)
    args = parser.parse_args()
    if not (0 < args.port < 65536 and 1 <= args.threads <= 64 and 1 <= args.count <= 125 and 0 < args.duration <= 60):
        parser.error("bad arguments")
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(args))
    else:
        uvloop.run(main(args))
