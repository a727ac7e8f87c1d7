"""OutageWatch with made-up instants: when a node's values stopped and started arriving live."""

from __future__ import annotations

import pytest

from gateway.acquire.outages import STALE_REASON, STALE_SAMPLES, UNKNOWN_PERIOD, NodeOutage, OutageWatch


def test_a_silent_node_is_one_outage_from_its_last_answer_to_its_first_answer_again() -> None:
    """The issue's case: silent for 32 s, polled with a backoff; the record says 32 s, not the retry schedule."""
    w = OutageWatch("dust-5", "dust", poll_interval=1.0)
    for t in range(0, 11):
        assert w.answered(float(t), 1 if t else 0) == []
    # Silent from 10.5 to 42.5: failed polls at 11, 12, 14, 18, 26 (backoff), probes in between say nothing.
    for t in (11.0, 12.0, 14.0, 18.0, 26.0):
        w.failed(t, "B: timeout")
    assert w.silent and not w.stale
    (outage,) = w.answered(42.6, 32)  # the first answer again (a probe or a poll)
    assert outage == NodeOutage("dust-5", "dust", 10.0, 42.6, "B: timeout", 5)
    assert w.open is None


def test_a_node_that_never_answered_is_out_from_its_first_try() -> None:
    w = OutageWatch("noise-2", "noise", poll_interval=1.0)
    w.failed(5.0, "B: timeout")
    w.failed(6.0, "B: crc")
    (outage,) = w.answered(9.0, 0)
    assert (outage.start, outage.end, outage.reason, outage.missed) == (5.0, 9.0, "B: timeout", 2)


def test_a_frozen_sequence_is_a_stale_outage_from_the_last_new_sample() -> None:
    w = OutageWatch("dust-1", "dust", poll_interval=0.5)
    w.answered(0.0, 0)
    for i in range(1, 21):  # a new sample every second, polled every half second
        w.answered(i * 1.0, 1)
        w.answered(i * 1.0 + 0.5, 0)
    assert w.period == pytest.approx(1.0) and w.stale_after == pytest.approx(STALE_SAMPLES * 1.0)
    t = 20.5
    while not w.stale:  # answering, no new sample
        t += 0.5
        assert w.answered(t, 0) == []
    assert t == pytest.approx(20.0 + STALE_SAMPLES)
    (outage,) = w.answered(31.0, 1)  # it samples again
    assert (outage.start, outage.end, outage.reason) == (20.0, 31.0, STALE_REASON)
    assert outage.missed == 1  # polls without a new sample once it counted as stale
    assert not w.stale and w.period == pytest.approx(1.0)  # the frozen stretch is no sample period


def test_a_damaged_reply_does_not_restart_a_frozen_nodes_count() -> None:
    w = OutageWatch("dust-1", "dust", poll_interval=0.5)
    for i in range(0, 9):  # a new sample every second: period 1 s, stale after 5 s without one
        w.answered(float(i), 1 if i else 0)
    w.answered(9.5, 0)
    w.failed(10.0, "B: crc")  # frozen since 8.0, and one reply damaged on the line
    (glitch,) = w.answered(10.5, 0)
    assert (glitch.start, glitch.end, glitch.reason) == (9.5, 10.5, "B: crc")
    for t in (11.0, 11.5, 12.0, 12.5):
        assert w.answered(t, 0) == [] and not w.stale
    w.answered(13.0, 0)
    assert w.stale and w.open is not None and w.open.start == 8.0  # on time, from its last new sample


def test_a_node_back_from_a_silence_gets_a_sample_period_before_it_counts_as_stale() -> None:
    w = OutageWatch("dust-1", "dust", poll_interval=0.5)
    for i in range(0, 9):
        w.answered(float(i), 1 if i else 0)
    w.failed(9.0, "B: timeout")
    w.failed(60.0, "B: timeout")
    (silence,) = w.answered(70.0, 0)  # restarted: no sample yet
    assert silence.end == 70.0 and not w.stale
    w.answered(70.5, 0)
    assert not w.stale
    w.answered(71.0, 0)  # a whole period without one: it is stale, since its last sample before the silence
    assert w.stale and w.open is not None and w.open.start == 8.0


def test_a_slowly_sampling_node_polled_often_is_not_stale_between_samples() -> None:
    w = OutageWatch("noise-2", "noise", poll_interval=0.5)
    t = 0.0
    for _ in range(12 * 60 * 2):  # 12 minutes: polled every 0.5 s, a sample every 30 s
        t += 0.5
        assert w.answered(t, 1 if t % 30.0 == 0 else 0) == []
        assert not w.stale, t
    assert w.period == pytest.approx(30.0)


def test_before_the_period_is_known_the_longest_sample_interval_stands_in() -> None:
    w = OutageWatch("dust-1", "dust", poll_interval=1.0)
    w.answered(0.0, 0)
    w.answered(UNKNOWN_PERIOD * STALE_SAMPLES - 1.0, 0)
    assert not w.stale
    w.answered(UNKNOWN_PERIOD * STALE_SAMPLES, 0)
    assert w.stale


def test_a_stale_node_that_falls_silent_stays_one_outage() -> None:
    w = OutageWatch("dust-1", "dust", poll_interval=1.0)
    for t in range(0, 5):
        w.answered(float(t), 1 if t else 0)
    for t in range(5, 12):
        w.answered(float(t), 0)
    assert w.stale
    w.failed(12.0, "B: crc")  # a damaged reply, or the node gone: still no new sample since 4.0
    assert w.answered(13.0, 0) == [] and w.stale
    (outage,) = w.answered(20.0, 5)
    assert (outage.start, outage.reason, outage.missed) == (4.0, STALE_REASON, 5)  # polls at 9 .. 13


def test_an_outage_open_at_shutdown_is_reported_not_closed() -> None:
    w = OutageWatch("dust-1", "dust", poll_interval=1.0)
    w.answered(1.0, 0)
    w.failed(2.0, "D: exception 4")
    (outage,) = w.close(9.0)
    assert outage == NodeOutage("dust-1", "dust", 1.0, 9.0, "D: exception 4", 1, closed=False)
    assert w.close(10.0) == []


def test_a_poll_interval_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="dust-1"):
        OutageWatch("dust-1", "dust", poll_interval=-1.0)
    assert OutageWatch("dust-1", "dust", poll_interval=0.0).stale_after == STALE_SAMPLES * UNKNOWN_PERIOD
