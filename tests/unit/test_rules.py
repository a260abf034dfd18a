"""Every compiler rule has a small broken fixture that must fail with file:line: Rnn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from registers import MappingError, compile_mappings
from registers.compile.rules import RULES
from tests.unit.test_ble_map import BLE_RULES
from tests.unit.test_vedirect_map import VEDIRECT_RULES

GOOD_SERVICE = """register,path,type,scale,access,unit,lookup,min,max,derive
10,/Dc/0/Voltage,uint16,100,R,V DC,,,,
11,/Dc/0/Current,int16,10,R,A DC,,,,
12,/Mode,uint16,1,W,,mode,,,
13,/Soc,uint32,10,W,%,,0,100,
15,RESERVED,reserved[2],1,R,,,,,
17,/CustomName,string[4],1,W,,,,,
22,/Pv/I,uint16,10,R,A,,,,"quotient(/Dc/0/Current, /Dc/0/Voltage)"
"""
GOOD_LOOKUP = "value,label\n1,On\n4,Off\n5-7,Eco\n"
GOOD_UNITS = "unit_id,instance,remark\n100,0,system\n225,512,\n"


def make(
    tmp: Path,
    service: str = GOOD_SERVICE,
    lookup: str = GOOD_LOOKUP,
    units: str = GOOD_UNITS,
    extra: dict[str, str] | None = None,
) -> Path:
    root = tmp / "mappings"
    (root / "modbus").mkdir(parents=True)
    (root / "lookups").mkdir()
    (root / "modbus" / "battery.csv").write_text(service, encoding="utf-8")
    (root / "lookups" / "mode.csv").write_text(lookup, encoding="utf-8")
    (root / "modbus" / "unit_ids.csv").write_text(units, encoding="utf-8")
    for rel, text in (extra or {}).items():
        (root / rel).write_text(text, encoding="utf-8")
    return root


def problems_of(root: Path) -> list[str]:
    with pytest.raises(MappingError) as info:
        compile_mappings(root)
    return [str(p) for p in info.value.problems]


def replace_line(text: str, line: int, new: str) -> str:
    lines = text.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


def test_good_fixture_compiles(tmp_path: Path) -> None:
    cmap = compile_mappings(make(tmp_path))
    table = cmap.modbus.tables["battery"]
    assert [r.address for r in table.registers] == [10, 11, 12, 13, 15, 17, 22]
    assert cmap.modbus.by_address[10].run_end == 21  # 10..20 contiguous, gap at 21
    assert cmap.modbus.by_address[19].register.path == "/CustomName"  # inside the string
    assert cmap.modbus.by_address[22].run_end == 23
    assert 21 not in cmap.modbus.by_address
    assert cmap.modbus.unit_ids == {100: 0, 225: 512}


# (rule, file, line, how to break the good fixture)
CASES: list[tuple[str, str, int, dict[str, str]]] = [
    ("R01", "modbus/battery.csv", 0, {"service": "\xff"}),  # replaced below with invalid UTF-8
    ("R02", "modbus/battery.csv", 1, {"service": GOOD_SERVICE.replace("derive", "formula")}),
    ("R02", "modbus/battery.csv", 1, {"service": GOOD_SERVICE.replace(",access", ",acces")}),
    (
        "R03",
        "modbus/battery.csv",
        2,
        {"service": replace_line(GOOD_SERVICE, 2, "10,/Dc/0/Voltage,float32,100,R,V,,,,")},
    ),
    (
        "R04",
        "modbus/battery.csv",
        2,
        {"service": replace_line(GOOD_SERVICE, 2, "10,/Dc/0/Voltage,uint16[2],1,R,V,,,,")},
    ),
    ("R04", "modbus/battery.csv", 7, {"service": replace_line(GOOD_SERVICE, 7, "17,/CustomName,string[0],1,W,,,,,")}),
    ("R05", "modbus/battery.csv", 2, {"service": replace_line(GOOD_SERVICE, 2, "x10,/Dc/0/Voltage,uint16,1,R,V,,,,")}),
    ("R05", "modbus/battery.csv", 9, {"service": GOOD_SERVICE + "65535,/Big,uint32,1,R,,,,,\n"}),
    ("R06", "modbus/battery.csv", 9, {"service": GOOD_SERVICE + "14,/Overlap,uint16,1,R,,,,,\n"}),
    ("R07", "modbus/grid.csv", 2, {"grid": "register,path,type,scale,access\n11,/Ac/Power,int16,1,R\n"}),
    ("R08", "modbus/battery.csv", 2, {"service": replace_line(GOOD_SERVICE, 2, "10,/Dc/0/Voltage,uint16,0,R,V,,,,")}),
    ("R08", "modbus/battery.csv", 2, {"service": replace_line(GOOD_SERVICE, 2, "10,/Dc/0/Voltage,uint16,ten,R,V,,,,")}),
    ("R09", "modbus/battery.csv", 2, {"service": replace_line(GOOD_SERVICE, 2, "10,/Dc/0/Voltage,uint16,1,RW,V,,,,")}),
    ("R10", "lookups/mode.csv", 3, {"lookup": "value,label\n1,On\none,Off\n"}),
    ("R10", "lookups/mode.csv", 3, {"lookup": "value,label\n5-7,Eco\n6,Off\n"}),
    ("R10", "lookups/mode.csv", 2, {"lookup": "value,label\n1,\n"}),
    ("R11", "modbus/battery.csv", 4, {"service": replace_line(GOOD_SERVICE, 4, "12,/Mode,uint16,1,W,,nosuch,,,")}),
    ("R12", "modbus/battery.csv", 2, {"service": replace_line(GOOD_SERVICE, 2, "10,Dc/0/Voltage,uint16,1,R,V,,,,")}),
    ("R12", "modbus/battery.csv", 6, {"service": replace_line(GOOD_SERVICE, 6, "15,/Spare,reserved[2],1,R,,,,,")}),
    ("R12", "modbus/battery.csv", 2, {"service": replace_line(GOOD_SERVICE, 2, "10,RESERVED,uint16,1,R,,,,,")}),
    ("R13", "modbus/battery.csv", 5, {"service": replace_line(GOOD_SERVICE, 5, "13,/Soc,uint32,10,W,%,,80,20,")}),
    ("R13", "modbus/battery.csv", 5, {"service": replace_line(GOOD_SERVICE, 5, "13,/Soc,uint32,10,R,%,,0,100,")}),
    ("R13", "modbus/battery.csv", 5, {"service": replace_line(GOOD_SERVICE, 5, "13,/Soc,uint32,10,W,%,,-5,100,")}),
    (
        "R14",
        "modbus/battery.csv",
        8,
        {"service": replace_line(GOOD_SERVICE, 8, "22,/Pv/I,uint16,10,R,A,,,,sqrt(/Dc/0/Voltage)")},
    ),
    (
        "R14",
        "modbus/battery.csv",
        8,
        {"service": replace_line(GOOD_SERVICE, 8, '22,/Pv/I,uint16,10,R,A,,,,"quotient(/A)"')},
    ),
    (
        "R14",
        "modbus/battery.csv",
        8,
        {"service": replace_line(GOOD_SERVICE, 8, "22,/Pv/I,uint16,10,W,A,,,,unix_time()")},
    ),
    ("R15", "modbus/unit_ids.csv", 4, {"units": GOOD_UNITS + "100,5,again\n"}),
    ("R15", "modbus/unit_ids.csv", 4, {"units": GOOD_UNITS + "300,5,too big\n"}),
    ("R16", "modbus/unit_ids.csv", 0, {"units": ""}),
    ("R17", "modbus/Grid-Meter.csv", 0, {"Grid-Meter": "register,path,type,scale,access\n500,/X,uint16,1,R\n"}),
    ("R18", "modbus/battery.csv", 9, {"service": GOOD_SERVICE + "30,/Dc/0/Voltage,uint32,100,R,mV,,,,\n"}),
    ("R18", "modbus/battery.csv", 9, {"service": GOOD_SERVICE + "30,/Mode,uint32,1,R,,mode,,,\n"}),
]


# SunSpec (mappings/sunspec.csv) against a small pvinverter and grid map.
GOOD_PV = """register,path,type,scale,access,unit,lookup,min,max,derive
1029,/Ac/L1/Power,uint16,1,R,W,,,,
1039,/Serial,string[7],1,R,,,,,
1054,/Ac/MaxPower,uint32,1,W,W,,,,
1056,/Ac/PowerLimit,uint32,1,W,W,,0,/Ac/MaxPower,
"""
GOOD_GRID = "register,path,type,scale,access\n2600,/Ac/L1/Power,int16,1,R\n2609,/Serial,string[7],1,R\n"
GOOD_SUNSPEC = "models,point,path,scale,split\n1,SN,/Serial,1,\n103,W,/Ac/L1/Power,1,phases\n203,WphA,/Ac/L1/Power,1,\n"


def make_sunspec(tmp: Path, sunspec: str = GOOD_SUNSPEC, pv: str = GOOD_PV) -> Path:
    return make(tmp, extra={"modbus/pvinverter.csv": pv, "modbus/grid.csv": GOOD_GRID, "sunspec.csv": sunspec})


def test_good_sunspec_fixture_compiles(tmp_path: Path) -> None:
    cmap = compile_mappings(make_sunspec(tmp_path))
    assert sorted(cmap.sunspec) == [1, 103, 203]
    (w,) = cmap.sunspec[103].fields
    assert (w.path, w.offset, w.sf_offset, w.split) == ("/Ac/L1/Power", 14, 15, True)  # DEVICES.md: W=14, W_SF=15
    assert cmap.paths["pvinverter"]["/Ac/PowerLimit"].maximum_path == "/Ac/MaxPower"


SUNSPEC_CASES: list[tuple[str, str, int, dict[str, str]]] = [
    ("R19", "sunspec.csv", 3, {"sunspec": replace_line(GOOD_SUNSPEC, 3, "105,W,/Ac/L1/Power,1,")}),
    ("R19", "sunspec.csv", 3, {"sunspec": replace_line(GOOD_SUNSPEC, 3, "10x,W,/Ac/L1/Power,1,")}),
    ("R20", "sunspec.csv", 3, {"sunspec": replace_line(GOOD_SUNSPEC, 3, "103,W_SF,/Ac/L1/Power,1,")}),
    ("R20", "sunspec.csv", 3, {"sunspec": replace_line(GOOD_SUNSPEC, 3, "103,Watts,/Ac/L1/Power,1,")}),
    ("R21", "sunspec.csv", 3, {"sunspec": replace_line(GOOD_SUNSPEC, 3, "103,W,/Ac/L9/Power,1,")}),
    ("R21", "sunspec.csv", 2, {"sunspec": replace_line(GOOD_SUNSPEC, 2, "1,SN,/Ac/L1/Power,1,")}),
    ("R22", "sunspec.csv", 3, {"sunspec": replace_line(GOOD_SUNSPEC, 3, "103,W,/Ac/L1/Power,0,")}),
    ("R22", "sunspec.csv", 3, {"sunspec": replace_line(GOOD_SUNSPEC, 3, "103,W,/Ac/L1/Power,1,half")}),
    ("R23", "sunspec.csv", 5, {"sunspec": GOOD_SUNSPEC + "103,AphA,/Ac/L1/Power,1,\n"}),
    (
        "R24",
        "modbus/pvinverter.csv",
        5,
        {"pv": replace_line(GOOD_PV, 5, "1056,/Ac/PowerLimit,uint32,1,W,W,,0,/Ac/Nope,")},
    ),
    ("R24", "modbus/pvinverter.csv", 5, {"pv": replace_line(GOOD_PV, 5, "1056,/Ac/PowerLimit,uint32,1,W,W,,0,/Ac/,")}),
]


@pytest.mark.parametrize(
    ("rule", "file", "line", "change"), SUNSPEC_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(SUNSPEC_CASES)]
)
def test_sunspec_rule_fixture(tmp_path: Path, rule: str, file: str, line: int, change: dict[str, str]) -> None:
    root = make_sunspec(tmp_path, **change)
    found = problems_of(root)
    assert any(p.startswith(f"{root / file}:{line}: {rule} ") for p in found), found


@pytest.mark.parametrize(("rule", "file", "line", "change"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_fixture(tmp_path: Path, rule: str, file: str, line: int, change: dict[str, str]) -> None:
    kwargs = {k: v for k, v in change.items() if k in ("service", "lookup", "units")}
    extra = {f"modbus/{k}.csv": v for k, v in change.items() if k not in ("service", "lookup", "units")}
    root = make(tmp_path, extra=extra, **kwargs)
    if rule == "R01":
        (root / "modbus" / "battery.csv").write_bytes(b"register,path\n\xff\xfe\n")
    if rule == "R16":
        (root / "modbus" / "unit_ids.csv").unlink()
    where = f"{root / file}:{line}: " if line else f"{root / file}: "
    found = problems_of(root)
    assert any(p.startswith(where + rule + " ") for p in found), found


def test_every_rule_has_a_fixture() -> None:
    covered = {c[0] for c in [*CASES, *SUNSPEC_CASES, *METER_CASES, *N2K_CASES]} | VEDIRECT_RULES | BLE_RULES
    assert covered == set(RULES)


def test_all_problems_reported_together(tmp_path: Path) -> None:
    broken = replace_line(GOOD_SERVICE, 2, "10,/Dc/0/Voltage,uint16,0,R,V,,,,")
    broken = replace_line(broken, 3, "11,/Dc/0/Current,int16,10,X,A DC,,,,")
    found = problems_of(make(tmp_path, service=broken, lookup="value,label\nx,On\n"))
    assert [p.split(": ")[1].split()[0] for p in found] == ["R10", "R08", "R09", "R11"]


def test_check_cli_reports_overlap_and_exits_1(tmp_path: Path) -> None:
    root = make(tmp_path, service=GOOD_SERVICE + "14,/Overlap,uint16,1,R,,,,,\n")
    res = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check", "--mappings", str(root)], capture_output=True, text=True
    )
    assert res.returncode == 1
    assert res.stdout.splitlines() == [
        f"{root}/modbus/battery.csv:9: R06 register 14 (uint16 /Overlap) overlaps register 13 "
        f"(uint32 /Soc) at {root}/modbus/battery.csv:5"
    ]
    assert "Traceback" not in res.stderr


def test_check_cli_clean_prints_one_line() -> None:
    res = subprocess.run([sys.executable, "-m", "gateway.cli", "check"], capture_output=True, text=True)
    assert res.returncode == 0
    assert len(res.stdout.splitlines()) == 1
    assert res.stdout.startswith("ok: 33 services, 1003 registers")


# --- energy meters (devices/*.csv, devices/meters.csv): R50+ ---------------------------------
GOOD_GRID = """register,path,type,scale,access,unit,lookup,min,max,derive
2600,/Ac/L1/Power,int16,1,R,W,,,,
2601,/Ac/L1/Voltage,uint16,10,R,V AC,,,,
2602,/Ac/Energy/Forward,uint32,100,R,kWh,,,,
2609,/Serial,string[7],1,R,,,,,
"""
GOOD_METER = """register,function,type,word_order,scale,path,invalid,sample1
0x0000,4,int32,low-first,10,/Ac/L1/Voltage,,0900 0000 = 230.4
0x0012,4,int32,low-first,10,/Ac/L1/Power,0x80000000,27DD 0000 = 1020.5
0x5000,4,string[7],,1,/Serial,,4258 3132 3334 3500 0000 0000 0000 = BX12345
0x0034,3,uint64,,100,/Ac/Energy/Forward,0xFFFFFFFFFFFFFFFF,FFFF FFFF FFFF FFFF = -
"""
GOOD_INDEX = """model,product,register,function,type,word_order,match
m1,Test meter,0x000B,4,uint16,,100-105
m2,Other meter,0x000B,4,uint16,,200
"""


def make_meters(
    tmp: Path, meter: str = GOOD_METER, index: str = GOOD_INDEX, extra: dict[str, str] | None = None
) -> Path:
    root = make(tmp, extra={"modbus/grid.csv": GOOD_GRID})
    (root / "devices").mkdir()
    (root / "devices" / "m1.csv").write_text(meter, encoding="utf-8")
    (root / "devices" / "m2.csv").write_text(GOOD_METER, encoding="utf-8")
    (root / "devices" / "meters.csv").write_text(index, encoding="utf-8")
    for rel, text in (extra or {}).items():
        (root / rel).write_text(text, encoding="utf-8")
    return root


def test_good_meter_fixture_compiles(tmp_path: Path) -> None:
    cmap = compile_mappings(make_meters(tmp_path))
    m1 = cmap.devices["m1"]
    assert m1.product == "Test meter" and m1.phases == 1
    # FC 3 first, then FC 4: 0x0000..0x0013 in one read (gap <= 32), the serial apart
    assert [(b.function, b.address, b.count) for b in m1.blocks] == [(3, 0x34, 4), (4, 0, 0x14), (4, 0x5000, 7)]
    assert m1.samples[0].expected == {
        "/Ac/L1/Voltage": 230.4,
        "/Ac/L1/Power": 1020.5,
        "/Serial": "BX12345",
        "/Ac/Energy/Forward": None,
    }


# (rule, file, line, how to break the good fixture)
METER_CASES: list[tuple[str, str, int, dict[str, str]]] = [
    ("R50", "devices/meters.csv", 4, {"index": GOOD_INDEX + "nosuch,Ghost meter,,,,,\n"}),
    ("R50", "devices/meters.csv", 4, {"index": GOOD_INDEX + "m1,Again,,,,,\n"}),
    ("R50", "devices/m3.csv", 0, {"devices/m3.csv": GOOD_METER}),
    ("R51", "devices/m1.csv", 2, {"meter": replace_line(GOOD_METER, 2, "0x1G,4,int32,low-first,10,/Ac/L1/Voltage,,")}),
    ("R51", "devices/m1.csv", 2, {"meter": replace_line(GOOD_METER, 2, "65535,4,int32,low-first,10,/Ac/L1/Voltage,,")}),
    (
        "R52",
        "devices/m1.csv",
        2,
        {"meter": replace_line(GOOD_METER, 2, "0x0000,6,int32,low-first,10,/Ac/L1/Voltage,,")},
    ),
    ("R53", "devices/m1.csv", 2, {"meter": replace_line(GOOD_METER, 2, "0x0000,4,int8,,10,/Ac/L1/Voltage,,")}),
    (
        "R53",
        "devices/m1.csv",
        2,
        {"meter": replace_line(GOOD_METER, 2, "0x0000,4,uint16,low-first,10,/Ac/L1/Voltage,,")},
    ),
    (
        "R53",
        "devices/m1.csv",
        2,
        {"meter": replace_line(GOOD_METER, 2, "0x0000,4,int32,backwards,10,/Ac/L1/Voltage,,")},
    ),
    ("R54", "devices/m1.csv", 2, {"meter": replace_line(GOOD_METER, 2, "0x0000,4,int32,low-first,0,/Ac/L1/Voltage,,")}),
    ("R55", "devices/m1.csv", 2, {"meter": replace_line(GOOD_METER, 2, "0x0000,4,int32,low-first,10,/Dc/0/Voltage,,")}),
    ("R55", "devices/m1.csv", 4, {"meter": replace_line(GOOD_METER, 4, "0x5000,4,uint16,,1,/Serial,,")}),
    ("R55", "devices/m1.csv", 6, {"meter": GOOD_METER + "0x0100,4,int32,low-first,10,/Ac/L1/Voltage,,\n"}),
    (
        "R56",
        "devices/m1.csv",
        3,
        {"meter": replace_line(GOOD_METER, 3, "0x0012,4,int32,low-first,10,/Ac/L1/Power,0x1FFFFFFFF,")},
    ),
    ("R56", "devices/m1.csv", 2, {"meter": replace_line(GOOD_METER, 2, "0x0000,4,float32,,1,/Ac/L1/Voltage,0xFFFF,")}),
    ("R57", "devices/m1.csv", 6, {"meter": GOOD_METER + "0x0013,4,uint16,,1,/Ac/Energy/Forward,,\n"}),
    (
        "R58",
        "devices/m1.csv",
        2,
        {"meter": replace_line(GOOD_METER, 2, "0x0000,4,int32,low-first,10,/Ac/L1/Voltage,,0900 0000 = 230.5")},
    ),
    (
        "R58",
        "devices/m1.csv",
        2,
        {"meter": replace_line(GOOD_METER, 2, "0x0000,4,int32,,10,/Ac/L1/Voltage,,0900 0000 = 230.4")},
    ),
    (
        "R58",
        "devices/m1.csv",
        2,
        {"meter": replace_line(GOOD_METER, 2, "0x0000,4,int32,low-first,10,/Ac/L1/Voltage,,0900 = 230.4")},
    ),
    ("R59", "devices/meters.csv", 2, {"index": replace_line(GOOD_INDEX, 2, "m1,Test meter,0x000B,4,uint16,,ten")}),
    ("R59", "devices/meters.csv", 3, {"index": replace_line(GOOD_INDEX, 3, "m2,Other meter,0x000B,4,uint16,,103")}),
]


# --- NMEA 2000 mappings (R30-R40) -----------------------------------------------------------
GOOD_N2K_DEVICES = "service,role,class,function,pool,model\nbattery,battery,35,170,electrical,Battery monitor\n"
GOOD_N2K = """role,pgn,field,source,convert,required,interval
battery,127508,instance,instance,,,
battery,127508,voltage,/Dc/0/Voltage,,y,
battery,127508,current,/Dc/0/Current,,,
battery,127506,instance,instance,,,
battery,127506,dcType,=Battery,,,
battery,127506,stateOfCharge,/Soc,%->ratio,y,
"""
GOOD_N2K_SAMPLES = "sample,key,value\ns,/Dc/0/Voltage,12.5\ns,instance,3\ns,127508.voltage,12.5\ns,127508.instance,3\n"


def make_n2k(
    tmp: Path, devices: str = GOOD_N2K_DEVICES, mapping: str = GOOD_N2K, samples: str = GOOD_N2K_SAMPLES
) -> Path:
    root = make(tmp)
    (root / "n2k" / "samples").mkdir(parents=True)
    (root / "n2k" / "devices.csv").write_text(devices, encoding="utf-8")
    (root / "n2k" / "battery.csv").write_text(mapping, encoding="utf-8")
    (root / "n2k" / "samples" / "battery.csv").write_text(samples, encoding="utf-8")
    return root


def test_good_n2k_fixture_compiles(tmp_path: Path) -> None:
    cmap = compile_mappings(make_n2k(tmp_path))
    (device,) = cmap.n2k["battery"]
    assert [p.pgn for p in device.pgns] == [127508, 127506]
    assert device.pgns[0].interval_ms == 1500 and device.pgns[1].fast


N2K_CASES: list[tuple[str, str, int, dict[str, str]]] = [
    ("R30", "n2k/devices.csv", 3, {"devices": GOOD_N2K_DEVICES + "nosuch,x,35,170,electrical,X\n"}),
    (
        "R31",
        "n2k/devices.csv",
        2,
        {"devices": replace_line(GOOD_N2K_DEVICES, 2, "battery,battery,99,170,electrical,B")},
    ),
    ("R31", "n2k/devices.csv", 2, {"devices": replace_line(GOOD_N2K_DEVICES, 2, "battery,battery,35,7,electrical,B")}),
    ("R32", "n2k/battery.csv", 2, {"mapping": replace_line(GOOD_N2K, 2, "battery,99999,instance,instance,,,")}),
    ("R33", "n2k/battery.csv", 3, {"mapping": replace_line(GOOD_N2K, 3, "battery,127508,volts,/Dc/0/Voltage,,y,")}),
    (
        "R34",
        "n2k/battery.csv",
        4,
        {"mapping": replace_line(GOOD_N2K, 4, "battery,127508,current,/Dc/0/Current,C->K,,")},
    ),
    ("R34", "n2k/battery.csv", 7, {"mapping": replace_line(GOOD_N2K, 7, "battery,127506,stateOfCharge,/Soc,,y,")}),
    ("R35", "n2k/battery.csv", 6, {"mapping": replace_line(GOOD_N2K, 6, "battery,127506,dcType,=Lithium,,,")}),
    ("R36", "n2k/battery.csv", 2, {"mapping": replace_line(GOOD_N2K, 2, "battery,127508,instance,instance,,,10")}),
    ("R37", "n2k/battery.csv", 4, {"mapping": replace_line(GOOD_N2K, 4, "battery,127508,current,/No/Such,,,")}),
    ("R38", "n2k/battery.csv", 2, {"mapping": replace_line(GOOD_N2K, 3, "battery,127508,voltage,/Dc/0/Voltage,,,")}),
    ("R38", "n2k/battery.csv", 5, {"mapping": replace_line(GOOD_N2K, 5, "battery,127506,dcType,=Battery,,,")}),
    ("R39", "n2k/samples/battery.csv", 4, {"samples": replace_line(GOOD_N2K_SAMPLES, 4, "s,127508.voltage,13.0")}),
    ("R40", "n2k/battery.csv", 4, {"mapping": replace_line(GOOD_N2K, 4, "other,127508,current,/Dc/0/Current,,,")}),
]


@pytest.mark.parametrize(
    ("rule", "file", "line", "change"), METER_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(METER_CASES)]
)
def test_meter_rule_fixture(tmp_path: Path, rule: str, file: str, line: int, change: dict[str, str]) -> None:
    kwargs = {k: v for k, v in change.items() if k in ("meter", "index")}
    extra = {k: v for k, v in change.items() if k not in ("meter", "index")}
    root = make_meters(tmp_path, extra=extra, **kwargs)
    where = f"{root / file}:{line}: " if line else f"{root / file}: "
    found = problems_of(root)
    assert any(p.startswith(where + rule + " ") for p in found), found


@pytest.mark.parametrize(
    ("rule", "file", "line", "change"), N2K_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(N2K_CASES)]
)
def test_n2k_rule_fixture(tmp_path: Path, rule: str, file: str, line: int, change: dict[str, str]) -> None:
    root = make_n2k(tmp_path, **change)
    where = f"{root / file}:{line}: " if line else f"{root / file}: "
    found = problems_of(root)
    assert any(p.startswith(where + rule + " ") for p in found), found


def test_check_cli_names_unknown_pgn_field(tmp_path: Path) -> None:
    root = make_n2k(tmp_path, mapping=replace_line(GOOD_N2K, 3, "battery,127508,volts,/Dc/0/Voltage,,y,"))
    res = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check", "--mappings", str(root)], capture_output=True, text=True
    )
    assert res.returncode == 1
    assert f"{root}/n2k/battery.csv:3: R33 'volts' is not a field of PGN 127508 batteryStatus" in res.stdout
    assert "Traceback" not in res.stderr
