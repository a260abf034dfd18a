"""The container image, built from our Dockerfile with Debian's podman, and its content run.

No registry is reachable from these machines, so the base image the Dockerfile names is made
here: debootstrap of Debian bookworm (minbase with python3, python3-venv, ca-certificates) from
the mirror apt uses, imported under that name, and reused once present. The build reaches the
package index through the host's CA bundle and pip configuration, mounted read-only. Containers
cannot start here (the OCI runtimes fail on setrlimit), so the image's content runs through
`podman image mount` and `chroot --userspec` as the image's USER, with the image's ENV: the
check, the demo on loopback ports (Modbus and /healthz answer), the HEALTHCHECK command, and the
image's CMD with its own config and a fresh state volume, as compose runs it.

Skipped with a reason where podman, debootstrap or root are missing; required in CI
(GXGW_REQUIRE_INTEROP=1, .ci/run installs podman and debootstrap). About 85 s on a fresh machine
(debootstrap and import ~50 s, build ~25 s, the runs ~6 s), about 30 s once the base exists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient

from tests.demo_process import DemoProcess
from tests.helpers import ROOT, need_interop

BASE = "docker.io/library/python:3.11-slim-bookworm"  # the Dockerfile's FROM, made here
IMAGE = f"localhost/gx-gateway:container-test-{os.getpid()}"  # runs side by side keep apart
CONFIG, STATE_DIR = "/etc/gx-gateway/gateway.toml", "/var/lib/gx-gateway"
SUITE = "bookworm"
STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Read-only into the build: pip reaches the index through a proxy whose CA only the host has.
BUILD_MOUNTS = ("/etc/ssl/certs", "/etc/pip.conf", "/etc/xdg/pip")

# Every step has its own timeout, all together well inside pytest's backstop: pytest-timeout's
# thread method ends the run without running `finally`, and the mounts must always be undone.
pytestmark = [pytest.mark.container, pytest.mark.interop, pytest.mark.timeout(900)]


def run(argv: Sequence[str], timeout: float, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run to completion in its own process group; on timeout the whole group is killed
    (podman's build steps and debootstrap's chroot children would outlive a plain kill)."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kw
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # first TERM: debootstrap's exit trap unmounts
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        raise AssertionError(
            f"{argv[0]} {argv[1]}: no result in {timeout:.0f} s\n{out[-2000:]}\n{err[-2000:]}"
        ) from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def ok(argv: Sequence[str], timeout: float, **kw: Any) -> str:
    done = run(argv, timeout, **kw)
    assert done.returncode == 0, (
        f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


def debian_mirror() -> str:
    """The Debian archive apt uses here (deb822 .sources or one-line .list), not the security one."""
    apt = Path("/etc/apt")
    for f in sorted(apt.glob("sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", f.read_text()):
            fields = dict(
                (k.strip(), v.strip())
                for k, _, v in (ln.partition(":") for ln in stanza.splitlines() if ln[:1] != "#")
                if v
            )
            if SUITE in fields.get("Suites", "").split() and "deb" in fields.get("Types", "").split():
                return fields["URIs"].split()[0]
    for f in [apt / "sources.list", *sorted(apt.glob("sources.list.d/*.list"))]:
        if f.is_file():
            for line in f.read_text().splitlines():
                words = re.sub(r"\[[^]]*\]", "", line).split()  # drop [signed-by=...] options
                if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                    return words[1]
    return "http://deb.debian.org/debian"


def ensure_base(work: Path) -> None:
    """The stand-in for the registry's python:3.11-slim-bookworm: Debian's own python3 (3.11)."""
    if run(["podman", "image", "exists", BASE], 30).returncode == 0:
        return
    rootfs = work / "rootfs"
    try:
        ok(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
             SUITE, str(rootfs), debian_mirror()],
            300,
        )  # fmt: skip
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            # the registry image's PATH and LANG, which the Dockerfile's ENV PATH extends
            changes = ["--change", f"ENV PATH={STD_PATH}", "--change", "ENV LANG=C.UTF-8"]
            ok(["podman", "import", *changes, "-", BASE], 120, stdin=tar.stdout)
        finally:
            tar.kill()
            tar.wait()
    finally:
        remove_tree(rootfs)


def mounts_under(folder: Path) -> list[str]:
    """Mount points at or below ``folder``, deepest first (field 5 of mountinfo)."""
    points = [ln.split()[4] for ln in Path("/proc/self/mountinfo").read_text().splitlines()]
    return sorted((p for p in points if p == str(folder) or p.startswith(f"{folder}/")), reverse=True)


def remove_tree(rootfs: Path) -> None:
    """rm -r of a debootstrap target, never through a mount: a debootstrap cut short leaves its
    /proc, /sys and possibly the host's /dev bound inside, and removing files there is harm."""
    for point in mounts_under(rootfs):
        run(["umount", "--lazy", point], 10)
    left = mounts_under(rootfs)
    assert not left, f"still mounted, {rootfs} left in place: {left}"
    shutil.rmtree(rootfs, ignore_errors=True)


def build() -> dict[str, Any]:
    """Build the Dockerfile as it is in the checkout; the image's config (User, Env, Healthcheck)."""
    mounts = [a for p in BUILD_MOUNTS if os.path.exists(p) for a in ("-v", f"{p}:{p}:ro")]
    # docker format: the OCI image format has no HEALTHCHECK, podman would drop it with a warning
    ok(
        ["podman", "build", "--format=docker", "--isolation=chroot", "--network=host", "--pull=never",
         "--layers=false", *mounts, "-t", IMAGE, str(ROOT)],
        420,
    )  # fmt: skip
    (info,) = json.loads(ok(["podman", "image", "inspect", IMAGE], 30))
    config: dict[str, Any] = info["Config"]
    # podman 4.3 keeps the docker-format health check beside Config, not in it
    return {**config, "Healthcheck": info.get("Healthcheck") or config.get("Healthcheck")}


Bind = Callable[[Path, str], None]


@contextmanager
def image_root(tmp: Path) -> Iterator[tuple[Path, Bind]]:
    """The image's file tree with /proc, /dev and a writable /tmp bound in, and a way to bind
    more (a volume, a config file) over its paths; all undone on exit, failing or not."""
    with ExitStack() as undo:
        root = Path(ok(["podman", "image", "mount", IMAGE], 60).strip())
        undo.callback(run, ["podman", "image", "unmount", IMAGE], 60)

        def bind(source: Path, target: str) -> None:
            ok(["mount", "--bind", str(source), str(root / target.lstrip("/"))], 10)
            undo.callback(run, ["umount", "--lazy", str(root / target.lstrip("/"))], 10)

        # /dev/pts as a container runtime mounts it: the demo's VE.Direct cables are ptys
        for source, target in ((Path("/proc"), "/proc"), (Path("/dev"), "/dev"), (Path("/dev/pts"), "/dev/pts")):
            bind(source, target)
        bind(tmp, "/tmp")
        yield root, bind


def no_mounts_under(root: Path) -> None:
    assert not mounts_under(root), mounts_under(root)


def as_image_user(root: Path, config: dict[str, Any]) -> list[str]:
    """argv prefix: a command in the image as its USER, with only the image's ENV (and HOME)."""
    user, _, group = config["User"].partition(":")
    assert user.isdigit() and (group or user).isdigit(), f"USER {config['User']}: numeric uid:gid expected"
    return ["chroot", f"--userspec={user}:{group or user}", str(root),
            "/usr/bin/env", "-i", "--chdir=/tmp", "HOME=/tmp", *config["Env"]]  # fmt: skip


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    real, effective, saved, _ = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()  # type: ignore[union-attr]
    assert real == effective == saved, status
    return int(real)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    for tool in ("podman", "debootstrap", "chroot"):
        need_interop(
            shutil.which(tool) is not None, f"{tool} not installed (Debian: apt-get install podman debootstrap)"
        )
    need_interop(os.geteuid() == 0, "building and mounting the image needs root (podman image mount, chroot)")
    ensure_base(tmp_path_factory.mktemp("base"))
    config = build()
    yield config
    run(["podman", "rmi", "--force", IMAGE], 60)


def test_the_image_content_runs_check_demo_and_healthcheck(image: dict[str, Any], tmp_path: Path) -> None:
    started = time.monotonic()
    tmp_path.chmod(0o1777)  # the image's /tmp, writable by its user
    health = image["Healthcheck"]["Test"]
    assert health[0] == "CMD" and health[1:4] == ["gx-gateway", "status", "--health"], health
    assert re.fullmatch(r"\d+", str(image["User"]).partition(":")[0]), image["User"]
    with image_root(tmp_path) as (root, _):
        inside = as_image_user(root, image)
        # the venv the build made, found through the image's PATH
        assert ok([*inside, "gx-gateway", "check"], 60).startswith("ok: ")
        # nothing of the source tree came along: the package is the venv's
        where = ok([*inside, "python", "-c", "import gateway; print(gateway.__file__)"], 60).strip()
        assert where.startswith("/opt/gx-gateway/lib/python3.11/site-packages/gateway/"), where

        demo = DemoProcess(command=[*inside, "gx-gateway"])
        try:
            assert uid_of(demo.proc.pid) == int(image["User"].partition(":")[0]), "not the image's USER"
            status, body = demo.get("/healthz")
            assert status == 200, body
            client = ModbusTcpClient("127.0.0.1", port=demo.port, timeout=3, retries=0)
            assert client.connect()
            try:
                reply = client.read_input_registers(259, count=1, device_id=225)  # battery /Dc/0/Voltage
            finally:
                client.close()
            assert not reply.isError(), reply
            assert 500 <= reply.registers[0] <= 6500, reply.registers  # 5-65 V at scale 100
            # the image's HEALTHCHECK as it is, only pointed at the demo's ephemeral HTTP port
            probe = [*health[1:]]
            probe[probe.index("--url") + 1] = demo.url
            healthy = run([*inside, *probe], 30)
            assert healthy.returncode == 0 and healthy.stdout.strip() == "ok", healthy
        finally:
            rc, stderr = demo.stop()
        assert rc == 0, stderr
        # the same probe once the gateway is gone: unhealthy, so the engine would notice
        assert run([*inside, *probe], 30).returncode != 0
    no_mounts_under(root)
    print(f"image content checked in {time.monotonic() - started:.1f} s")


def test_the_image_cmd_serves_with_its_own_config_and_a_state_volume(image: dict[str, Any], tmp_path: Path) -> None:
    """The image's CMD as it is, as compose runs it: its config file bound over the image's (only
    the listen addresses moved to loopback ephemeral ports) and a fresh state volume, which an
    engine creates owned as the image's folder is: the gateway must be able to write there."""
    scratch, state = tmp_path / "tmp", tmp_path / "state"
    scratch.mkdir(mode=0o1777)
    scratch.chmod(0o1777)
    uid, _, gid = image["User"].partition(":")
    with image_root(scratch) as (root, bind):
        folder = (root / STATE_DIR.lstrip("/")).stat()
        assert (folder.st_uid, folder.st_gid) == (int(uid), int(gid or uid)), "the state folder is not the USER's"
        state.mkdir()
        os.chown(state, folder.st_uid, folder.st_gid)
        state.chmod(folder.st_mode & 0o7777)
        bind(state, STATE_DIR)
        config = (root / CONFIG.lstrip("/")).read_text()
        local = config.replace('"0.0.0.0:502"', '"127.0.0.1:0"').replace('"0.0.0.0:8088"', '"127.0.0.1:0"')
        assert local.count('"127.0.0.1:0"') == 2, "the image config's Modbus and HTTP listen addresses"
        (tmp_path / "gateway.toml").write_text(local)
        bind(tmp_path / "gateway.toml", CONFIG)
        assert image["Cmd"] == ["gx-gateway", "run", "--config", CONFIG]
        inside = as_image_user(root, image)
        gateway = subprocess.Popen(
            [*inside, *image["Cmd"]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        log: list[str] = []
        assert gateway.stderr is not None
        reader = threading.Thread(target=lambda: log.extend(iter(gateway.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
        reader.start()
        try:
            deadline = time.monotonic() + 30
            while not (m := re.search(r"HTTP listening on 127\.0\.0\.1:(\d+)", "".join(log))):
                assert gateway.poll() is None and time.monotonic() < deadline, "".join(log)
                time.sleep(0.1)
            url = f"http://127.0.0.1:{m.group(1)}"
            with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
                assert r.status == 200
            probe = [*image["Healthcheck"]["Test"][1:]]
            probe[probe.index("--url") + 1] = url
            healthy = run([*inside, *probe], 30)
            assert healthy.returncode == 0 and healthy.stdout.strip() == "ok", healthy
            written = [p for p in state.rglob("*") if p.is_file()]
            assert written, "nothing in the state volume (the gateway's identity belongs there)"
            assert {p.stat().st_uid for p in written} == {int(uid)}
        finally:
            if gateway.poll() is None:
                gateway.send_signal(signal.SIGTERM)
            try:
                rc = gateway.wait(15)
            except subprocess.TimeoutExpired:
                gateway.kill()
                rc = gateway.wait()
            reader.join(5)
        assert rc == 0, "".join(log)
    no_mounts_under(root)
