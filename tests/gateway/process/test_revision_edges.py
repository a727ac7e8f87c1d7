"""Edges of late samples and revisions (issue 8): the horizon follows the node's own sample interval."""

from __future__ import annotations

from gateway.process.aggregate import Aggregate
from gateway.process.limits import NODE_HISTORY_SAMPLES, LimitsResolver
from gateway.process.pm import PmAggregator
from tests.gateway.process.support import local, reading

SLOW_INTERVAL_S = 2.0  # the node's holding register sample_interval = 2000 ms; the site's setting stays 1 s


def means(out: list[Aggregate]) -> list[Aggregate]:
    return [a for a in out if a.statistic == "mean"]


def test_a_node_sampling_every_2_s_keeps_its_windows_revisable_as_far_back_as_its_ring_reaches() -> None:
    # Its ring holds 600 samples = 20 min. The gateway missed minutes 9:05-9:09 live; the backfill fetches them
    # at 9:24, 15-19 min later: still in the ring, so they must revise their minutes, not be dropped.
    pm = PmAggregator(LimitsResolver(), channels=("pm10",), windows=("1min",))
    ring_s = NODE_HISTORY_SAMPLES * SLOW_INTERVAL_S
    sequence = 0
    missed: list[tuple[int, float]] = []
    for step in range(int(24 * 60 / SLOW_INTERVAL_S)):
        sequence += 1
        t = local(9) + step * SLOW_INTERVAL_S
        if local(9, 5) <= t < local(9, 10):
            missed.append((sequence, t))
            continue
        pm.feed(reading("pm10", 30.0, t, sequence=sequence))
    pm.flush()
    newest = local(9) + (sequence - 1) * SLOW_INTERVAL_S
    assert all(newest - t < ring_s for _, t in missed)  # the ring still holds every one of them
    for seq, t in missed:  # the backfill's batch
        pm.feed(reading("pm10", 30.0, t, sequence=seq))
    revised = means(pm.flush())
    assert pm.dropped == 0, f"{pm.dropped} backfilled samples dropped although the node's ring held them"
    assert [(a.start, a.count, a.expected, a.valid) for a in revised] == [
        (local(9, minute), 30, 30, True) for minute in range(5, 10)
    ]


def test_a_restart_rebuilds_a_2_s_nodes_windows_as_emitted_and_re_emits_none_of_them() -> None:
    # The windows of a node sampling every 2 s were emitted valid (30 of 30 a minute). Rebuilt from the queue at a
    # restart, they must come out the same, not as revisions counted against 60 expected samples (all invalid).
    live = PmAggregator(LimitsResolver(), channels=("pm10",), windows=("1min", "1h"))
    readings = [reading("pm10", 30.0 + (i % 5), local(9) + i * SLOW_INTERVAL_S, sequence=i + 1) for i in range(900)]
    emitted: list[Aggregate] = []
    for r in readings:
        emitted += live.feed(r)
    now = readings[-1].timestamp + 1.0
    emitted += live.advance(now - 60.0)
    assert emitted and all(a.valid and a.expected == 30 for a in means(emitted) if a.window == "1min")
    known = {(a.node, a.channel, a.start): a for a in emitted}

    restarted = PmAggregator(LimitsResolver(), channels=("pm10",), windows=("1min", "1h"))
    since = restarted.replay_since("n1", now)
    again = restarted.restore([r for r in readings if r.timestamp >= since], known, since, now - 60.0)
    assert again == [], f"re-emitted after a restart: {[(a.channel, a.start, a.expected, a.valid) for a in again]}"


def test_after_a_restart_a_late_sample_never_re_emits_a_window_the_replay_did_not_rebuild() -> None:
    # Minute windows only: the replay rebuilds from "now minus the horizon" of the site's 1-s setting (900 s), but
    # the 2-s node's ring reaches 1200 s back. A sample fetched from there belongs to a window emitted whole
    # before the restart: it must not come out again as a revision 0 holding that one sample (a store that
    # keeps the last write of a window, InfluxDB, would replace the whole minute with it).
    live = PmAggregator(LimitsResolver(), channels=("pm10",), windows=("1min",))
    readings = [reading("pm10", 30.0, local(9) + i * SLOW_INTERVAL_S, sequence=i + 1) for i in range(900)]
    missed = readings[-550:-500]  # taken 1000-1100 s before the restart: lost with the killed gateway
    queued = [r for r in readings if r not in missed]
    emitted: list[Aggregate] = []
    for r in queued:
        emitted += live.feed(r)
    known = {(a.node, a.channel, a.start): a for a in emitted}
    now = readings[-1].timestamp + 1.0

    restarted = PmAggregator(LimitsResolver(), channels=("pm10",), windows=("1min",))
    since = restarted.replay_since("n1", now)
    restarted.restore([r for r in queued if r.timestamp >= since - 60.0], known, since, now - 60.0)
    for r in missed:  # the backfill
        restarted.feed(r)
    for again in restarted.flush():
        before = known.get((again.node, again.channel, again.start))
        assert before is None or again.revision > before.revision, (again.channel, again.start, again.revision)
        assert again.count >= (before.count if before else 0)


def test_a_window_forgotten_while_the_horizon_was_short_is_not_re_emitted_when_it_grows_again() -> None:
    # The node reboots (its sequence starts again): until two new samples are in, its interval is unknown and
    # the horizon falls back to the site's 1 s (900 s), so older closed windows are forgotten. A sample for one
    # of them, arriving once the 2-s horizon (1500 s) is back, is too late, not a new window of one sample.
    pm = PmAggregator(LimitsResolver(), channels=("pm10",), windows=("1min",))
    emitted: list[Aggregate] = []
    for i in range(900):
        emitted += pm.feed(reading("pm10", 30.0, local(9) + i * SLOW_INTERVAL_S, sequence=i + 1))
    rebooted = local(9) + 900 * SLOW_INTERVAL_S
    emitted += pm.feed(reading("pm10", 30.0, rebooted, sequence=1))
    emitted += pm.advance(rebooted)
    for i in range(1, 20):
        emitted += pm.feed(reading("pm10", 30.0, rebooted + i * SLOW_INTERVAL_S, sequence=i + 1))
    old = local(9) + 1800.0 - 1000.0  # 1000 s before the reboot: inside the 2-s horizon, outside the 1-s one
    dropped = pm.dropped
    pm.feed(reading("pm10", 31.0, old, sequence=5000))
    assert [a for a in pm.flush() if a.revision == 0] == []
    assert pm.dropped == dropped + 1
