"""The command line as a user meets it: --help everywhere (with examples), --version, status."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys

import pytest

from gateway.cli.main import build_parser, main
from gateway.core.derived import gateway_version
from tests.demo_process import DemoProcess


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return dict(actions[0].choices)


def test_top_level_help_lists_every_subcommand() -> None:
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    names = subcommands()
    assert {"demo", "run", "check", "registers", "status", "export", "config-docs"} <= set(names)
    for name in names:
        assert f"\n    {name} " in out.stdout, f"{name} missing from --help:\n{out.stdout}"


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_subcommand_answers_help_with_examples(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"gx-gateway {name}" in out, out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"gx-gateway {gateway_version()}"


def test_logging_options_go_before_or_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--log-format", "json", "check"])
    after = parser.parse_args(["check", "--log-level", "debug"])
    assert (before.log_format, before.log_level) == ("json", None)
    assert (after.log_format, after.log_level) == (None, "debug")


def test_status_prints_devices_unit_ids_and_health(demo: DemoProcess, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--url", demo.url]) == 0
    out = capsys.readouterr().out
    assert "health:     ok" in out
    assert f"Modbus-TCP: 127.0.0.1:{demo.port}" in out
    assert "unit 225  battery 512 (House bank)" in out
    assert "unit 227  vebus 276 (MultiPlus-II)" in out
    assert main(["status", "--health", "--url", demo.url]) == 0
    assert capsys.readouterr().out.strip() == "ok"


def test_status_of_a_gateway_that_is_not_there_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["status", "--health", "--url", f"http://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach the gateway" in err and "refused" in err, err
