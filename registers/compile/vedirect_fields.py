"""Compiles ``mappings/vedirect/``: VE.Direct products and text fields, and their sample captures.

- ``products.csv``: ``pid`` (hex, as the PID field sends it), ``product``, ``service`` (which
  GX service the product publishes as);
- ``<service>.csv`` (solarcharger, battery, ...): one row per field -> path: ``label``,
  ``path`` (declared by the Modbus map of that service), ``kind`` (number, onoff, flag, text),
  ``scale`` (value = raw * scale; for onoff and flag the value when ON / the bit is set),
  ``bit`` (flag rows), ``invalid`` (raw values meaning "not available"), ``min``/``max`` (a
  decoded value outside is refused: a checksum can pass by chance);
- ``samples/<name>.vedirect``: a capture (the bytes a device sends) with ``samples/<name>.csv``
  (``path,value``: what its blocks decode to, later blocks overriding earlier ones), checked
  here with the driver's own framer and decoder.

Adding a field or a product is a CSV row: no code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from registers.compile.csvfile import Row, Shown, number, read_csv
from registers.compile.rules import Problems, rule
from registers.model import PathSpec
from registers.origin import Source
from registers.values import Scalar
from registers.vedirect import IDENTITY_LABELS, KINDS, SERVICES, TextFramer, VeDirectMap, VeField, VeProduct, parse_pid

R70 = rule("R70", "vedirect/products.csv: a pid is 0x hex 0x0000..0xFFFF listed once, with a product and a service")
R71 = rule("R71", "a vedirect service file is named after a VE.Direct service the Modbus map declares")
R72 = rule("R72", "a vedirect label is 1-16 printable characters, not an identity label (PID, SER#, FW ...)")
R73 = rule("R73", "a vedirect path is declared by the service's Modbus map, once a file (flag rows may share one)")
R74 = rule("R74", "a vedirect kind is number, onoff, flag or text, and text only on a text path (and back)")
R75 = rule("R75", "a vedirect scale is a non-zero number; bit 0..31 is given on flag rows and only there")
R76 = rule("R76", "vedirect invalid lists integers; min/max are numbers with min <= max")
R77 = rule("R77", "a vedirect sample capture has a .csv twin, passes its checksums and names a listed product")
R78 = rule("R78", "a vedirect sample's expected values are what its capture decodes to")

PRODUCT_COLUMNS: Final = ("pid", "product", "service")
COLUMNS: Final = ("label", "path", "kind", "scale", "bit", "invalid", "min", "max", "remark")
REQUIRED: Final = ("label", "path", "kind", "scale")
SAMPLE_COLUMNS: Final = ("path", "value")
CAPTURE: Final = ".vedirect"


def _products(path: Path, shown: Shown, services: set[str], problems: Problems) -> dict[int, VeProduct]:
    products: dict[int, VeProduct] = {}
    if not path.is_file():
        problems.add(shown(path), 0, R70, "missing; it lists the VE.Direct product ids (pid,product,service)")
        return products
    for row in read_csv(path, shown(path), PRODUCT_COLUMNS, PRODUCT_COLUMNS, problems):
        c = row.cells
        pid = parse_pid(c["pid"]) if c["pid"].lower().startswith("0x") else None
        if pid is None or not 0 <= pid <= 0xFFFF:
            problems.add(row.file, row.line, R70, f"pid {c['pid']!r} is not 0x hex 0x0000..0xFFFF")
        elif pid in products:
            problems.add(row.file, row.line, R70, f"pid {c['pid']} is listed twice (first at {products[pid].source})")
        elif not c["product"]:
            problems.add(row.file, row.line, R70, f"pid {c['pid']} has no product name")
        elif c["service"] not in services:
            known = ", ".join(sorted(services)) or "none"
            problems.add(row.file, row.line, R70, f"service {c['service']!r} has no vedirect file (have: {known})")
        else:
            products[pid] = VeProduct(pid, c["product"], c["service"], Source(row.file, row.line))
    return products


def _integers(row: Row, problems: Problems) -> frozenset[int] | None:
    values: set[int] = set()
    for text in row.cells["invalid"].split():
        try:
            values.add(int(text, 0))
        except ValueError:
            problems.add(row.file, row.line, R76, f"invalid {text!r} is not an integer")
            return None
    return frozenset(values)


def _bounds(row: Row, problems: Problems) -> tuple[float | None, float | None] | None:
    found: list[float | None] = []
    for key in ("min", "max"):
        text = row.cells[key]
        value = number(text) if text else None
        if text and value is None:
            problems.add(row.file, row.line, R76, f"{key} {text!r} is not a number")
            return None
        found.append(value)
    low, high = found
    if low is not None and high is not None and low > high:
        problems.add(row.file, row.line, R76, f"min {low:g} is above max {high:g}")
        return None
    return low, high


def compile_field(row: Row, specs: dict[str, PathSpec], problems: Problems) -> VeField | None:
    c, before = row.cells, len(problems)
    label = c["label"]
    if not 0 < len(label) <= 16 or not all(0x20 < ord(ch) < 0x7F for ch in label):
        problems.add(row.file, row.line, R72, f"label {label!r} is not 1-16 printable characters")
    elif label in IDENTITY_LABELS or label == "Checksum":
        problems.add(row.file, row.line, R72, f"label {label} is the device's identity, read by the driver itself")
    spec = specs.get(c["path"])
    if spec is None:
        problems.add(row.file, row.line, R73, f"path {c['path']!r} is not declared by the Modbus map of this service")
    kind = c["kind"]
    if kind not in KINDS:
        problems.add(row.file, row.line, R74, f"kind {kind!r} is not one of {', '.join(KINDS)}")
    elif spec is not None and spec.text != (kind == "text"):
        problems.add(row.file, row.line, R74, f"{spec.path} is {'text' if spec.text else 'a number'}; kind {kind}")
    scale = number(c["scale"])
    if not scale:
        problems.add(row.file, row.line, R75, f"scale {c['scale']!r} must be a non-zero number")
    bit = -1
    if kind == "flag":
        if not c["bit"].isdigit() or not 0 <= int(c["bit"]) <= 31:
            problems.add(row.file, row.line, R75, f"bit {c['bit']!r} must be 0..31 on a flag row")
        else:
            bit = int(c["bit"])
    elif c["bit"]:
        problems.add(row.file, row.line, R75, f"bit {c['bit']!r} is for flag rows only (kind {kind})")
    invalid = _integers(row, problems)
    bounds = _bounds(row, problems)
    if len(problems) != before:
        return None
    assert scale and invalid is not None and bounds is not None
    return VeField(label, c["path"], kind, scale, bit, invalid, bounds[0], bounds[1], Source(row.file, row.line))


def _service_file(path: Path, shown: Shown, specs: dict[str, PathSpec], problems: Problems) -> tuple[VeField, ...]:
    fields: list[VeField] = []
    seen: dict[str, VeField] = {}
    for row in read_csv(path, shown(path), COLUMNS, REQUIRED, problems):
        f = compile_field(row, specs, problems)
        if f is None:
            continue
        first = seen.get(f.path)
        if first is not None and not (first.kind == f.kind == "flag"):
            problems.add(row.file, row.line, R73, f"path {f.path} is already fed at {first.source}")
            continue
        seen.setdefault(f.path, f)
        fields.append(f)
    return tuple(fields)


def _value(text: str) -> Scalar:
    if text == "":
        return None
    n = number(text)
    if n is None:
        return text
    return int(n) if n.is_integer() and "." not in text else n


def decode_capture(vmap: VeDirectMap, data: bytes) -> tuple[dict[str, Scalar], VeProduct | None, TextFramer]:
    """What a capture publishes: every block decoded for the product its PID names, merged."""
    framer = TextFramer()
    values: dict[str, Scalar] = {}
    product: VeProduct | None = None
    for block in framer.feed(data):
        pid = parse_pid(block.get("PID", ""))
        if pid is not None and pid in vmap.products:
            product = vmap.products[pid]
        if product is not None:
            values.update(vmap.decode(product.service, block)[0])
    return values, product, framer


def _check_sample(capture: Path, shown: Shown, vmap: VeDirectMap, problems: Problems) -> bytes | None:
    twin = capture.with_suffix(".csv")
    where = shown(capture)
    if not twin.is_file():
        problems.add(where, 0, R77, f"has no {twin.name} listing what it decodes to (path,value)")
        return None
    data = capture.read_bytes()
    values, product, framer = decode_capture(vmap, data)
    if framer.bad_checksum or framer.garbage or not framer.blocks:
        problems.add(
            where, 0, R77, f"{framer.blocks} good blocks, {framer.bad_checksum + framer.garbage} failing their checksum"
        )
        return None
    if product is None:
        problems.add(where, 0, R77, "no block names a product of vedirect/products.csv (PID)")
        return None
    expected_paths: set[str] = set()
    for row in read_csv(twin, shown(twin), SAMPLE_COLUMNS, SAMPLE_COLUMNS, problems):
        path, want = row.cells["path"], _value(row.cells["value"])
        expected_paths.add(path)
        got = values.get(path, "(absent)")
        numbers = isinstance(got, (int, float)) and isinstance(want, (int, float))
        if not (got == want or (numbers and abs(float(got) - float(want)) < 1e-9)):  # type: ignore[arg-type]
            problems.add(row.file, row.line, R78, f"{path} expected {row.cells['value']!r}, the capture gives {got!r}")
    missing = sorted(set(values) - expected_paths)
    if missing:
        problems.add(shown(twin), 0, R78, f"the capture also gives {', '.join(missing)}: list them")
    return data


def compile_vedirect(
    folder: Path, shown: Shown, paths: dict[str, dict[str, PathSpec]], problems: Problems
) -> VeDirectMap | None:
    """The VE.Direct map of ``folder`` (absent folder: None), samples checked."""
    if not folder.is_dir():
        return None
    fields: dict[str, tuple[VeField, ...]] = {}
    for file in sorted(folder.glob("*.csv")):
        if file.name == "products.csv":
            continue
        service = file.stem
        if service not in SERVICES or service not in paths:
            problems.add(shown(file), 0, R71, f"{service!r} is not a VE.Direct service ({', '.join(SERVICES)})")
            continue
        fields[service] = _service_file(file, shown, paths[service], problems)
    products = _products(folder / "products.csv", shown, set(fields), problems)
    vmap = VeDirectMap(products, fields)
    if problems:
        return vmap
    samples: dict[str, bytes] = {}
    for capture in sorted((folder / "samples").glob(f"*{CAPTURE}")):
        data = _check_sample(capture, shown, vmap, problems)
        if data is not None:
            samples[capture.stem] = data
    return VeDirectMap(products, fields, samples)


__all__ = ["R70", "R71", "R72", "R73", "R74", "R75", "R76", "R77", "R78", "compile_vedirect", "decode_capture"]
