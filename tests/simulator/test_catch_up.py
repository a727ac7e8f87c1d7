"""A host that falls behind: the bus either gives up the backlog (counted) or, lossless, takes every sample late."""

from __future__ import annotations

from pathlib import Path

from simulator.bus import MAX_CATCH_UP
from simulator.site import BusSpec, NodeSpec, Site


def stalled_bus(tmp_path: Path, lossless: bool) -> tuple[Site, int]:
    """A one-node site whose bus thread is stopped after boot: the test turns its loop by hand."""
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", lossless=lossless)
    site.start()
    bus = site.running[0]
    bus._halt()  # type: ignore[attr-defined]  # the serving thread, not the nodes
    return site, bus.nodes[0].node.seq


def test_a_bus_that_falls_too_far_behind_gives_up_the_backlog_and_counts_it(tmp_path: Path) -> None:
    site, first = stalled_bus(tmp_path, lossless=False)
    bus, node = site.running[0], site.running[0].nodes[0].node
    behind = node.next_sample_ms + 1000 * (3 * MAX_CATCH_UP)  # 1 s samples: 3 turns' worth late
    bus.maintain(behind)
    assert node.seq - first == MAX_CATCH_UP + 1
    assert bus.stats.skipped_samples >= 2 * MAX_CATCH_UP - 1
    site.stop()


def test_a_lossless_bus_takes_every_sample_however_late_a_turn_at_a_time(tmp_path: Path) -> None:
    site, first = stalled_bus(tmp_path, lossless=True)
    bus, node = site.running[0], site.running[0].nodes[0].node
    due = node.next_sample_ms
    behind = due + 1000 * (3 * MAX_CATCH_UP)
    bus.maintain(behind)
    assert node.seq - first == MAX_CATCH_UP  # one turn's worth; requests are answered between turns
    turns = 1
    while node.sample_due(behind):
        bus.maintain(behind)
        turns += 1
    assert bus.stats.skipped_samples == 0
    assert node.seq - first == 3 * MAX_CATCH_UP + 1 and turns == 4
    assert site.sampled_until() > site.skip + behind / 1000
    site.stop()
