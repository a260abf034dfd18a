"""Meter models as data: the packaged files decode their own sample dumps, reads are planned
within Modbus limits, and a new model is a CSV file in a folder (no Python)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from registers import MappingError, compile_mappings, load_default
from registers.meters import MAX_READ, MeterModel, meter_models
from tests.helpers import MAPPINGS

MODELS = meter_models(load_default())
ACME = """register,function,type,word_order,scale,path,invalid,sample1
0x0100,3,int32,low-first,100,/Ac/Power,0x7FFFFFFF,86B8 0001 = 1000.24
0x0102,3,uint16,,10,/Ac/L1/Voltage,0xFFFF,08FC = 230
0x0103,3,uint16,,100,/Ac/Frequency,0xFFFF,FFFF = -
"""


def test_required_models_are_packaged() -> None:
    assert {"em24", "em540", "et340", "sdm630", "abb-b21", "abb-b23", "sma-native"} <= set(MODELS)
    assert MODELS["em24"].probe is not None and MODELS["em24"].probe.matches(1650)
    assert MODELS["sdm630"].probe is None  # Eastron: no trustworthy id register; the config names it
    assert MODELS["abb-b23"].probe is not None and MODELS["abb-b23"].probe.matches("B24")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_blocks_cover_every_field_within_limits(name: str) -> None:
    model = MODELS[name]
    assert model.samples, f"{name} has no sample dump"
    covered = {(f.function, f.path) for b in model.blocks for _, _, f in b.fields}
    assert covered == {(f.function, f.path) for f in model.fields}
    for b in model.blocks:
        assert 1 <= b.count <= MAX_READ
        assert all(b.address <= f.address and f.end <= b.address + b.count for _, _, f in b.fields)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_samples_decode_through_the_planned_blocks(name: str) -> None:
    """Lay each sample dump into the planned reads and decode them as the driver does."""
    model = MODELS[name]
    for sample in model.samples:
        answers = {}
        for i, block in enumerate(model.blocks):
            data = bytearray(2 * block.count)
            for (fc, address), words in sample.words.items():
                if fc == block.function and block.address <= address < block.address + block.count:
                    off = 2 * (address - block.address)
                    data[off : off + len(words)] = words
            answers[i] = bytes(data)
        decoded = model.decode(answers)
        for path, want in sample.expected.items():
            got = decoded[path]
            assert (got is None) == (want is None), (path, got, want)
            if isinstance(want, float):
                assert got == pytest.approx(want, rel=1e-6)
            elif want is not None:
                assert got == want


def test_em24_is_low_word_first() -> None:
    f = next(f for f in MODELS["em24"].fields if f.path == "/Ac/Power")
    assert f.codec.low_word_first
    assert f.encode(-2016.0) == bytes.fromhex("B140FFFF")  # -20160 = 0xFFFFB140, low word first
    assert f.decode(bytes.fromhex("B140FFFF")) == -2016.0


def add_acme(tmp_path: Path) -> Path:
    root = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, root)
    (root / "devices" / "acme-x1.csv").write_text(ACME, encoding="utf-8")
    with (root / "devices" / "meters.csv").open("a", encoding="utf-8") as f:
        f.write("acme-x1,ACME X1,0x0010,3,uint16,,4242\n")
    return root


def test_a_new_model_is_a_csv_file(tmp_path: Path) -> None:
    model: MeterModel = compile_mappings(add_acme(tmp_path)).devices["acme-x1"]
    assert model.product == "ACME X1" and model.phases == 1
    assert [(b.function, b.address, b.count) for b in model.blocks] == [(3, 0x100, 4)]
    assert model.decode({0: bytes.fromhex("86B8 0001 08FC FFFF".replace(" ", ""))}) == {
        "/Ac/Power": 1000.24,
        "/Ac/L1/Voltage": 230.0,
        "/Ac/Frequency": None,
    }


def test_a_wrong_sample_refuses_the_model(tmp_path: Path) -> None:
    root = add_acme(tmp_path)
    bad = ACME.replace("08FC = 230", "08FC = 23")
    (root / "devices" / "acme-x1.csv").write_text(bad, encoding="utf-8")
    with pytest.raises(MappingError) as info:
        compile_mappings(root)
    assert [str(p).split(": ", 1)[1] for p in info.value.problems] == [
        "R58 sample1 '08FC = 23': 08FC decodes to 230.0, not 23"
    ]
    assert str(info.value.problems[0]).startswith(f"{root}/devices/acme-x1.csv:3: ")
