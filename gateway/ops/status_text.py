"""A live-state snapshot (live_state.py) as the lines `sitewatch status` prints for a person. Pure."""

from __future__ import annotations

import time
from typing import Any


def age(seconds: float | None) -> str:
    """'3.2 s', '4 min', '2.5 h', '3.1 d'; '-' when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def render(state: dict[str, Any]) -> str:
    clock = "valid" if state["clock"]["valid"] else "NOT VALID (readings are held until it is)"
    lines = [
        f"sitewatch {state['version']} - site {state['site']} - pid {state['pid']} - up {age(state['uptime_s'])}",
        f"clock: {clock}",
        f"nodes: {state['nodes_online']}/{state['nodes_total']} online",
        "",
    ]
    for bus in state["buses"]:
        lines.append(f"bus {bus['name']} ({bus['address']}, {bus['transport']}): {bus['online']}/{bus['nodes']} online")
        for n in (n for n in state["nodes"] if n["bus"] == bus["name"]):
            mark = "online " if n["online"] else "OFFLINE"
            if n["online"] and n["stale"]:
                mark = "STALE  "
            seen = "never answered" if n["last_seen_age_s"] is None else f"last seen {age(n['last_seen_age_s'])} ago"
            detail = f"{seen}, latency {_ms(n['latency_ms'])}, {n['success_rate'] * 100:.0f}% of {n['polls']} polls ok"
            if not n["online"] and n["last_error"]:
                detail += f", last error: {n['last_error']}"
            lines.append(f"  {mark} {n['name']:<16} {n['kind']:<8} unit {n['unit_id']!s:<3} {detail}")
    lines.append("")
    lines.append("sinks:")
    for s in state["sinks"]:
        backlog = "?" if s["backlog"] is None else str(s["backlog"])
        status = "up" if s["up"] else ("STOPPED: " + s["fatal"] if s["fatal"] else "DOWN: " + s["last_error"])
        lines.append(f"  {s['name']:<20} backlog {backlog:>7}, oldest {age(s['oldest_age_s']):>8}, "
                     f"delivered {s['delivered']}, {status}")
    if not state["queue_answered"]:
        lines.append("  (the queue did not answer in time: backlogs unknown)")
    drops = {k: v for k, v in state["drops"].items() if v}
    lines.append("drops: " + (", ".join(f"{k} {v}" for k, v in sorted(drops.items())) if drops else "none"))
    lines.append("")
    if state["alarms"]:
        lines.append(f"alarms active: {len(state['alarms'])}")
        for a in state["alarms"]:
            severity = "ALARM" if a["severity"] == "alarm" else "pre-warning"
            acked = a.get("acknowledged")
            note = f", acknowledged by {acked['by']} at {_when(acked['at'])}" if acked else ""
            lines.append(f"  {severity:<11} {a['alarm']} on {a['node']}/{a['channel']} since {_when(a['since'])}{note}")
    else:
        lines.append("alarms active: none")
    siren = state.get("siren")
    if siren:
        lines.append(f"siren ({siren['node']}.{siren['coil']}): " + ("ON: " + "; ".join(siren["causes"]) if siren["on"]
                                                                     else "off"))
    for fault in state["faults"]:
        lines.append(f"FAULT: {fault}")
    for loop in state.get("stuck", {}):
        lines.append(f"STUCK: {loop}")
    return "\n".join(lines)
