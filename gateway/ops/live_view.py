"""The demo's live view: latest reading per node and channel, with node health."""

from __future__ import annotations

import time

from rich.table import Table

from gateway.acquire.poller import NodeHealth
from gateway.model import Reading


class LatestReadings:
    def __init__(self) -> None:
        self.latest: dict[tuple[str, str], Reading] = {}
        self.count = 0

    def update(self, readings: list[Reading]) -> None:
        self.count += len(readings)
        for r in readings:
            self.latest[(r.node, r.channel)] = r

    def nodes(self) -> list[str]:
        return sorted({node for node, _ in self.latest})

    def table(self, health: dict[str, NodeHealth], title: str) -> Table:
        table = Table(title=title, expand=False)
        for column in ("node", "channel", "value", "unit", "flag", "seq", "age s"):
            table.add_column(column, justify="right" if column in ("value", "seq", "age s") else "left")
        now = time.time()
        last_node = ""
        for (node, channel), r in sorted(self.latest.items()):
            h = health.get(node)
            label = node if node != last_node else ""
            if label and h is not None and not h.online:
                label += " (offline)"
            elif label and h is not None and h.stale:
                label += " (stale)"  # answers, but no new sample
            last_node = node
            value = "-" if r.value is None else f"{r.value:g}"
            table.add_row(label, channel, value, r.unit, r.quality.value, str(r.sequence), f"{now - r.timestamp:.1f}")
        return table

    def line(self) -> str:
        parts = []
        for node in self.nodes():
            values = [
                f"{r.channel}={'-' if r.value is None else format(r.value, 'g')}{r.unit and ' ' + r.unit}"
                for (n, _), r in sorted(self.latest.items())
                if n == node
            ]
            parts.append(f"{node}: " + ", ".join(values))
        return " | ".join(parts)


def sinks_line(delivered: dict[str, int], waiting: dict[str, int]) -> str:
    """Per sink: records delivered, and waiting in the queue (its backlog)."""
    parts = [f"{name} {count} delivered, {waiting.get(name, 0)} waiting" for name, count in delivered.items()]
    return "sinks: " + " | ".join(parts)
