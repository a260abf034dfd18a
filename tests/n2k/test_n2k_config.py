"""`[n2k]` in the TOML config and `demo --n2k`: bad values are one line naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.config import ConfigError, parse_config


def test_n2k_section_parses_with_defaults() -> None:
    config = parse_config({"n2k": {"interface": "yden:192.0.2.7:1457"}})
    assert config.n2k is not None
    assert (config.n2k.interface, config.n2k.unique_number_base, config.n2k.max_bus_load) == (
        "yden:192.0.2.7:1457",
        0,
        0.3,
    )
    assert parse_config({}).n2k is None  # no section, no NMEA 2000


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"interface": "can0"}, "n2k.interface: expected socketcan:IFACE"),
        ({"interface": "yden:host"}, "n2k.interface: expected socketcan:IFACE"),
        ({"interface": "socketcan:can0", "max_bus_load": 2}, "n2k.max_bus_load: expected a fraction 0.01..1.0"),
        ({"interface": "socketcan:can0", "unique_number_base": -1}, "n2k.unique_number_base: expected an integer"),
        ({"interface": "socketcan:can0", "bitrate": 250000}, "n2k.bitrate: unknown key"),
    ],
)
def test_bad_n2k_values_name_the_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"n2k": section})
    assert str(info.value).startswith(message), str(info.value)


def test_demo_with_a_bad_n2k_spec_is_one_line() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "demo", "--n2k", "serial:/dev/ttyS0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "gx-gateway: --n2k: expected socketcan:IFACE, virtual:NAME, yden:HOST:PORT, actisense:DEVICE or candump:PATH, "
        "got 'serial:/dev/ttyS0'"
    ]
