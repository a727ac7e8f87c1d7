"""Backfill planning, sans-IO: which missed samples to fetch, which are lost, and the order things come out.

The property test drives gateway/acquire/backfill.py against a model node:
a ring of the last `capacity` samples, a sample per second, restarts that
reset the sequence and empty the ring. Polls, window reads and restarts come
in any order; whatever happens, every sample the node took from the first
one delivered on must come out exactly once, as a sample or inside a loss,
in order, and no read may ask for a sample the node did not have.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import regmap
from firmware.node import Node
from gateway.acquire.backfill import OVERWRITTEN, REBOOT, UNAVAILABLE, Backfill, Lost, Sampled, plan
from gateway.acquire.decode import KIND_BY_NAME, DecodeError, decode_history
from gateway.protocols import modbus_rtu_master as rtu

# -- plan ------------------------------------------------------------------------------------


@given(st.integers(0, 10_000), st.integers(0, 700), st.integers(-1, 10_800))
def test_plan_splits_the_missed_samples_into_lost_and_fetched(last: int, missed: int, oldest: int) -> None:
    seq = last + 1 + missed
    oldest = max(0, oldest)
    p = plan(last, seq, oldest)
    # Together, in order, exactly the missed samples: nothing twice, nothing left out.
    assert list(p.lost) + list(p.fetch) == list(range(last + 1, seq))
    # Never a read of a sample the ring does not hold, or of one not yet taken.
    assert all(oldest > 0 and oldest <= s < seq for s in p.fetch)
    # Lost only what the ring no longer holds.
    assert all(oldest == 0 or s < oldest or oldest >= seq for s in p.lost)


def test_plan_vectors() -> None:
    assert (list(plan(10, 11, 1).lost), list(plan(10, 11, 1).fetch)) == ([], [])  # nothing missed
    assert (plan(10, 15, 1).lost, plan(10, 15, 1).fetch) == (range(11, 11), range(11, 15))
    assert (plan(10, 50, 30).lost, plan(10, 50, 30).fetch) == (range(11, 30), range(30, 50))
    assert (plan(10, 50, 0).lost, plan(10, 50, 0).fetch) == (range(11, 50), range(50, 50))  # no ring at all
    assert (plan(0, 4, 1).lost, plan(0, 4, 1).fetch) == (range(1, 1), range(1, 4))  # a fresh boot


# -- the cursor, by hand -----------------------------------------------------------------------


def rec(seq: int, t: float | None = None) -> Sampled[int]:
    return Sampled(seq, float(seq) if t is None else t, seq)


def sequences(items: list[Sampled[int] | Lost] | None) -> list[int | str]:
    assert items is not None
    return [i.sequence if isinstance(i, Sampled) else f"lost {i.first}-{i.last}" for i in items]


def test_a_resumed_gateway_fetches_what_it_missed_and_then_delivers_the_polled_sample() -> None:
    b: Backfill[int] = Backfill(last=10)
    assert b.sample(15, 1, 15.0, 15) == []  # held: 11 .. 14 come first
    assert b.busy and b.waiting == 4
    want = b.fetch(3)
    assert want == range(11, 14)
    assert sequences(b.records(11, [rec(s) for s in want])) == [11, 12, 13]
    assert b.fetch(3) == range(14, 15)
    assert sequences(b.records(14, [rec(14), rec(15)])) == [14, 15]  # a longer read: the rest is ignored
    assert not b.busy and b.stats.fetched == 4 and b.stats.lost == 0
    assert sequences(b.sample(16, 1, 16.0, 16)) == [16]


def test_samples_older_than_the_ring_are_one_gap_with_its_times() -> None:
    b: Backfill[int] = Backfill()
    assert sequences(b.sample(10, 1, 10.0, 10)) == [10]
    assert sequences(b.sample(11, 1, 11.0, 11)) == [11]
    assert b.sample(50, 30, 50.0, 50) == []
    assert b.fetch(100) == range(30, 50)
    out = b.records(30, [rec(s) for s in range(30, 50)])
    assert sequences(out) == ["lost 12-29", *range(30, 51)]
    assert out is not None
    lost = out[0]
    assert isinstance(lost, Lost)
    assert (lost.reason, lost.start, lost.end, lost.count) == (OVERWRITTEN, 11.0, 30.0, 18)
    assert b.stats.missed == 38 == b.stats.fetched + b.stats.lost  # 12 .. 49: 18 overwritten, 20 fetched


def test_the_ring_moving_on_during_a_backfill_turns_the_rest_into_a_gap() -> None:
    b: Backfill[int] = Backfill(last=100)
    assert b.sample(120, 90, 120.0, 120) == []
    assert sequences(b.records(101, [rec(101), rec(102)])) == [101, 102]
    # The next poll says the ring now starts at 110; a read finds 110 gone as well.
    assert b.sample(121, 110, 121.0, 121) == []
    assert b.fetch(50) == range(110, 120)
    out = b.records(110, [None, *[rec(s) for s in range(111, 120)]])
    assert sequences(out) == ["lost 103-110", *range(111, 122)]


def test_a_gap_after_a_resume_gets_a_start_estimated_from_the_sample_interval() -> None:
    b: Backfill[int] = Backfill(last=10)
    b.sample(50, 30, 100.0, 50)  # two seconds per sample
    out = b.records(30, [rec(s, 2.0 * s) for s in range(30, 50)])
    assert out is not None and isinstance(out[0], Lost)
    # Sample 10 was taken one interval before 11, 20 intervals before 30.
    assert out[0].start == 60.0 - 20 * 2.0 and out[0].end == 60.0


def test_a_reboot_loses_what_the_old_boot_still_owed_and_starts_again_from_one() -> None:
    b: Backfill[int] = Backfill()
    b.sample(20, 1, 20.0, 20)
    b.sample(21, 1, 21.0, 21)
    assert b.sample(30, 1, 30.0, 30) == []  # 22 .. 29 to fetch
    assert sequences(b.records(22, [rec(22), rec(23)])) == [22, 23]
    # The node restarted; back at 40 s, it samples on; the poll finds its third sample.
    out: list[Sampled[int] | Lost] | None = b.sample(3, 1, 42.0, 1003, rebooted=True)
    assert sequences(out) == ["lost 24-29", 30]
    assert b.fetch(10) == range(1, 3)
    out = b.records(1, [Sampled(1, 40.0, 1001), Sampled(2, 41.0, 1002)])
    assert sequences(out) == ["lost 31-None", 1, 2, 3]
    assert out is not None
    gone = out[0]
    assert isinstance(gone, Lost)
    assert (gone.reason, gone.start, gone.end, gone.count) == (REBOOT, 30.0, 40.0, None)


def test_a_restart_between_two_samples_loses_nothing() -> None:
    b: Backfill[int] = Backfill()
    for s in range(5, 9):
        b.sample(s, 1, float(s), s)
    assert sequences(b.sample(1, 1, 9.2, 1)) == [1]  # the sequence went back; 1.2 intervals later
    assert b.stats.gaps == 0


def test_a_sequence_below_the_resumed_one_is_a_restart_of_unknown_extent() -> None:
    b: Backfill[int] = Backfill(last=500)
    out: list[Sampled[int] | Lost] | None = b.sample(2, 1, 7.0, 2)
    assert out == [] and b.fetch(5) == range(1, 2)
    out = b.records(1, [rec(1, 6.0)])
    assert sequences(out) == ["lost 501-None", 1, 2]
    assert out is not None and isinstance(out[0], Lost)
    assert out[0].start == out[0].end == 6.0  # when it began, nobody can tell


def test_records_that_do_not_fit_are_refused_and_nothing_is_taken() -> None:
    b: Backfill[int] = Backfill(last=10)
    b.sample(15, 1, 15.0, 15)
    assert b.records(11, [rec(12)]) is None  # sample 12 where 11 was asked
    assert b.records(12, [rec(12)]) is None  # not where the backfill stands
    assert b.records(11, [rec(11, 99.0)]) is None  # newer than the sample it should precede
    assert b.stats.inconsistent == 3 and b.waiting == 4
    assert sequences(b.records(11, [rec(s) for s in range(11, 15)])) == [11, 12, 13, 14, 15]


def test_abandoning_delivers_what_was_polled_after_a_gap() -> None:
    b: Backfill[int] = Backfill(last=10)
    b.sample(15, 1, 15.0, 15)
    b.sample(16, 1, 16.0, 16)
    out = b.abandon(UNAVAILABLE)
    assert sequences(out) == ["lost 11-14", 15, 16]
    # Resumed: sample 10's time is estimated from the interval the two polled samples show.
    assert out[0] == Lost(11, 14, UNAVAILABLE, 10.0, 15.0)


def test_a_failed_poll_in_the_middle_of_a_backfill_is_fetched_too() -> None:
    b: Backfill[int] = Backfill(last=10)
    b.sample(13, 1, 13.0, 13)
    b.sample(16, 1, 16.0, 16)  # 14 and 15 were not polled either
    assert sequences(b.records(11, [rec(11), rec(12)])) == [11, 12, 13]
    assert b.fetch(10) == range(14, 16)
    assert sequences(b.records(14, [rec(14), rec(15)])) == [14, 15, 16]
    # Each poll's skipped samples are counted as found: the poller's log announces the second run too.
    assert b.stats.missed == 4 == b.stats.fetched + b.stats.lost


# -- the cursor against a model node ------------------------------------------------------------


@dataclass
class ModelNode:
    """A node with a history ring of `capacity` samples, one sample a second, restarts."""

    capacity: int
    boot: int = 0
    seq: int = 0
    now: float = 0.0
    ring: deque[tuple[int, float]] = field(default_factory=deque)
    taken: list[tuple[int, int]] = field(default_factory=list)  # (boot, sequence) of every sample

    def sample(self) -> None:
        self.now += 1.0
        self.seq += 1
        self.ring.append((self.seq, self.now))
        if len(self.ring) > self.capacity:
            self.ring.popleft()
        self.taken.append((self.boot, self.seq))

    def reboot(self, down: float) -> None:
        self.now += down
        self.boot += 1
        self.seq = 0
        self.ring.clear()
        self.sample()  # the boot self-test takes the first sample

    @property
    def oldest(self) -> int:
        return self.ring[0][0] if self.ring else 0

    def newest(self) -> Sampled[tuple[int, int]]:
        return Sampled(self.seq, self.ring[-1][1], (self.boot, self.seq))

    def record(self, seq: int) -> Sampled[tuple[int, int]] | None:
        for s, t in self.ring:
            if s == seq:
                return Sampled(s, t, (self.boot, s))
        return None


step = st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 8)),
    st.tuples(st.just("poll"), st.just(0)),
    st.tuples(st.just("fetch"), st.integers(1, 6)),
    st.tuples(st.just("reboot"), st.integers(0, 4)),
)


@settings(max_examples=400, deadline=None)
@given(
    capacity=st.integers(1, 25),
    before=st.integers(1, 30),
    resume_back=st.one_of(st.none(), st.integers(0, 40)),
    steps=st.lists(step, max_size=60),
)
def test_every_sample_comes_out_once_in_order_or_inside_one_gap(
    capacity: int, before: int, resume_back: int | None, steps: list[tuple[str, int]]
) -> None:
    node = ModelNode(capacity)
    for _ in range(before):
        node.sample()
    resumed = None if resume_back is None else max(0, node.seq - resume_back)
    cursor: Backfill[tuple[int, int]] = Backfill(resumed)
    out: list[Sampled[tuple[int, int]] | Lost] = []
    seen_boot = node.boot
    # Boots the gateway can know of: those a poll saw, and the one it resumed in. (A node that
    # restarts twice between two polls took samples in a boot nobody can tell existed.)
    visible = {0} if resumed is not None else set()
    polled = (0, 0)  # (oldest, newest) as the last poll saw them

    def poll() -> None:
        nonlocal seen_boot, polled
        rebooted = node.boot != seen_boot  # the poller sees the boot count change
        seen_boot = node.boot
        visible.add(node.boot)
        polled = (node.oldest, node.seq)
        out.extend(cursor.sample(node.seq, node.oldest, node.newest().taken, node.newest().payload, rebooted))

    def fetch(limit: int) -> None:
        want = cursor.fetch(limit)
        if want is None:
            return
        assert 1 <= len(want) <= limit
        # Never beyond the ring as the last poll saw it, never a sample not taken yet.
        assert polled[0] <= want.start and want.stop <= polled[1]
        got = cursor.records(want.start, [node.record(s) for s in want])
        if got is None:
            assert node.boot != seen_boot  # only a restart nobody has seen yet makes a read not fit
        else:
            out.extend(got)

    for op, n in steps:
        if op == "advance":
            for _ in range(n):
                node.sample()
        elif op == "poll":
            poll()
        elif op == "fetch":
            fetch(n)
        else:
            node.reboot(float(n))
    # The bus is back for good: poll and fetch until the backfill is through.
    node.sample()
    poll()
    while cursor.busy:
        fetch(100)
        poll()
    assert not cursor.busy

    samples = [i for i in out if isinstance(i, Sampled)]
    keys = [s.payload for s in samples]
    assert keys == sorted(set(keys)), "in order, none twice"
    assert all(a.taken < b.taken for a, b in itertools.pairwise(samples))
    assert all(s.payload[1] == s.sequence for s in samples)

    # Which samples the gaps stand for: a gap of unknown length covers the rest of the boot
    # before it; any other gap covers samples of the boot that comes after it.
    covered: dict[tuple[int, int], int] = {k: 1 for k in keys}
    for i, item in enumerate(out):
        if not isinstance(item, Lost):
            continue
        before_it = [s for s in out[:i] if isinstance(s, Sampled)]
        after_it = [s for s in out[i + 1 :] if isinstance(s, Sampled)]
        assert after_it, "a gap comes before the sample that ends it"
        assert item.end == after_it[0].taken
        assert item.start <= item.end
        if before_it:
            assert item.start == before_it[-1].taken
        if item.last is None:
            assert item.reason == REBOOT
            boot = before_it[-1].payload[0] if before_it else 0  # else: the boot it resumed in
            gone = [(b, s) for b, s in node.taken if b == boot and s >= item.first]
        else:
            boot = after_it[0].payload[0]
            gone = [(boot, s) for s in range(item.first, item.last + 1)]
            assert all(g in node.taken for g in gone), "a gap of samples the node took"
        for g in gone:
            covered[g] = covered.get(g, 0) + 1
    start = (0, resumed + 1) if resumed is not None else keys[0]
    due = [k for k in node.taken if k >= start and k[0] in visible]
    assert {k: covered.get(k, 0) for k in due} == dict.fromkeys(due, 1)
    assert set(covered) <= set(due)


# -- decoding history records, against the firmware itself ----------------------------------------


class Counting:
    """A firmware sensor whose measurements count up with the sample (value = sample number + channel)."""

    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.n = 0

    def read(self, bank: object, now_ms: int) -> int:
        self.n += 1
        for i, row in enumerate(regmap.MEASUREMENTS[self.kind]):
            bank.set_input(row[0], (self.n + i) / 10 if row[3] >= 10 else self.n + i)  # type: ignore[attr-defined]
        return int(regmap.STATUS_OK)


def ask(node: Node, request: rtu.Request, now_ms: int) -> rtu.Reply:
    n = node.handle(request.frame, len(request.frame), now_ms)
    return rtu.parse_reply(request, bytes(node.slave.tx[:n]))


@given(st.sampled_from(sorted(KIND_BY_NAME)), st.integers(1, 40), st.integers(1, 30), st.integers(0, 14))
def test_history_records_decode_to_the_samples_the_node_took(
    kind: str, capacity: int, taken: int, offset: int
) -> None:
    code = KIND_BY_NAME[kind]
    node = Node(code, Counting(code), 0, unit_id=3, history_capacity=capacity)
    for k in range(taken):
        node.sample(250 * k)
    size = regmap.history_record_words(code)
    per_window = regmap.history_records(code)
    offset = min(offset, per_window - 1)
    first = max(1, taken - per_window + 1)
    history_seq = regmap.find(regmap.COMMON_HOLDING, "history_seq")[1]
    assert ask(node, rtu.write_registers(3, history_seq, [first >> 16, first & 0xFFFF]), 250 * taken) == (
        rtu.WriteAck(history_seq, 2)
    )
    count = per_window - offset
    reply = ask(
        node,
        rtu.read_registers(3, rtu.READ_INPUT_REGISTERS, regmap.HISTORY_BASE + offset * size, count * size),
        250 * taken + 40,
    )
    assert isinstance(reply, rtu.Registers)
    records = decode_history(kind, reply.values)
    assert len(records) == count
    oldest = max(1, taken - capacity + 1)
    for r, record in enumerate(records):
        seq = first + offset + r
        if not oldest <= seq <= taken:
            assert record is None, seq
            continue
        assert record is not None and record.sequence == seq
        assert record.age_ms == 250 * taken + 40 - 250 * (seq - 1)  # sample seq was taken at 250 (seq - 1)
        assert record.sample.status == regmap.STATUS_OK
        for i, row in enumerate(regmap.MEASUREMENTS[code]):
            expected = (seq + i) / 10 if row[3] >= 10 else seq + i
            assert abs(record.sample.values[row[0]] - expected) <= 0.5 / row[3] + 1e-9, (row[0], record)


def test_a_history_read_that_is_not_whole_records_is_a_decode_error() -> None:
    size = regmap.history_record_words(regmap.KIND_WIND)
    try:
        decode_history("wind", [0] * (size + 1))
    except DecodeError:
        return
    raise AssertionError("a partial record was decoded")
