"""Render ``cmap.n2k`` as Markdown: docs/pgns.md, the NMEA 2000 side of the register list."""

from __future__ import annotations

from registers.model import CompiledMap
from registers.pgn_specs import N2kDeviceSpec, N2kField, database


def _source(f: N2kField) -> str:
    if f.instance:
        return "data instance"
    if f.path is None:
        return f"= {f.constant}"
    return f"`{f.path}`"


def _convert(f: N2kField) -> str:
    if f.labels is not None:
        return "; ".join(f"{k}={v}" for k, v in sorted(f.labels.items()))
    if f.factor == 1.0 and f.offset == 0.0:
        return ""
    parts = [f"× {f.factor:g}"] if f.factor != 1.0 else []
    return " ".join(parts + ([f"+ {f.offset:g}"] if f.offset else []))


def _device(d: N2kDeviceSpec) -> list[str]:
    db = database()
    classes = dict(db.lookup("DEVICE_CLASS"))
    lines = [
        "",
        f"### {d.service} / {d.role}: {d.model}",
        "",
        f"Device class {d.device_class} ({classes.get(d.device_class, '?')}), function {d.device_function}; "
        f"data instances from the `{d.pool}` pool.",
        "",
        "| PGN | name | interval | frames | field | from | conversion | required |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in d.pgns:
        info = db.pgn_info(p.pgn_id)
        names = {fi.id: fi for fi in info.fields}
        for i, f in enumerate(p.fields):
            fi = names[f.field]
            unit = f" [{fi.unit}]" if fi.unit else ""
            field = (f"L{f.line}." if f.line else "") + f.field + unit
            head = (
                [str(p.pgn), p.pgn_id, f"{p.interval_ms} ms", "fast-packet" if p.fast else "single"]
                if i == 0
                else ["", "", "", ""]
            )
            cells = [*head, field, _source(f), _convert(f).replace("|", "/"), "yes" if f.required else ""]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_pgns_markdown(cmap: CompiledMap) -> str:
    devices: list[N2kDeviceSpec] = [d for service in sorted(cmap.n2k) for d in cmap.n2k[service]]
    pgns = sorted({p.pgn for d in devices for p in d.pgns})
    lines = [
        "# NMEA 2000 PGN map",
        "",
        "Generated from `mappings/n2k/` by `gx-gateway pgns` (`make docs`); do not edit by hand.",
        f"Field ids, units and labels are canboat's (database {database().version}, as the `nmea2000`",
        "package ships it); values go out in SI units. A PGN is sent at its interval while every",
        "*required* value is valid and fresh, and stops otherwise. Every virtual device also sends",
        "ISO Address Claim (60928), Product Information (126996), Heartbeat (126993, 60 s) and",
        "answers ISO Requests (59904) and PGN List requests (126464); 126208 changes its instances.",
        "",
        f"PGNs sent: {', '.join(str(p) for p in pgns)}.",
        "",
        "Checked with two decoders: every mapping's samples and the tests decode with the `nmea2000`",
        "package (canboat's database); a demo log also decodes with Signal K's canboatjs",
        "(`analyzerjs`). They agree on every field sent except one: J1939 AC power PGNs (650xx)",
        "leave `apparentPower` not available, which canboatjs shows as -2000000001 (its offset",
        "applied to the sentinel) and the nmea2000 decoder as null. 127503/127504 carry the same",
        "AC values without that ambiguity.",
        "",
        "Device functions are canboat's (DEVICE_FUNCTION, class 35): the inverter/charger's AC",
        'output device is 154 "AC Output" and its AC input device 153 "AC Mains (Utility/Shore)".',
        "",
        "## Virtual devices",
    ]
    for d in devices:
        lines += _device(d)
    return "\n".join(lines) + "\n"
