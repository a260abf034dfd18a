"""Modbus-TCP benchmark: gx-gateway's server against a bare pymodbus server and libmodbus.

Run from the repository root (``make bench`` prints; ``--write docs/BENCHMARKS.md`` also
records the results there)::

    .venv/bin/python tests/bench/modbus_bench.py [--write docs/BENCHMARKS.md]

Each server runs as its own process, pinned to CPU 0; the load generator (C, libmodbus
client API, tests/bench/c/loadgen.c) is pinned to CPU 1, so neither steals the other's core.
For every scenario (FC3 of 10 or 125 registers, 1 or 8 connections) we record requests/s,
p50/p99 latency, the server's CPU time per request (utime+stime from /proc/<pid>/stat over
the measurement window) and its resident memory (VmRSS). Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "tests" / "bench"
BUILD = BENCH / "_build"
PYTHON = Path(sys.executable)
GX = PYTHON.parent / "gx-gateway"

UNIT = 227  # vebus instance 276 in the default map (and the id the baseline servers serve)
ADDRESS = 3  # vebus registers 3..147 form one contiguous run: 125 registers fit
SCENARIOS = [(10, 1), (125, 1), (10, 8), (125, 8)]  # (registers per read, connections)
TARGET_VS_PYMODBUS = 4.0
TARGET_VS_LIBMODBUS = 0.4
TARGET_RSS_MB = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
NOTES_MARKER = "<!-- Hand-written notes below this line are kept when the file is regenerated. -->"


class BenchError(Exception):
    """A server that cannot be measured (did not start, or answers the check read wrongly)."""


@dataclass
class Server:
    name: str
    argv: list[str]
    note: str
    env: dict[str, str] | None = None  # extra environment (the baseline's PYTHONPATH)
    cwd: Path = ROOT  # the baseline runs in its own tree: `python -c` puts the cwd first on sys.path


@dataclass
class Result:
    server: str
    count: int
    conns: int
    requests: int
    seconds: float
    cpu_us: float  # server CPU time (user + system) per request
    sys_us: float  # of which in the kernel (system calls, TCP stack)
    server_core: float  # % of one core the server used in the window
    loadgen_core: float  # % of one core the load generator used
    cpu_busy: tuple[float, float]  # CPU 0 and 1 busy %, any process, irq and softirq included
    steal: float  # % of CPUs 0+1 taken by the hypervisor
    p50_us: float
    p99_us: float
    rss_mb: float
    errors: int
    first_error: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# --- /proc --------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # the command name may contain spaces
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # fields 14, 15 of proc(5)


def cpu_times() -> dict[int, tuple[int, int]]:
    """Per CPU (busy, steal) ticks from /proc/stat: whatever ran there, not only our processes."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu") or line.startswith("cpu "):
                continue
            name, *vals = line.split()
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in vals[:8])
            out[int(name[3:])] = (user + nice + system + irq + softirq, steal)
    return out


def status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


# --- environment --------------------------------------------------------------------------
def run_text(argv: list[str], timeout: float = 20.0) -> tuple[int, str]:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)
    return p.returncode, (p.stdout + p.stderr).strip()


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment(nproc: str, loadgen_kind: str, pinned: bool, repeat: int) -> dict[str, str]:
    rc, libmodbus = run_text(["pkg-config", "--modversion", "libmodbus"])
    rc_cc, cc = run_text(["cc", "--version"])
    rc_git, commit = run_text(["git", "rev-parse", "--short", "HEAD"])  # read-only
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": nproc,
        "cpu": cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "pymodbus": version("pymodbus"),
        "uvloop": version("uvloop"),
        "gx-gateway": version("gx-gateway") + (f" (commit {commit}, working tree as found)" if rc_git == 0 else ""),
        "libmodbus": libmodbus if rc == 0 else "not installed",
        "cc": cc.splitlines()[0] if rc_cc == 0 and cc else "not found",
        "load generator": loadgen_kind,
        "repeat": str(repeat),
        "pinning": "servers on CPU 0, load generator on CPU 1 (taskset)"
        if pinned
        else "none (taskset or 2nd CPU missing)",
    }


# --- building the C parts -----------------------------------------------------------------
def build_c() -> tuple[Path | None, Path | None, str]:
    """Compile the C load generator and libmodbus server: (loadgen, server, why not)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, None, "no C compiler (cc) found"
    rc, flags = run_text(["pkg-config", "--cflags", "--libs", "libmodbus"])
    if rc != 0:
        return None, None, "libmodbus not found by pkg-config (apt-get install libmodbus-dev)"
    BUILD.mkdir(exist_ok=True)
    out: list[Path] = []
    for name, extra in (("loadgen", ["-pthread"]), ("libmodbus_server", [])):
        src, exe = BENCH / "c" / f"{name}.c", BUILD / name
        if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
            argv = [cc, "-O2", "-Wall", "-o", str(exe), str(src), *shlex.split(flags), *extra]
            rc, msg = run_text(argv, timeout=120)
            if rc != 0:
                return None, None, f"compiling {src.name} failed: {msg}"
        out.append(exe)
    return out[0], out[1], ""


# --- talking Modbus -------------------------------------------------------------------------
def check_read(port: int, count: int) -> str | None:
    """One FC3 read of ``count`` registers at ADDRESS on UNIT: None if the reply is right."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
            s.sendall(struct.pack(">HHHBBHH", 0x4242, 0, 6, UNIT, 3, ADDRESS, count))
            reply = b""
            while len(reply) < 9 or len(reply) < 6 + struct.unpack_from(">H", reply, 4)[0]:
                chunk = s.recv(512)
                if not chunk:
                    return "connection closed without a reply"
                reply += chunk
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    tid, _, _, unit, fc = struct.unpack_from(">HHHBB", reply)
    if fc == 0x83:
        return f"Modbus exception {reply[8]:#04x} for unit {UNIT} register {ADDRESS} count {count}"
    if tid != 0x4242 or unit != UNIT or fc != 3 or reply[8] != 2 * count:
        return f"unexpected reply {reply.hex()}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- servers --------------------------------------------------------------------------------
def demo_available() -> tuple[bool, str]:
    if not GX.exists():
        return False, f"{GX} not found"
    rc, out = run_text([str(GX), "demo", "--help"])
    if rc != 0:
        return False, (out.splitlines() or ["?"])[-1]
    return True, out


def victron_only_config(port: int) -> Path:
    """demo.toml's in-process Victron devices alone (no network simulators, drivers or web):
    the installation the Modbus read path was first measured with, so before/after compare."""
    import tomllib

    demo = tomllib.loads((ROOT / "gateway" / "demo.toml").read_text(encoding="utf-8"))
    lines = ["[modbus]", f'listen = "127.0.0.1:{port}"', "writes = true", ""]
    for d in demo.get("device", []):
        if d.get("driver") == "simulated":
            lines += ["[[device]]", *(f"{k} = {json.dumps(v)}" for k, v in d.items()), ""]
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"gxgw-bench-{port}.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def baseline_server(rev: str, port: int) -> Server:
    """Our own demo at an older commit, from ``git archive`` into _build/: the same venv and
    machine, run side by side with today's code, so "as before or better" is one table."""
    rc, sha = run_text(["git", "-C", str(ROOT), "rev-parse", "--short", rev])
    if rc != 0:
        raise SystemExit(f"modbus_bench: --baseline {rev}: not a commit here ({sha.strip()})")
    tree = BUILD / f"baseline-{sha}"
    if not (tree / "gateway").is_dir():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    argv = [str(PYTHON), "-c", "import sys; from gateway.cli import main; sys.exit(main())"]
    argv += ["demo", "--modbus", f"127.0.0.1:{port}", "--http", f"127.0.0.1:{free_port()}"]
    note = f"gx-gateway demo at commit {sha} (git archive; same venv and loop)"
    return Server("baseline", argv, note, env={"PYTHONPATH": str(tree)}, cwd=tree)


def our_server(port: int, no_asserts: bool, workload: str = "demo") -> Server:
    py = [str(PYTHON), "-O"] if no_asserts else [str(PYTHON)]
    ok, info = demo_available()
    if ok and workload == "victron":
        gx = [*py, str(GX)] if no_asserts else [str(GX)]
        argv = [*gx, "run", "--config", str(victron_only_config(port))]
        return Server("ours", argv, "gx-gateway run: full map + the demo's simulated Victron devices only, uvloop")
    if ok:
        # The configuration we report RSS for: the full map plus the simulated installation.
        gx = [*py, str(GX)] if no_asserts else [str(GX)]
        argv = [*gx, "demo", "--modbus", f"127.0.0.1:{port}"]
        if "--http" in info:  # the JSON API's default port may be taken (a demo left running)
            argv += ["--http", f"127.0.0.1:{free_port()}"]
        return Server("ours", argv, "gx-gateway demo (full map + simulated installation, uvloop)")
    return Server(
        "ours",
        [*py, str(BENCH / "our_server.py"), str(port)],
        f"tests/bench/our_server.py (full map, one vebus device, uvloop); demo unavailable: {info}",
    )


@contextlib.contextmanager
def running(server: Server, port: int, pin: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, wait until it answers the check read correctly, always kill it."""
    log_path = BUILD / f"{server.name}.log"
    BUILD.mkdir(exist_ok=True)
    with open(log_path, "wb") as log:
        env = {**os.environ, **server.env} if server.env else None
        proc = subprocess.Popen([*pin, *server.argv], stdout=log, stderr=subprocess.STDOUT, cwd=server.cwd, env=env)
        try:
            deadline = time.monotonic() + 30.0  # the demo compiles the map and starts devices
            problem: str | None = "not started"
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise BenchError(f"{server.name}: exited with {proc.returncode}{log_tail(log_path)}")
                problem = check_read(port, 10) or check_read(port, 125)
                # Not listening yet, or (the demo) the device not published yet: wait. Else fail.
                if problem is None or not ("ConnectionRefused" in problem or "exception 0x0a" in problem):
                    break
                time.sleep(0.2)
            if problem is not None:
                raise BenchError(f"{server.name}: the check read failed: {problem}{log_tail(log_path)}")
            yield proc
        finally:
            stop(proc)


def log_tail(path: Path, lines: int = 3) -> str:
    """The end of a server's log (a traceback's last lines say most), for a failure message."""
    with contextlib.suppress(OSError):
        tail = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()][-lines:]
        if tail:
            return f"; {path} ends:\n      " + "\n      ".join(tail)
    return f"; see {path}"


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# --- one measurement ----------------------------------------------------------------------
def measure(
    server: str, pid: int, loadgen: list[str], port: int, count: int, conns: int, warmup: float, duration: float
) -> Result:
    argv = [*loadgen, "-p", str(port), "-n", str(conns), "-u", str(UNIT), "-a", str(ADDRESS), "-c", str(count)]
    argv += ["-w", str(warmup), "-d", str(duration)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    # The load generator stops by itself; this only guards against a wedged server.
    watchdog = threading.Timer(warmup + duration + 20.0, proc.kill)
    watchdog.start()
    marks: dict[str, tuple[float, tuple[float, float], tuple[float, float], dict[int, tuple[int, int]]]] = {}
    summary: dict[str, object] | None = None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            if line in ("START", "STOP"):
                marks[line] = (time.monotonic(), cpu_seconds(pid), cpu_seconds(proc.pid), cpu_times())
            elif line.startswith("{"):
                summary = json.loads(line)
        proc.wait(timeout=10)
        rss_mb = status_kb(pid, "VmRSS") / 1024
    except OSError as e:  # /proc/<pid> gone: the server died under load
        raise BenchError(f"{server}: the server exited during the measurement ({e})") from e
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().strip() if proc.stderr else ""
    if summary is None or "START" not in marks or "STOP" not in marks:
        raise BenchError(f"{server}: the load generator failed (exit {proc.returncode}): {err}")
    (w0, s0, l0, c0), (w1, s1, l1, c1) = marks["START"], marks["STOP"]
    requests = int(summary["requests"])  # type: ignore[call-overload]
    wall = w1 - w0
    server_cpu, server_sys = sum(s1) - sum(s0), s1[1] - s0[1]
    busy = tuple(100 * (c1[i][0] - c0[i][0]) / CLK_TCK / wall if i in c0 else float("nan") for i in (0, 1))
    steal = sum(c1[i][1] - c0[i][1] for i in (0, 1) if i in c0) / CLK_TCK / wall * 50
    return Result(
        server=server,
        count=count,
        conns=conns,
        requests=requests,
        seconds=float(summary["seconds"]),  # type: ignore[arg-type]
        cpu_us=server_cpu / requests * 1e6 if requests else float("nan"),
        sys_us=server_sys / requests * 1e6 if requests else float("nan"),
        server_core=100 * server_cpu / wall,
        loadgen_core=100 * (sum(l1) - sum(l0)) / wall,
        cpu_busy=(busy[0], busy[1]),
        steal=steal,
        p50_us=float(summary["p50_us"]),  # type: ignore[arg-type]
        p99_us=float(summary["p99_us"]),  # type: ignore[arg-type]
        rss_mb=rss_mb,
        errors=int(summary["errors"]),  # type: ignore[call-overload]
        first_error=str(summary.get("first_error", "")),
    )


# --- reporting -----------------------------------------------------------------------------
def fmt_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines[1] = "|---" + lines[1][5:]  # first column left-aligned
    return "\n".join(lines)


def results_table(results: list[Result]) -> str:
    headers = ["server", "regs", "conns", "req/s", "server CPU µs/req (sys)", "server core %", "loadgen core %"]
    headers += ["CPU0/CPU1 busy %"]
    headers += ["p50 µs", "p99 µs", "server RSS MB", "errors"]
    rows = [
        [
            r.server,
            str(r.count),
            str(r.conns),
            f"{r.rps:,.0f}",
            f"{r.cpu_us:.1f} ({r.sys_us:.1f})",
            f"{r.server_core:.0f}",
            f"{r.loadgen_core:.0f}",
            f"{r.cpu_busy[0]:.0f}/{r.cpu_busy[1]:.0f}",
            f"{r.p50_us:.0f}",
            f"{r.p99_us:.0f}",
            f"{r.rss_mb:.1f}",
            str(r.errors) + (f" ({r.first_error})" if r.errors else ""),
        ]
        for r in results
    ]
    return fmt_table(headers, rows)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def ratios_table(results: list[Result]) -> str:
    by = {(r.server, r.count, r.conns): r for r in results}
    rows = []
    for count, conns in SCENARIOS:
        ours = by.get(("ours", count, conns))
        if ours is None:
            continue
        row = [f"{count} regs × {conns} conn"]
        for other in ("pymodbus", "libmodbus"):
            o = by.get((other, count, conns))
            # throughput ratio; and CPU efficiency: their CPU per request / ours (>1 = we are cheaper)
            row += [ratio(ours.rps, o.rps), ratio(o.cpu_us, ours.cpu_us)] if o else ["n/a", "n/a"]
        rows.append(row)
    headers = ["scenario", "ours/pymodbus req/s", "pymodbus/ours CPU per req"]
    headers += ["ours/libmodbus req/s", "libmodbus/ours CPU per req"]
    if any(r.server == "baseline" for r in results):
        for row, (count, conns) in zip(rows, [sc for sc in SCENARIOS if ("ours", *sc) in by], strict=True):
            b = by.get(("baseline", count, conns))
            ours = by[("ours", count, conns)]
            row += [ratio(ours.rps, b.rps), ratio(b.cpu_us, ours.cpu_us)] if b else ["n/a", "n/a"]
        headers += ["ours/baseline req/s", "baseline/ours CPU per req"]
    return fmt_table(headers, rows)


def targets(results: list[Result], demo: bool) -> list[str]:
    by = {(r.server, r.count, r.conns): r for r in results}
    out = []
    for other, target in (("pymodbus", TARGET_VS_PYMODBUS), ("libmodbus", TARGET_VS_LIBMODBUS)):
        parts, met, measured = [], True, True
        for count in (10, 125):
            ours, o = by.get(("ours", count, 8)), by.get((other, count, 8))
            if ours is None or o is None or not o.rps:
                parts.append(f"{count} regs: not measured")
                measured = False
                continue
            r = ours.rps / o.rps
            met &= r >= target
            parts.append(f"{count} regs: {r:.2f}x")
        verdict = "NOT EVALUATED" if not measured else "MET" if met else "NOT MET"
        out.append(f"8 connections, ≥ {target:g}x {other} throughput: {verdict} ({'; '.join(parts)})")
    ours_rss = max((r.rss_mb for r in results if r.server == "ours"), default=0.0)
    if not ours_rss:
        out.append(f"RSS < {TARGET_RSS_MB:g} MB with the full map and the demo: not measured")
    elif demo:
        verdict = "MET" if ours_rss < TARGET_RSS_MB else "NOT MET"
        out.append(f"RSS < {TARGET_RSS_MB:g} MB with the full map and the demo: {verdict} ({ours_rss:.1f} MB peak)")
    else:
        out.append(
            f"RSS < {TARGET_RSS_MB:g} MB with the full map and the demo: NOT EVALUATED (demo unavailable; "
            f"fallback runner, full map + one device: {ours_rss:.1f} MB)"
        )
    return out


def caveats(results: list[Result]) -> list[str]:
    out = []
    capped = [r for r in results if r.loadgen_core >= 90]
    if capped:
        which = ", ".join(f"{r.server} {r.count}×{r.conns} (server core {r.server_core:.0f} %)" for r in capped)
        out.append(
            f"The load generator's core was saturated (≥ 90 %) in: {which}. There req/s is bounded by "
            "the client, so throughput ratios against these rows understate the gap between servers; "
            "server CPU µs/req (the CPU-per-request ratios) measures each server's cost."
        )
    # With 8 connections one side should be flat out; if neither CPU is, something else ran.
    disturbed = [r for r in results if r.conns > 1 and max(r.cpu_busy) < 85]
    if disturbed:
        which = ", ".join(
            f"{r.server} {r.count}×{r.conns} (CPU {r.cpu_busy[0]:.0f}/{r.cpu_busy[1]:.0f} %, steal {r.steal:.0f} %)"
            for r in disturbed
        )
        out.append(f"Neither CPU was saturated in: {which}: the run was probably disturbed; re-run.")
    if any(r.conns == 1 for r in results):
        out.append(
            "With 1 connection every request wakes an idle server (and client) process: latency and "
            "CPU per request are dominated by the kernel's wake-ups, not by the servers' code."
        )
    return out


def render_markdown(
    command: str, env: dict[str, str], servers: list[Server], results: list[Result], skipped: list[str], demo: bool
) -> str:
    lines = [
        "# Modbus-TCP benchmarks",
        "",
        "Generated by `tests/bench/modbus_bench.py`. Regenerate (≈ 2 minutes, from the repository root):",
        "",
        "```",
        ".venv/bin/python tests/bench/modbus_bench.py --write docs/BENCHMARKS.md",
        "```",
        "",
        "`make bench` runs the same measurement and only prints. FC3 reads of unit 227 (vebus 276),",
        f"register {ADDRESS}, 10 or 125 registers; 1 or 8 connections, each with one request in flight,",
        "back to back; each scenario is run `repeat` times and the best run (by req/s) is shown.",
        "All servers run at once and each repetition visits every server in turn (interleaved),",
        "so drift on the shared host is spread over all of them.",
        "Each server is its own process; server CPU time is utime+stime from /proc/<pid>/stat over",
        "the measurement window, divided by the requests served. CPU0/CPU1 busy is everything that",
        "ran on each core (/proc/stat, tick-sampled, so coarse when the cores idle often); with 8",
        "connections one of them should be near 100 %, else the run was disturbed.",
        "",
        f"Command: `{command}`",
        "",
        "## Environment",
        "",
        *[f"- {k}: {v}" for k, v in env.items()],
        "",
        "## Servers",
        "",
        *[f"- {s.name}: {s.note}" for s in servers],
        *[f"- skipped: {s}" for s in skipped],
        "",
        "## Results",
        "",
        results_table(results),
        "",
        "## Ratios",
        "",
        ratios_table(results),
        "",
        "## Targets",
        "",
        *[f"- {t}" for t in targets(results, demo)],
        *([""] + [f"Note: {c}" for c in caveats(results)] if caveats(results) else []),
        "",
    ]
    return "\n".join(lines)


def write_report(path: Path, text: str) -> None:
    kept = ""
    if path.exists():
        old = path.read_text()
        if NOTES_MARKER in old:
            kept = old.split(NOTES_MARKER, 1)[1]
    path.write_text(text + "\n" + NOTES_MARKER + (kept or "\n"))


# --- main ------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="FILE", help="also write the results as markdown (docs/BENCHMARKS.md)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per scenario (default 3)")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of warm-up per scenario (default 0.5)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per scenario; the best (by req/s) is reported (default 3)"
    )
    parser.add_argument(
        "--servers", default="ours,pymodbus,libmodbus", help="comma-separated subset of ours,pymodbus,libmodbus"
    )
    parser.add_argument(
        "--baseline", metavar="REV", help="also run our demo at an older commit, side by side (e.g. before a refactor)"
    )
    parser.add_argument("--python-loadgen", action="store_true", help="use the Python load generator even if C works")
    parser.add_argument(
        "--workload",
        choices=("demo", "victron"),
        default="demo",
        help="our server runs the whole demo (default), or only its simulated Victron devices: the "
        "installation of the first measurement, to compare the read path before/after",
    )
    parser.add_argument(
        "--no-asserts",
        action="store_true",
        help="run our server's Python with -O (a diagnostic: the report says so)",
    )
    args = parser.parse_args()
    if not 0 < args.duration <= 30 or not 0 <= args.warmup <= 10 or not 1 <= args.repeat <= 5:
        parser.error("--duration must be in (0, 30], --warmup in [0, 10], --repeat in [1, 5]")
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    if args.baseline:
        wanted.append("baseline")
    if unknown := set(wanted) - {"ours", "pymodbus", "libmodbus", "baseline"}:
        parser.error(f"unknown server(s): {', '.join(sorted(unknown))}")

    nproc = run_text(["nproc"])[1]  # before pinning ourselves: nproc honours the affinity mask
    pinned = shutil.which("taskset") is not None and len(os.sched_getaffinity(0)) >= 2
    pin_server, pin_loadgen = (["taskset", "-c", "0"], ["taskset", "-c", "1"]) if pinned else ([], [])
    if pinned:
        os.sched_setaffinity(0, {1})  # this script mostly waits; keep it off the server's core

    loadgen_exe, libmodbus_exe, why_no_c = build_c()
    if loadgen_exe is not None and not args.python_loadgen:
        loadgen = [*pin_loadgen, str(loadgen_exe)]
        loadgen_kind = "C, libmodbus client API, one thread per connection (tests/bench/c/loadgen.c)"
    else:
        loadgen = [*pin_loadgen, str(PYTHON), str(BENCH / "pyloadgen.py")]
        reason = "--python-loadgen" if args.python_loadgen else why_no_c
        loadgen_kind = f"Python asyncio fallback, one thread (tests/bench/pyloadgen.py; {reason})"
        print(f"NOTE: using the Python load generator: {reason}", file=sys.stderr)

    port_of: dict[str, int] = {}
    servers: list[Server] = []
    skipped: list[str] = []
    for name in wanted:
        port = port_of[name] = free_port()
        if name == "ours":
            s = our_server(port, args.no_asserts, args.workload)
            if args.no_asserts:
                s.note += "; run with python -O (assert statements disabled)"
            servers.append(s)
        elif name == "baseline":
            servers.append(baseline_server(args.baseline, port))
        elif name == "pymodbus":
            argv = [str(PYTHON), str(BENCH / "pymodbus_server.py"), str(port), "--unit", str(UNIT)]
            servers.append(Server(name, argv, f"bare pymodbus {version('pymodbus')} (SimDevice, default asyncio loop)"))
        elif libmodbus_exe is not None:
            servers.append(Server(name, [str(libmodbus_exe), str(port)], "libmodbus C server, select(), one thread"))
        else:
            skipped.append(f"libmodbus: {why_no_c}")
            print(f"SKIP libmodbus: {why_no_c}", file=sys.stderr)
    demo = any(s.name == "ours" and "demo" in s.argv for s in servers)

    results: list[Result] = []
    failed: list[str] = []
    with contextlib.ExitStack() as stack:
        # Every server up at once (idle, they cost nothing), each repetition visiting all of them
        # in turn: a slow minute on a shared host then slows every server alike, not only the
        # one whose turn it was (side by side, not one after another).
        procs: dict[str, subprocess.Popen[bytes]] = {}
        for server in servers:
            print(f"== {server.name}: {server.note}", file=sys.stderr)
            try:
                procs[server.name] = stack.enter_context(running(server, port_of[server.name], pin_server))
            except BenchError as e:
                print(f"FAILED {e}", file=sys.stderr)
                failed.append(str(e))
                skipped.append(str(e))
        live = [s for s in servers if s.name in procs]
        for count, conns in SCENARIOS:
            runs: dict[str, list[Result]] = {s.name: [] for s in live}
            for _ in range(args.repeat):
                for server in live:
                    name = server.name
                    try:
                        runs[name].append(
                            measure(
                                name, procs[name].pid, loadgen, port_of[name], count, conns, args.warmup, args.duration
                            )
                        )
                    except BenchError as e:
                        print(f"FAILED {e}", file=sys.stderr)
                        failed.append(str(e))
                        skipped.append(str(e))
            for server in live:
                if not runs[server.name]:
                    continue
                # Best of --repeat: on a shared machine a neighbour's burst only ever slows a run down.
                r = max(runs[server.name], key=lambda x: x.rps)
                results.append(r)
                print(
                    f"   {server.name:9s} {count:3d} regs × {conns} conn: {r.rps:9,.0f} req/s  {r.cpu_us:6.1f} µs CPU/req  "
                    f"p50 {r.p50_us:5.0f} µs  p99 {r.p99_us:5.0f} µs  RSS {r.rss_mb:5.1f} MB  errors {r.errors}",
                    file=sys.stderr,
                )
    results.sort(key=lambda r: [s.name for s in live].index(r.server))

    command = shlex.join([os.path.relpath(PYTHON, ROOT), os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
    env = environment(nproc, loadgen_kind, pinned, args.repeat)
    print()
    print(results_table(results))
    print()
    print(ratios_table(results))
    print()
    for t in targets(results, demo):
        print(t)
    for c in caveats(results):
        print("Note:", c)
    if args.write:
        path = Path(args.write)
        write_report(path, render_markdown(command, env, servers, results, skipped, demo))
        print(f"\nwrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
