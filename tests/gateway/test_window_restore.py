"""A restart rebuilds its aggregation windows from the durable queue: `kill -9` mid-hour gives the same hour.

The pipeline and a real DurableQueue file run sample by sample on an
injected clock; a "kill" drops the pipeline without closing it, and what it
had not appended to the queue yet is lost, as in a real crash (the backfill
fetches those samples again from the node's history: here they are fed again).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from gateway.deliver.queue import DurableQueue
from gateway.deliver.records import Record
from gateway.deliver.replay import QueueReplay
from gateway.model import Quality, Reading
from gateway.pipeline import Pipeline, build_pipeline
from gateway.process.aggregate import Aggregate
from gateway.process.limits import LimitsResolver
from tests.gateway.process.support import local

NODE = "dust-1"
T0 = local(9)  # 09:00 local


def sample(i: int) -> list[Reading]:
    """Sample i of the node (one per second from 09:00), smooth enough that no processor flags it."""
    t = T0 + i
    pm10 = round(60.0 + 25.0 * math.sin(i / 300.0) + (i % 7) * 0.3, 1)
    return [
        Reading(NODE, "dust", "pm25", round(pm10 * 0.6, 1), "ug/m3", Quality.NORMAL, t, i + 1),
        Reading(NODE, "dust", "pm10", pm10, "ug/m3", Quality.NORMAL, t, i + 1),
    ]


def new_pipeline() -> Pipeline:
    return build_pipeline(LimitsResolver())


class Run:
    """A pipeline feeding a queue: records reach the file once a minute (what a crash loses is the rest)."""

    def __init__(self, queue: DurableQueue, pipeline: Pipeline) -> None:
        self.queue = queue
        self.pipeline = pipeline
        self.pending: list[Record] = []

    def step(self, i: int) -> None:
        now = T0 + i + 0.5  # polled half a second after the sample
        self.pending += self.pipeline.feed(sample(i), now)
        self.pending += self.pipeline.tick(now)
        if i % 60 == 59:
            self.queue.append(self.pending)
            self.pending = []

    def restore(self, now: float) -> list[Record]:
        since = self.pipeline.replay_since([NODE], now)
        replay = QueueReplay(self.queue.path)
        try:
            made = self.pipeline.restore(replay.readings_since(since), replay.emitted(since), since, now)
        finally:
            replay.close()
        self.pending += made
        return made


def aggregates(queue: DurableQueue) -> list[Aggregate]:
    replay = QueueReplay(queue.path)
    try:
        return list(replay.emitted(0.0).values())
    finally:
        replay.close()


def emissions(queue: DurableQueue) -> Counter[tuple[str, float, int]]:
    batch = queue.read("s", limit=1_000_000)
    records = [q.record for q in batch.items]
    return Counter((r.channel, r.start, r.revision) for r in records if isinstance(r, Aggregate))


def test_a_kill_at_minute_37_gives_the_same_hourly_mean_and_emits_no_window_twice(tmp_path: Path) -> None:
    end = 3600 + 120  # past 10:00, so the hour closes
    whole = Run(DurableQueue(tmp_path / "whole.sqlite3", ["s"]), new_pipeline())
    for i in range(end):
        whole.step(i)
    whole.queue.append(whole.pending)

    killed = Run(DurableQueue(tmp_path / "killed.sqlite3", ["s"]), new_pipeline())
    kill_at = 37 * 60 + 20
    for i in range(kill_at):
        killed.step(i)
    # kill -9: the pipeline and its 20 s of unqueued records are gone.
    queued = killed.queue.count()
    killed.queue.close()
    queue = DurableQueue(tmp_path / "killed.sqlite3", ["s"])
    assert queue.count() == queued
    resume = queue.latest_sequence(NODE)
    assert resume == 37 * 60  # the last sample queued: 09:36:59
    restarted = Run(queue, new_pipeline())
    made = restarted.restore(T0 + kill_at + 3.0)
    # The minute 09:36 closed with the first sample of 09:37, which the crash lost: emitted now, once.
    # Every window the queue holds was emitted already: nothing of those again (nor any alarm).
    assert {(type(r).__name__, r.window, r.start, r.revision) for r in made if isinstance(r, Aggregate)} == {
        ("Aggregate", "1min", T0 + 36 * 60, 0)
    }
    assert all(isinstance(r, Aggregate) for r in made)
    for i in range(resume, end):  # the backfill from the node's history, then live samples
        restarted.step(i)
    queue.append(restarted.pending)

    hour = [a for a in aggregates(queue) if a.channel == "pm10_1h_mean" and a.start == T0]
    expected = [a for a in aggregates(whole.queue) if a.channel == "pm10_1h_mean" and a.start == T0]
    assert len(hour) == 1 and hour == expected
    assert hour[0].count == 3600 and hour[0].valid
    # Every window of every statistic, the same as without the kill, each emitted once.
    assert sorted(aggregates(queue), key=repr) == sorted(aggregates(whole.queue), key=repr)
    assert emissions(queue) == emissions(whole.queue)
    assert max(emissions(queue).values()) == 1
    whole.queue.close()
    queue.close()


def test_revisions_go_on_counting_across_a_restart(tmp_path: Path) -> None:
    """A revision after the restart must be numbered above the last one queued, or a store would ignore it."""
    queue = DurableQueue(tmp_path / "q.sqlite3", ["s"])
    first = Run(queue, new_pipeline())
    pm10 = [r for i in range(60) for r in sample(i) if r.channel == "pm10"]
    first.pending += first.pipeline.feed([*pm10[:30], sample(60)[1]], T0 + 60.5)  # 09:00 closes with 30 of 60
    first.pending += first.pipeline.feed(pm10[30:45], T0 + 61.5)  # backfilled: revision 1
    queue.append(first.pending)
    # Killed before the rest of the backfill was queued.
    second = Run(queue, new_pipeline())
    assert second.restore(T0 + 63.0) == []
    out = second.pipeline.feed(pm10[45:], T0 + 64.0)
    (mean,) = [r for r in out if isinstance(r, Aggregate) and r.channel == "pm10_1min_mean"]
    assert (mean.count, mean.valid, mean.revision) == (60, True, 2)
    assert mean.value == sum(r.value or 0.0 for r in pm10) / 60
    queue.close()


def test_a_body_that_does_not_decode_is_counted_and_skipped_by_the_replay(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["s"])
    queue.append(sample(0))
    queue._db.execute(  # a reading written by a newer, or broken, gateway
        "INSERT INTO records (kind, node, ts, added, body) VALUES ('reading', ?, ?, 0, '{\"node\": 1}')", (NODE, T0 + 1)
    )
    queue.append(sample(2))
    replay = QueueReplay(queue.path)
    try:
        assert [r.sequence for r in replay.readings_since(T0)] == [1, 1, 3, 3]
        assert (replay.readings, replay.undecodable) == (4, 1)
    finally:
        replay.close()
        queue.close()
