"""``gx-gateway status``: a readable summary of a running gateway, from its HTTP API.

``--health`` asks only ``/healthz`` and answers with the exit status (0 healthy, 1 not or
unreachable): the Dockerfile's HEALTHCHECK and monitoring scripts use it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.ops.client import DEFAULT_URL, ApiError, base_url, get_json

EXAMPLES = f"""\
examples:
  gx-gateway status                                  # the gateway at {DEFAULT_URL}
  gx-gateway status --url http://192.168.1.20:8088
  gx-gateway status --health && echo healthy         # exit 0 healthy, 1 not (container HEALTHCHECK)
"""


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "status",
        help="summary of a running gateway: health, devices and unit ids, connections, recent errors",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=parents,
    )
    p.add_argument("--url", metavar="URL", help=f"the gateway's HTTP API (default {DEFAULT_URL})")
    p.add_argument("--health", action="store_true", help="only check /healthz; exit 0 when healthy, else 1")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds to wait for an answer")
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    try:
        base = base_url(args.url)
        if args.health:
            health = get_json(base, "/healthz", args.timeout, accept_status=(503,))
            print(f"{health.get('status', '?')}" + "".join(f"; {p}" for p in health.get("problems", [])))
            return 0 if health.get("status") == "ok" else 1
        status = get_json(base, "/api/v1/status", args.timeout)
    except ApiError as e:
        print(f"gx-gateway: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(render(base, status))
    return 0 if all(v == "ok" for v in status.get("health", {}).values()) else 1


def _duration(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d " if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


def render(base: str, status: dict[str, Any]) -> str:
    health = status.get("health", {})
    bad = {k: v for k, v in health.items() if v != "ok"}
    modbus = status.get("modbus", {})
    listen = ", ".join(f"{h}:{p}" for h, p in modbus.get("listen", [])) or "not listening"
    writes = status.get("writes", {})
    lines = [
        f"gx-gateway {status.get('version', '?')} at {base}, up {_duration(status.get('uptime_s', 0))}",
        "health:     "
        + (
            "ok (" + ", ".join(health) + ")"
            if not bad
            else "FAILING: " + "; ".join(f"{k}: {v}" for k, v in bad.items())
        ),
        f"Modbus-TCP: {listen}; {modbus.get('connections', 0)} connection(s), {modbus.get('refused', 0)} refused; "
        f"{modbus.get('requests', 0)} requests, {modbus.get('exceptions', 0)} exception replies",
        f"writes:     {writes.get('accepted', 0)} accepted, {writes.get('refused', 0)} refused",
    ]
    mqtt = status.get("mqtt")
    if mqtt:
        ago = mqtt.get("last_keepalive_s_ago")
        lines.append(
            f"MQTT:       {mqtt.get('broker')} {'connected' if mqtt.get('connected') else 'NOT CONNECTED'}"
            f" (portal {mqtt.get('portal_id')}); {mqtt.get('queued', 0)} queued, {mqtt.get('sent', 0)} sent,"
            f" {mqtt.get('dropped', 0)} dropped; last keep-alive " + ("never" if ago is None else f"{ago:g} s ago")
        )
    lines.append("devices:")
    for d in status.get("devices", []):
        unit = d.get("unit_id")
        label = f"{d['service']} {d['instance']}" + (f" ({d['name']})" if d.get("name") else "")
        age = d.get("last_update_age_s")
        seen = "never updated" if age is None else f"updated {age:g} s ago"
        state = "online " if d.get("online") else "OFFLINE"
        lines.append(f"  unit {unit if unit is not None else '-':>3}  {label:<36} {state}  {seen}")
    problems = status.get("recent_problems", [])
    lines.append("recent problems:" + ("" if problems else " none"))
    lines += [f"  {p['time']} {p['level']:<7} {p['logger']}: {p['msg']}" for p in problems[-10:]]
    return "\n".join(lines) + "\n"
