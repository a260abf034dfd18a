"""Compiles ``mappings/sunspec.csv``: SunSpec model + point -> path of the service it feeds.

Each row names models (space-separated ids), a point of their fixed block, the path it feeds,
a ``scale`` from the point's unit to the path's (Wh -> kWh = 0.001) and ``split = phases`` for
a total shared equally by the phases (model 103 has no per-phase power or energy). Offsets
and scale-factor points come from pysunspec2's model definitions (registers/sunspec_models.py); the
result is ``cmap.sunspec[model]``, which the SunSpec driver decodes with and nothing else.

Model 1 feeds every device, 1xx the ``pvinverter`` service, 2xx meters (checked against the
``grid`` service's paths; published as the device's configured role).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from registers.codec import sunspec_not_implemented
from registers.compile.csvfile import Row, number, read_csv
from registers.compile.rules import Problems, rule
from registers.model import PathSpec, SunSpecField, SunSpecModelMap
from registers.origin import Source
from registers.sunspec_models import ModelLayout, UnknownModel, layout

R19 = rule(
    "R19", "sunspec.csv: models are SunSpec model ids that pysunspec2 defines: 1, 101-103, 111-113, 120, 201-204"
)
R20 = rule("R20", "sunspec.csv: the point is a value of the model's fixed block (not ID, L, a scale factor or padding)")
R21 = rule(
    "R21", "sunspec.csv: the path is declared by the service the model feeds (1: all, 1xx: pvinverter, 2xx: grid)"
)
R22 = rule("R22", "sunspec.csv: scale is a non-zero number; split is empty or phases (numeric points only)")
R23 = rule("R23", "sunspec.csv: a path is fed by one point per model")

COLUMNS: Final = ("models", "point", "path", "scale", "split")
SERVICE_OF: Final = {1: "common", **dict.fromkeys((101, 102, 103, 111, 112, 113, 120), "pvinverter")}
METERS: Final = (201, 202, 203, 204)
CHECKED_AGAINST: Final = {"common": ("pvinverter", "grid"), "pvinverter": ("pvinverter",), "meter": ("grid",)}


def service_of(model: int) -> str | None:
    return "meter" if model in METERS else SERVICE_OF.get(model)


def _models(row: Row, problems: Problems) -> list[tuple[int, ModelLayout]]:
    out = []
    for text in row.cells["models"].split():
        model = int(text) if text.isdigit() else None
        if model is None or service_of(model) is None:
            problems.add(row.file, row.line, R19, f"model {text!r} is not one of 1, 101-103, 111-113, 120, 201-204")
            continue
        try:
            out.append((model, layout(model)))
        except UnknownModel as e:
            problems.add(row.file, row.line, R19, str(e))
    if not row.cells["models"].split():
        problems.add(row.file, row.line, R19, "no model ids")
    return out


def _field(
    row: Row, model: ModelLayout, paths: dict[str, dict[str, PathSpec]], problems: Problems
) -> SunSpecField | None:
    c, f, ln = row.cells, row.file, row.line
    point = model.points.get(c["point"])
    if point is None or c["point"] in ("ID", "L") or point.sunspec_type in ("sunssf", "pad") or "." in c["point"]:
        problems.add(f, ln, R20, f"model {model.id} ({model.name}) has no value point {c['point']!r}")
        return None
    service = service_of(model.id) or ""
    for checked in CHECKED_AGAINST[service]:
        spec = paths.get(checked, {}).get(c["path"])
        if spec is None:
            problems.add(f, ln, R21, f"{c['path']} is not a path of {checked} (model {model.id} feeds {service})")
            return None
        if spec.text != (point.codec.form == "string"):
            problems.add(f, ln, R21, f"{c['path']} of {checked} and point {point.name} differ: text vs number")
            return None
    scale = number(c["scale"] or "1")
    if scale is None or scale == 0 or c["split"] not in ("", "phases") or (c["split"] and point.codec.form == "string"):
        problems.add(f, ln, R22, f"scale {c['scale']!r} / split {c['split']!r}: scale non-zero, split empty or phases")
        return None
    sf_offset, sf_fixed = None, 0
    if isinstance(point.sf, str):
        sf_point = model.points.get(point.sf)
        if sf_point is None:  # a scale factor outside the fixed block: not something we decode
            problems.add(f, ln, R20, f"point {point.name}'s scale factor {point.sf} is not in model {model.id}'s block")
            return None
        sf_offset = sf_point.offset
    elif isinstance(point.sf, int):
        sf_fixed = point.sf
    return SunSpecField(
        path=c["path"],
        point=point.name,
        offset=point.offset,
        codec=point.codec,
        sf_offset=sf_offset,
        sf_fixed=sf_fixed,
        scale=scale,
        split=c["split"] == "phases",
        not_implemented=sunspec_not_implemented(point.codec),
        source=Source(f, ln),
    )


def compile_sunspec(
    path: Path, shown: str, paths: dict[str, dict[str, PathSpec]], problems: Problems
) -> dict[int, SunSpecModelMap]:
    """``cmap.sunspec``: per model, the fields to decode (empty when the file is absent)."""
    if not path.is_file():
        return {}
    fields: dict[int, dict[str, SunSpecField]] = {}
    for row in read_csv(path, shown, COLUMNS, ("models", "point", "path"), problems):
        for model_id, model in _models(row, problems):
            compiled = _field(row, model, paths, problems)
            if compiled is None:
                continue
            first = fields.setdefault(model_id, {}).setdefault(compiled.path, compiled)
            if first is not compiled:
                problems.add(
                    row.file, row.line, R23, f"model {model_id} already feeds {compiled.path} at {first.source}"
                )
    return {
        m: SunSpecModelMap(m, service_of(m) or "", layout(m).length, tuple(by_path.values()))
        for m, by_path in sorted(fields.items())
    }
