"""What Grafana does to a panel's InfluxQL before sending it, done here so the committed dashboards can be run.

Grafana is not installable on these machines. Its InfluxDB data source (raw InfluxQL mode) replaces:

* ``$timeFilter`` with ``time >= <from>ms and time <= <to>ms`` (epoch milliseconds of the time range);
* ``$__interval`` with the display interval (e.g. ``10m``);
* a template variable of a multi-value / include-All variable with its regex-escaped value (lodash's
  escapeRegExp), several values as ``(a|b)``, and "All" with the variable's ``allValue`` unescaped.

The dashboards are read from their committed JSON (dashboards/json/), so what is tested is what a bureau loads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JSON_DIR = Path(__file__).resolve().parents[2] / "dashboards" / "json"
_REGEX_SPECIAL = re.compile(r"[\\^$.*+?()[\]{}|]")
_VARIABLE = re.compile(r"\$(\w+)")

ALL = None  # a variable set to "All"


def escape_regex(value: str) -> str:
    """lodash's escapeRegExp, which Grafana's InfluxDB data source applies to variable values."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((JSON_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class Panel:
    board: str
    title: str
    type: str
    targets: tuple[dict[str, Any], ...]
    raw: dict[str, Any]

    def query(self, ref_id: str = "A") -> str:
        return str(next(t for t in self.targets if t["refId"] == ref_id)["query"])


def panels(name: str) -> Iterator[Panel]:
    for panel in load(name)["panels"]:
        yield Panel(name, panel["title"], panel["type"], tuple(panel.get("targets", [])), panel)


def panel(name: str, title: str) -> Panel:
    return next(p for p in panels(name) if p.title == title)


def variable_queries(name: str) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in load(name)["templating"]["list"]}


def interpolate(
    query: str,
    variables: Mapping[str, Sequence[str] | None],
    all_values: Mapping[str, str],
    start: float | None = None,
    end: float | None = None,
    interval: str = "10m",
) -> str:
    """The query as Grafana sends it: times in epoch seconds, variables by name (None: "All")."""
    if "$timeFilter" in query:
        assert start is not None and end is not None, query
        query = query.replace("$timeFilter", f"time >= {round(start * 1000)}ms and time <= {round(end * 1000)}ms")
    query = query.replace("$__interval", interval)

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise AssertionError(f"query uses ${name}, which the test did not set: {query}")
        chosen = variables[name]
        if chosen is ALL:
            return all_values[name]
        escaped = [escape_regex(v) for v in chosen]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    return _VARIABLE.sub(value, query)
