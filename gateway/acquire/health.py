"""Node health, adaptive reply timeouts, backoff and the bus scheduling decision. Pure: no I/O, no clock.

Everything here takes the time as an argument, so the scheduler's rules are
tested with made-up instants and the poll loop (poller.py) stays a thin
shell around them.

Scheduling rules (``choose``):

* A bus carries one transaction at a time. Among the nodes that are due, a
  *reliable* node goes first, earliest due time first. Every node starts
  reliable (its first try is a fair one, with the full timeout).
* A *suspect* node (two failures in a row, or one before it ever answered)
  is only polled in a gap: when its whole transaction (request, reply
  timeout, t3.5) ends before the next reliable node is due. If the gap is
  shorter than its timeout but still long enough for a normal reply, it is
  probed with the gap as its timeout. So a dead node costs the others
  nothing; its probes use bus time nobody else wanted.
* A suspect node that found no gap for ``starve_after`` seconds (a bus
  loaded to the brim) is polled anyway with its full timeout.
* Between its polls, a suspect node is *probed* every PROBE_INTERVAL: a
  read of two registers with a short timeout, only in a gap its whole
  transaction fits in, before the next poll of any node (a suspect node's
  backed-off try included). One that answers is polled at once, so a node that
  comes back is live within about a second, not at the end of a backoff of
  up to ``max_backoff``; the live nodes lose no time to it.
* A failing node backs off exponentially: after k >= 2 failures in a row
  its next try is min(interval * 2^(k-1), max_backoff) later.
* Schedules advance from the due time, not from the poll time (due +=
  interval), so intervals do not drift; a poll that came late does not
  cause a burst of catch-up polls (due never falls behind now).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

# Smallest extra time, beyond the reply's own wire time, a node is given to answer.
MIN_SLACK = 0.010
# Smallest margin above the smoothed response time.
MIN_MARGIN = 0.010
OFFLINE_AFTER = 3  # consecutive failures
SUSPECT_AFTER = 2  # consecutive failures
# A suspect node is probed (a cheap read, short timeout, in bus time nobody wants) this often, so
# that one that answers again is polled at once, not at the end of its backoff.
PROBE_INTERVAL = 1.0  # seconds
PROBE_SLACK = 0.050  # s beyond the probe reply's wire time it may take to answer
# Upper bounds of the reply latency buckets (s): a 9600-baud reply takes ~25 ms on the wire, timeouts ~1 s.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


@dataclass
class AdaptiveTimeout:
    """Reply timeout from observed response times (RFC 6298 style), bounded.

    A response time runs from the end of the request on the wire to the last
    byte of the reply, so it includes the reply's wire time; ``floor`` is that
    wire time plus MIN_SLACK, ``ceiling`` the configured timeout. Until a node
    has answered, and after each timeout (doubling), it is the ceiling side.
    """

    floor: float
    ceiling: float
    srtt: float | None = None
    rttvar: float = 0.0
    current: float = 0.0

    def __post_init__(self) -> None:
        self.floor = min(self.floor, self.ceiling)
        if not self.current:
            self.current = self.ceiling

    def observe(self, response_time: float) -> None:
        if self.srtt is None:
            self.srtt = response_time
            self.rttvar = response_time / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - response_time)
            self.srtt = 0.875 * self.srtt + 0.125 * response_time
        self.current = min(max(self.srtt + max(4 * self.rttvar, MIN_MARGIN), self.floor), self.ceiling)

    def expired(self) -> None:
        self.current = min(max(2 * self.current, self.floor), self.ceiling)


def backoff_delay(interval: float, consecutive_failures: int, max_backoff: float) -> float:
    """Delay before the next try of a node that failed consecutive_failures times in a row."""
    if consecutive_failures <= 1:
        return interval
    return min(interval * 2.0 ** (consecutive_failures - 1), max(max_backoff, interval))


@dataclass
class NodeHealth:
    """What the gateway knows about one node's link and life (shown on the status page)."""

    polls: int = 0
    answered: int = 0  # replies with a valid frame (including exception replies)
    failures: int = 0  # polls that gave no usable sample: no reply, bad frame, exception, decode error
    consecutive_failures: int = 0  # polls in a row without a valid reply (an exception reply is one)
    timeouts: int = 0
    crc_errors: int = 0  # replies that failed their CRC
    framing_errors: int = 0  # replies of the wrong length, unit or function
    exceptions: int = 0  # Modbus exception replies
    decode_errors: int = 0  # valid frames whose content does not fit the register map
    io_errors: int = 0  # the port or connection itself failed
    new_samples: int = 0
    stale_polls: int = 0  # answered, but no sample newer than the last one
    reboots: int = 0
    last_sequence: int = -1
    last_uptime: int = -1
    last_boot_count: int = -1
    last_latency: float = 0.0  # seconds from the end of the request to the end of the reply
    mean_latency: float = 0.0  # exponentially weighted (1/8)
    max_latency: float = 0.0
    # Answered polls by latency: latency_counts[i] counts latencies <= LATENCY_BUCKETS_S[i] (the last: the rest);
    # with latency_sum, a Prometheus histogram (gateway/ops/metrics.py).
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    latency_sum: float = 0.0
    timeout: float = 0.0  # the reply timeout in force
    node_crc_errors: int = 0  # requests the node dropped for a bad CRC (its own counter)
    node_sensor_errors: int = 0
    last_error: str = ""
    last_ok: float = -math.inf  # monotonic time of the last answered poll
    probes: int = 0  # cheap reads of a suspect node, to see whether it answers again
    probes_answered: int = 0
    stale: bool = False  # answers, but its sample sequence stopped advancing (see outages.py)
    outage: str = ""  # the reason of the node's open outage ("" when none is open)
    kind_mismatch: str = ""  # the kind the node's node_kind register says, when not the configured one

    @property
    def online(self) -> bool:
        return self.answered > 0 and self.consecutive_failures < OFFLINE_AFTER

    @property
    def healthy(self) -> bool:
        """Online and delivering new samples (a node that answers with a frozen sequence is not)."""
        return self.online and not self.stale

    @property
    def reliable(self) -> bool:
        """Polled whenever due; otherwise only in gaps (see choose)."""
        if self.answered == 0:
            return self.consecutive_failures == 0  # its first try is a fair one
        return self.consecutive_failures < SUSPECT_AFTER

    @property
    def success_rate(self) -> float:
        """Share of polls that got a valid reply (1.0 before the first poll)."""
        return self.answered / self.polls if self.polls else 1.0

    def answered_at(self, now: float, latency: float) -> None:
        self.answered += 1
        self.last_ok = now
        self.last_latency = latency
        self.mean_latency = latency if self.answered == 1 else self.mean_latency + (latency - self.mean_latency) / 8
        self.max_latency = max(self.max_latency, latency)
        self.latency_sum += latency
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS_S, latency)] += 1

    def failed(self, error: str, answered: bool = False) -> None:
        """A poll without a usable sample; answered: the node did reply (exception, bad content)."""
        self.failures += 1
        self.consecutive_failures = 0 if answered else self.consecutive_failures + 1
        self.last_error = error

    def succeeded(self) -> None:
        self.consecutive_failures = 0

    def observe_diagnostics(self, sequence: int, uptime: int, boot_count: int) -> bool:
        """Record a node's counters; True when they show the node restarted since the last reply.

        A restart shows as the sample sequence going back (it restarts at 1, or
        reads 0 before the first sample), the uptime going back, or the
        persisted boot counter changing. One restart counts once.
        """
        rebooted = (
            (self.last_sequence >= 0 and sequence < self.last_sequence)
            or (self.last_uptime >= 0 and uptime < self.last_uptime)
            or (self.last_boot_count >= 0 and boot_count != self.last_boot_count)
        )
        if rebooted:
            self.reboots += 1
        self.last_uptime = uptime
        self.last_boot_count = boot_count
        return rebooted


# -- the scheduling decision ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    """One node as the scheduler sees it."""

    name: str
    due: float
    reliable: bool
    timeout: float  # its reply timeout in force
    floor: float  # the shortest timeout a normal reply fits in
    overhead: float  # the rest of its transaction: request wire time + t3.5
    probe_due: float = math.inf  # a suspect node's next probe (see Probe)
    probe_timeout: float = 0.0
    probe_overhead: float = 0.0  # the probe's request wire time + t3.5


@dataclass(frozen=True, slots=True)
class Poll:
    name: str
    timeout: float


@dataclass(frozen=True, slots=True)
class Probe:
    """A cheap read of a suspect node with a short timeout: does it answer again?"""

    name: str
    timeout: float


@dataclass(frozen=True, slots=True)
class Wait:
    until: float


def choose(slots: list[Slot], now: float, starve_after: float) -> Poll | Probe | Wait:
    """What the bus does next (see the module docstring)."""
    best: Slot | None = None
    starved: Slot | None = None
    next_reliable = math.inf
    for s in slots:
        if s.reliable:
            if s.due <= now and (best is None or s.due < best.due):
                best = s
            next_reliable = min(next_reliable, s.due)
        elif now - s.due >= starve_after and (starved is None or s.due < starved.due):
            starved = s
    # Checked before the live nodes: on a bus where some live node is always due (polled back to back),
    # a suspect node would otherwise never be tried again, and never be found offline.
    if starved is not None:
        return Poll(starved.name, starved.timeout)
    if best is not None:
        return Poll(best.name, best.timeout)
    wake = next_reliable
    # A probe also ends before a suspect node's next try (a live node that missed two replies on a busy
    # host, a dead node's backed-off poll): those polls go before probes, and a probe must not delay them.
    next_poll = next_reliable
    for s in sorted((s for s in slots if not s.reliable), key=lambda s: s.due):
        if s.due > now:
            wake = min(wake, s.due)
            next_poll = min(next_poll, s.due)
            continue
        budget = next_reliable - now - s.overhead
        if budget >= s.timeout:
            return Poll(s.name, s.timeout)
        if budget >= s.floor:
            return Poll(s.name, budget)
        if now - s.due >= starve_after:
            return Poll(s.name, s.timeout)
        wake = min(wake, s.due + starve_after)
    for s in sorted((s for s in slots if not s.reliable), key=lambda s: s.probe_due):
        if s.probe_due > now:
            wake = min(wake, s.probe_due)
            continue
        # Only when the whole probe ends before the next node's poll is due: it costs them nothing.
        if next_poll - now - s.probe_overhead >= s.probe_timeout:
            return Probe(s.name, s.probe_timeout)
    return Wait(wake)
