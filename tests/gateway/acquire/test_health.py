"""Node health, adaptive timeouts, backoff and the scheduling decision, with made-up instants."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.acquire.health import (
    MIN_MARGIN,
    AdaptiveTimeout,
    NodeHealth,
    Poll,
    Probe,
    Slot,
    Wait,
    backoff_delay,
    choose,
)


def test_adaptive_timeout_starts_at_the_ceiling_and_learns_the_response_time() -> None:
    t = AdaptiveTimeout(floor=0.030, ceiling=0.5)
    assert t.current == 0.5  # nothing known yet: the configured bound
    for _ in range(40):
        t.observe(0.035)
    assert t.srtt == pytest.approx(0.035)
    assert t.current == pytest.approx(0.035 + MIN_MARGIN, abs=1e-3)


def test_adaptive_timeout_widens_for_a_jittery_node_and_doubles_on_expiry() -> None:
    steady, jittery = AdaptiveTimeout(0.03, 0.5), AdaptiveTimeout(0.03, 0.5)
    for i in range(40):
        steady.observe(0.06)
        jittery.observe(0.04 if i % 2 else 0.08)
    assert jittery.current > steady.current + 0.05
    before = steady.current
    steady.expired()
    assert steady.current == pytest.approx(2 * before)
    for _ in range(10):
        steady.expired()
    assert steady.current == 0.5


@given(st.lists(st.one_of(st.floats(0.0, 5.0), st.none()), max_size=60))
def test_adaptive_timeout_stays_within_its_bounds(events: list[float | None]) -> None:
    t = AdaptiveTimeout(floor=0.02, ceiling=0.4)
    for event in events:
        if event is None:
            t.expired()
        else:
            t.observe(event)
        assert 0.02 <= t.current <= 0.4


def test_backoff_doubles_from_the_second_failure_up_to_the_cap() -> None:
    assert backoff_delay(1.0, 0, 60) == 1.0
    assert backoff_delay(1.0, 1, 60) == 1.0  # one miss: try again at the normal time
    assert [backoff_delay(1.0, k, 60) for k in range(2, 9)] == [2, 4, 8, 16, 32, 60, 60]
    assert backoff_delay(120.0, 5, 60) == 120.0  # never more often than configured


def test_reboot_shows_as_sequence_or_uptime_going_back_or_a_new_boot_count() -> None:
    h = NodeHealth()
    assert not h.observe_diagnostics(5, 100, 1)  # first contact: nothing to compare
    h.last_sequence = 5
    assert not h.observe_diagnostics(9, 104, 1)
    h.last_sequence = 9
    assert h.observe_diagnostics(1, 105, 1)  # sequence restarted (uptime did not: a counter reset)
    h.last_sequence = 1
    assert h.observe_diagnostics(40, 2, 1)  # long gap, sequence grew past, but uptime restarted
    h.last_sequence = 40
    assert h.observe_diagnostics(41, 3, 2)  # boot counter moved
    assert not h.observe_diagnostics(41, 4, 2)
    assert h.reboots == 3


def test_online_reliable_and_success_rate() -> None:
    h = NodeHealth()
    assert not h.online and h.reliable and h.success_rate == 1.0
    h.polls = 1
    h.failed("timeout")
    assert not h.reliable  # never answered and failed once: suspect
    h.polls, h.answered, h.consecutive_failures = 4, 3, 0
    assert h.online and h.reliable and h.success_rate == 0.75
    h.failed("crc")
    assert h.reliable and h.online
    h.failed("crc")
    assert not h.reliable and h.online
    h.failed("crc")
    assert not h.online


def slot(name: str, due: float, reliable: bool = True, timeout: float = 0.3, floor: float = 0.04) -> Slot:
    return Slot(name, due, reliable, timeout, floor, overhead=0.007)


def test_due_reliable_nodes_go_first_earliest_first() -> None:
    slots = [slot("a", 1.0), slot("b", 0.5), slot("dead", 0.1, reliable=False)]
    assert choose(slots, 1.0, starve_after=60) == Poll("b", 0.3)


def test_nothing_due_waits_for_the_next_due_time() -> None:
    assert choose([slot("a", 2.0), slot("b", 1.5)], 1.0, starve_after=60) == Wait(1.5)
    assert choose([], 1.0, starve_after=60) == Wait(math.inf)


def test_a_suspect_node_gets_the_whole_timeout_only_in_a_long_enough_gap() -> None:
    dead = slot("dead", 1.0, reliable=False, timeout=0.3)
    assert choose([slot("a", 2.0), dead], 1.0, starve_after=60) == Poll("dead", 0.3)


def test_a_suspect_node_is_probed_with_the_gap_as_its_timeout() -> None:
    dead = slot("dead", 1.0, reliable=False, timeout=0.3, floor=0.04)
    decision = choose([slot("a", 1.1), dead], 1.0, starve_after=60)
    assert isinstance(decision, Poll) and decision.name == "dead"
    assert decision.timeout == pytest.approx(0.1 - 0.007)  # ends right when "a" is due


def test_a_suspect_node_waits_when_the_gap_is_too_short_for_any_reply() -> None:
    dead = slot("dead", 1.0, reliable=False, floor=0.04)
    assert choose([slot("a", 1.03), dead], 1.0, starve_after=60) == Wait(1.03)


def test_a_starving_suspect_node_is_polled_anyway() -> None:
    dead = slot("dead", 1.0, reliable=False, timeout=0.3)
    # The bus is never free for long: "a" is due again right after each poll.
    assert choose([slot("a", 60.52), dead], 60.5, starve_after=60) == Wait(60.52)
    assert choose([slot("a", 60.62), dead], 60.6, starve_after=60) == Wait(60.62)
    assert choose([slot("a", 61.01), dead], 61.0, starve_after=60) == Poll("dead", 0.3)


def test_a_starving_suspect_node_goes_before_a_live_node_that_is_always_due() -> None:
    # Polled back to back, "a" is due at every decision: the dead node still gets its try once starved.
    dead = slot("dead", 1.0, reliable=False, timeout=0.3)
    assert choose([slot("a", 60.9), dead], 60.95, starve_after=60) == Poll("a", 0.3)
    assert choose([slot("a", 60.99), dead], 61.0, starve_after=60) == Poll("dead", 0.3)


def probed(name: str, due: float, probe_due: float, probe_timeout: float = 0.06) -> Slot:
    return Slot(name, due, False, 0.3, 0.04, 0.007, probe_due, probe_timeout, 0.005)


def test_a_backed_off_node_is_probed_in_a_gap_long_enough_for_the_probe() -> None:
    # Backed off until 30.0, probe due at 1.0: probed now, with its own short timeout.
    assert choose([slot("a", 1.2), probed("dead", 30.0, 1.0)], 1.0, starve_after=60) == Probe("dead", 0.06)
    # Not yet due for a probe: wait for whichever comes first.
    assert choose([slot("a", 1.2), probed("dead", 30.0, 1.1)], 1.0, starve_after=60) == Wait(1.1)


def test_a_probe_never_runs_into_a_live_nodes_due_time() -> None:
    # 0.06 s of timeout + 0.005 s of request and silence do not fit in the 0.05 s before "a" is due.
    assert choose([slot("a", 1.05), probed("dead", 30.0, 0.5)], 1.0, starve_after=60) == Wait(1.05)
    # A due live node always goes first.
    assert choose([slot("a", 1.0), probed("dead", 30.0, 0.5)], 1.0, starve_after=60) == Poll("a", 0.3)


def test_a_probe_never_runs_into_the_retry_of_a_node_that_missed_two_replies() -> None:
    # "b" answered until a loaded host held two replies back: suspect, its retry backed off to 1.03. The
    # dead node's probe (0.005 + 0.055 s) would fit before "a" (1.2) but end 30 ms into b's retry: b's
    # poll waits for no probe of a dead node (stress run #5 of test_silence_bus.py).
    b = slot("b", 1.03, reliable=False)
    assert choose([slot("a", 1.2), b, probed("dead", 30.0, 0.5, 0.055)], 1.0, starve_after=60) == Wait(1.03)
    # Once b is polled, the probe fits in the gap after it.
    assert choose([slot("a", 1.2), slot("b", 1.23), probed("dead", 30.0, 0.5, 0.055)], 1.1,
                  starve_after=60) == Probe("dead", 0.055)


@given(
    lives=st.lists(st.floats(0.0, 5.0), min_size=1, max_size=4),
    probes=st.lists(st.floats(0.0, 5.0), min_size=1, max_size=8),
    now=st.floats(0.0, 5.0),
)
def test_a_probe_always_ends_before_the_next_live_node_is_due(
    lives: list[float], probes: list[float], now: float
) -> None:
    slots = [slot(f"live{i}", due) for i, due in enumerate(lives)]
    slots += [probed(f"dead{i}", 100.0, due) for i, due in enumerate(probes)]
    decision = choose(slots, now, starve_after=60)
    if isinstance(decision, Probe):
        assert now + 0.005 + decision.timeout <= min(lives) + 1e-9
        assert decision.timeout == 0.06


@given(
    lives=st.lists(st.floats(0.0, 0.5), min_size=1, max_size=3),  # within a probe's length of each other
    suspects=st.lists(st.floats(0.0, 0.5), min_size=1, max_size=3),
    probes=st.lists(st.floats(0.0, 0.5), min_size=1, max_size=4),
    now=st.floats(0.0, 0.5),
)
def test_a_probe_always_ends_before_any_nodes_next_poll(
    lives: list[float], suspects: list[float], probes: list[float], now: float
) -> None:
    slots = [slot(f"live{i}", due) for i, due in enumerate(lives)]
    slots += [slot(f"suspect{i}", due, reliable=False) for i, due in enumerate(suspects)]
    slots += [probed(f"dead{i}", 100.0, due) for i, due in enumerate(probes)]
    decision = choose(slots, now, starve_after=60)
    if isinstance(decision, Probe):
        pending = [due for due in lives + suspects if due > now]
        assert not pending or now + 0.005 + decision.timeout <= min(pending) + 1e-9


def test_healthy_means_online_and_delivering_new_samples() -> None:
    h = NodeHealth()
    h.answered_at(1.0, 0.02)
    assert h.online and h.healthy
    h.stale = True
    assert h.online and not h.healthy
