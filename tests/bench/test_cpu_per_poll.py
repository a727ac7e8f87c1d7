"""The pure parts of bench/cpu_per_poll.py: what it generates is accepted by the real parsers, and
its poll count and profile summary count what they claim."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bench.cpu_per_poll import (
    LAYOUTS,
    gateway_config,
    least_squares,
    polls_between,
    scenario_text,
    short,
    summarise_profile,
)
from gateway.deliver.sqlite_store import SqliteStore
from gateway.ops.config import load_config
from simulator.scenario import loads_scenario


def test_scenario_and_config_describe_the_same_buses(tmp_path: Path) -> None:
    for layout in LAYOUTS.values():
        scenario = loads_scenario(scenario_text(layout))
        where = {bus.name: f"/dev/pts/{number}" for number, bus in enumerate(scenario.buses)}
        config = load_config(gateway_config(tmp_path, layout, where, []))
        assert [(b.name, b.baud, len(b.nodes)) for b in scenario.buses] == \
            [(b.name, 19200, count) for b, count in zip(config.buses, layout, strict=True)]
        simulated = {(bus.name, node.unit_id, node.kind, node.name) for bus in scenario.buses for node in bus.nodes}
        polled = {(bus.name, node.unit_id, node.kind, node.name) for bus in config.buses for node in bus.nodes}
        assert simulated == polled
        assert all(node.interval == 1.0 for bus in config.buses for node in bus.nodes)


def test_polls_are_distinct_samples_inside_the_span(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    SqliteStore(store).close()
    rows = [("a", "pm10", 10.0, 1), ("a", "pm25", 10.0, 1),  # one sample, two channels: one poll
            ("a", "pm10", 11.0, 2), ("b", "pm10", 11.0, 2),  # same sequence, two nodes: two polls
            ("a", "pm10", 9.99, 0), ("a", "pm10", 12.0, 3)]  # outside [10, 12)
    with sqlite3.connect(store) as db:
        db.executemany("INSERT INTO readings (node, kind, channel, value, unit, quality, ts, sequence) "
                       "VALUES (?, 'dust', ?, 1.0, 'ug/m3', 'N', ?, ?)", rows)
    assert polls_between(store, 10.0, 12.0) == 3


def test_profile_summary_counts_own_and_inclusive_samples(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "process 1:\"sitewatch run\";thread (0x1);run (/x/lib/python3.11/asyncio/runners.py:1);"
        "_readable (/work/wt/cpu/gateway/acquire/link.py:287) 3\n"
        "process 1:\"sitewatch run\";thread (0x1);run (/x/lib/python3.11/asyncio/runners.py:1) 1\n"
    )
    text = summarise_profile(raw)
    assert text.startswith("4 samples")
    assert "| 75.0 | `_readable (gateway/acquire/link.py)` |" in text
    assert "| 25.0 | `run (asyncio/runners.py)` |" in text
    assert "| 100.0 | `run (asyncio/runners.py)` |" in text
    assert short("f (/usr/lib/python3/dist-packages/site-packages/pkg/mod.py:3)") == "f (pkg/mod.py)"


def test_the_fit_finds_the_fixed_and_the_per_poll_cost() -> None:
    # On a straight line: found exactly; the per-poll cost is the slope, the fixed cost the intercept.
    assert least_squares([(1.0, 3.5), (4.0, 6.5), (16.0, 18.5)]) == pytest.approx((1.0, 2.5))
    # Scattered evenly about 2 + 0.5 x: the line through the middle.
    slope, intercept = least_squares([(2.0, 3.1), (2.0, 2.9), (10.0, 7.2), (10.0, 6.8)])
    assert slope == pytest.approx(0.5) and intercept == pytest.approx(2.0)
