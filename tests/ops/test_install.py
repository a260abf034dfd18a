"""A user's install, as the container build does it: a fresh clone, only what the Dockerfile
copies, the shared install script (a fresh venv without system site-packages, a non-editable
`pip install .` from PyPI's packages), then demo, check, status and export from that venv,
run outside the checkout so nothing can come from the source tree.

This is the one slow test of the operations suite (about a minute: pip builds a wheel and
fetches the dependencies).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.demo_process import DemoProcess
from tests.helpers import ROOT
from tests.ops.test_packaging import INSTALL_RUN, stages


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 60) -> str:
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, (
        f"{shlex.join(argv)} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return out.stdout


@pytest.mark.timeout(240)  # a git clone and a pip install: 45 s alone, more under a loaded full run
def test_fresh_clone_installs_and_runs_demo_check_and_export(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    clone = tmp_path / "clone"
    run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], tmp_path, env)
    context = tmp_path / "context"  # what the Dockerfile's build stage COPYs, and nothing else
    context.mkdir()
    build = stages()[0]
    for word, args in build:
        if word == "COPY":
            *sources, dest = shlex.split(args)
            for src in sources:
                source, target = clone / src, context / dest
                if source.is_dir():  # COPY dir/ dest/: the folder's contents into dest
                    shutil.copytree(source, target)
                else:
                    target = target / source.name if dest.endswith("/") else target
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)
    # The Dockerfile's RUN line, with the venv's place changed from /opt to here.
    assert INSTALL_RUN in [a for w, a in build if w == "RUN"]
    venv = tmp_path / "venv"
    argv = shlex.split(INSTALL_RUN.replace("/opt/gx-gateway", str(venv)))
    checked = run(argv, context, {**env, "PYTHON": sys.executable}, timeout=600)
    assert checked.startswith("ok: "), checked  # the script ends with `gx-gateway check`

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    py, gx = str(venv / "bin" / "python"), str(venv / "bin" / "gx-gateway")
    where = run(
        [py, "-c", "import gateway, registers, sys; print(gateway.__file__, sys.prefix != sys.base_prefix)"],
        outside,
        env,
    )
    module, in_venv = where.split()
    assert Path(module).is_relative_to(venv) and in_venv == "True", where
    no_site = run(
        [py, "-c", "import sys; print(any('site-packages' in p and '/venv/' not in p for p in sys.path))"], outside, env
    )
    assert no_site.strip() == "False", "the venv sees site-packages other than its own"
    assert run([gx, "check"], outside, env).startswith("ok: ")

    demo = DemoProcess(command=[gx], cwd=str(outside), env=env)
    try:
        assert run([gx, "status", "--health", "--url", demo.url], outside, env).strip() == "ok"
        ha = yaml.safe_load(run([gx, "export", "homeassistant", "--url", demo.url], outside, env))
        sensors = ha["modbus"][0]["sensors"]
        assert ha["modbus"][0]["port"] == demo.port and len(sensors) > 400
        assert any(s["device_address"] == 225 and s["address"] == 259 for s in sensors)  # battery voltage
        tags = run([gx, "export", "csv", "--url", demo.url], outside, env).splitlines()
        assert tags[0].startswith("unit_id,address,type") and len(tags) == len(sensors) + 1
    finally:
        rc, stderr = demo.stop()
    assert rc == 0, stderr
