"""The gateway identity: made once at random, the same after every restart, a bad file kept."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gateway.core.identity import Identity, load_or_create_identity, new_serial

SERIAL = re.compile(r"[0-9a-f]{12}")


def test_made_once_and_the_same_after_a_restart(tmp_path: Path) -> None:
    first = load_or_create_identity(tmp_path)
    assert SERIAL.fullmatch(first.serial)
    assert json.loads((tmp_path / "identity.json").read_text()) == {"serial": first.serial}
    assert load_or_create_identity(tmp_path) == first
    assert load_or_create_identity(tmp_path) == first


def test_serials_are_random_locally_administered_macs() -> None:
    serials = {new_serial() for _ in range(200)}
    assert len(serials) == 200
    for s in serials:
        assert SERIAL.fullmatch(s)
        assert int(s[:2], 16) & 0x03 == 0x02  # locally administered, unicast: no vendor's real MAC


def test_without_a_state_dir_every_start_is_new() -> None:
    a, b = load_or_create_identity(None), load_or_create_identity(None)
    assert isinstance(a, Identity) and SERIAL.fullmatch(a.serial)
    assert a != b


@pytest.mark.parametrize("content", ['{"serial": "0123', '{"serial": "NOT-HEX-AT-ALL"}', "[]"])
def test_a_corrupt_file_is_kept_and_a_new_identity_made(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    (tmp_path / "identity.json").write_text(content, encoding="utf-8")
    made = load_or_create_identity(tmp_path)
    assert SERIAL.fullmatch(made.serial)
    [kept] = tmp_path.glob("identity.json.corrupt-*")
    assert kept.read_text() == content
    assert "identity.json is corrupt" in caplog.text and "new gateway identity" in caplog.text
    assert load_or_create_identity(tmp_path) == made  # and the new one is kept from now on


def test_an_unwritable_state_dir_still_gives_an_identity(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "state").write_text("a file, not a folder", encoding="utf-8")
    made = load_or_create_identity(tmp_path / "state")
    assert SERIAL.fullmatch(made.serial)
    assert "cannot save the gateway identity" in caplog.text
