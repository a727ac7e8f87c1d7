"""Watching the running gateway: systemd readiness, watchdog and status, node transitions, the heartbeat.

Every ``tick`` (at most 5 s, and at least twice per WatchdogSec) the supervisor:

* notes each node going online or offline (one log line per transition, not per poll);
* reads the progress of every loop (gateway/ops/progress.py): the bus owners'
  polls and history reads, the sinks' deliveries, the queue's answers. WATCHDOG=1
  is sent only when none is stuck; a stuck loop is logged once (an error naming
  it), and systemd restarts the gateway after WatchdogSec;
* sends STATUS=, e.g. "8/8 nodes online, backlog 0";
* every ``service.heartbeat_s``, logs one heartbeat line.

The backlog is what the slowest sink has yet to deliver (plus records held in
memory while the disk refuses writes), read from the queue under its lock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from gateway.acquire.health import OFFLINE_AFTER
from gateway.ops.progress import ProgressWatch
from gateway.ops.sdnotify import Notifier
from gateway.pause import pause

log = logging.getLogger(__name__)

MAX_TICK_S = 5.0
QUEUE_ANSWER_S = 5.0
T = TypeVar("T")  # a backlog query waits this long for the queue's lock, then tries at the next tick


class Supervisor:
    def __init__(
        self,
        gateway: Any,  # gateway.ops.service.Gateway
        notifier: Notifier,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gateway = gateway
        self.notifier = notifier
        self.monotonic = monotonic
        self.progress = ProgressWatch()
        self.online: dict[str, bool] = {}
        self.backlog: int | None = None
        self.stuck: dict[str, float] = {}
        self.watchdog_sent = 0
        self._queue_answers = 0
        self._pending: dict[str, int] = {}
        self._next_heartbeat: float | None = None
        self._last_counts: dict[str, int] = {}

    @property
    def tick_s(self) -> float:
        watchdog = self.notifier.watchdog_s
        return min(MAX_TICK_S, watchdog) if watchdog else MAX_TICK_S

    # -- nodes ---------------------------------------------------------------------------
    def node_transitions(self) -> None:
        for poller in self.gateway.pollers:
            for name, health in poller.health.items():
                if health.online:
                    state: bool | None = True
                elif health.consecutive_failures >= OFFLINE_AFTER:
                    state = False
                else:
                    state = self.online.get(name)  # not decided yet (first polls, or one failure)
                if state is None or state == self.online.get(name):
                    continue
                if state:
                    log.info("node %s (bus %s) online", name, poller.bus.name)
                else:
                    log.warning("node %s (bus %s) offline after %d failed polls: %s", name, poller.bus.name,
                                health.consecutive_failures, health.last_error or "no reply")
                self.online[name] = state

    def nodes_online(self) -> tuple[int, int]:
        total = sum(len(p.health) for p in self.gateway.pollers)
        online = sum(1 for p in self.gateway.pollers for h in p.health.values() if h.online)
        return online, total

    # -- progress ------------------------------------------------------------------------
    async def read_queue(self) -> None:
        """The backlog of every sink, under the queue's lock (bounded: a stuck writer must not stall this)."""
        gateway = self.gateway
        names = [d.name for d in gateway.deliveries]
        # Under the queue's lock, in a worker thread (Gateway.with_queue). A count over the cursor's range is quick.
        pending = await gateway.with_queue(lambda queue: {name: queue.pending(name) for name in names},
                                           QUEUE_ANSWER_S)
        if pending is None:
            return  # the queue is busy (or stuck: see observe_progress) or closed; try again at the next tick
        self._pending = pending
        self._queue_answers += 1
        self.backlog = max(self._pending.values(), default=0) + gateway.queue.backlog

    def observe_progress(self, now: float) -> dict[str, float]:
        config = self.gateway.config
        grace = config.service.stall_grace_s
        for poller in self.gateway.pollers:
            counter = sum(h.polls for h in poller.health.values())
            counter += sum(s.requests for s in poller.backfill.values())
            bus = poller.bus
            longest = max([*_intervals(poller, config), bus.max_backoff])
            # A failing node waits up to its backoff, and as a suspect up to max_backoff more for a gap.
            self.progress.observe(f"bus {bus.name}", counter, now, 2 * longest + 2 * bus.timeout + grace)
        q = config.queue
        for delivery in self.gateway.deliveries:
            counter = delivery.stats.batches + delivery.stats.failures
            busy = self._pending.get(delivery.name, 0) > 0
            self.progress.observe(f"sink {delivery.name}", counter, now,
                                  q.max_backoff_s + q.deliver_interval_s + grace, busy)
        self.progress.observe("queue", self._queue_answers, now, QUEUE_ANSWER_S + grace)
        return self.progress.stuck(now)

    # -- status --------------------------------------------------------------------------
    def status_line(self) -> str:
        online, total = self.nodes_online()
        text = f"{online}/{total} nodes online, backlog {'?' if self.backlog is None else self.backlog}"
        alarms = self.gateway.pipeline.alarms
        active = len(alarms.active()) if alarms is not None else 0
        if active:
            text += f", {active} alarm{'s' if active > 1 else ''} active"
        held = sum(p.stamper.held_count for p in self.gateway.pollers)
        if held:  # nodes answer, the backlog is empty, and yet nothing is stored: say why
            text += f", clock not synchronised: {held} readings held"
        down = [d.name for d in self.gateway.deliveries if d.stats.down_since is not None]
        if down:
            text += f", sink down: {', '.join(down)}"
        if self.stuck:
            text += f"; STUCK: {', '.join(sorted(self.stuck))}"
        return text

    def heartbeat(self) -> None:
        counts = dict(self.gateway.counts)
        readings = counts.get("Reading", 0)
        added = readings - self._last_counts.get("Reading", 0)
        self._last_counts = counts
        log.info("heartbeat: %s, %d readings (+%d), %d aggregates, %d alarm events, stage errors %d",
                 self.status_line(), readings, added, counts.get("Aggregate", 0), counts.get("AlarmEvent", 0),
                 self.gateway.stage_errors)

    async def check(self) -> bool:
        """One round; True when the watchdog was fed."""
        self.node_transitions()
        await self.read_queue()
        now = self.monotonic()
        stuck = self.observe_progress(now)
        for name in sorted(set(stuck) - set(self.stuck)):
            log.error("%s has made no progress for %.0f s: the watchdog is no longer fed (systemd restarts the "
                      "gateway after WatchdogSec)", name, stuck[name])
        for name in sorted(set(self.stuck) - set(stuck)):
            log.warning("%s is making progress again", name)
        self.stuck = stuck
        self.notifier.status(self.status_line())
        fed = False
        if not stuck:
            fed = self.notifier.watchdog()
            self.watchdog_sent += fed
        heartbeat_s = self.gateway.config.service.heartbeat_s
        if heartbeat_s > 0:
            if self._next_heartbeat is None:
                self._next_heartbeat = now + heartbeat_s
            elif now >= self._next_heartbeat:
                self._next_heartbeat = now + heartbeat_s
                self.heartbeat()
        log.debug("status: %s", self.status_line())
        return fed

    async def starting(self, work: Awaitable[T], what: str) -> T:
        """Await start-up work that runs in a worker thread (the window rebuild: minutes on a big site)
        while telling systemd the start goes on: the start timeout is extended and the watchdog fed
        (the event loop is free; the work itself shows its progress in the log when done)."""
        task = asyncio.ensure_future(work)
        began = self.monotonic()
        while True:
            seconds = int(self.monotonic() - began)
            self.notifier.notify(STATUS=f"starting: {what} ({seconds} s)", EXTEND_TIMEOUT_USEC=int(3e6 * self.tick_s))
            self.notifier.watchdog()
            done, _ = await asyncio.wait([task], timeout=self.tick_s)
            if done:
                return task.result()

    async def run(self, stop: asyncio.Event) -> None:
        self.notifier.ready(status="starting: polling the buses")
        log.info("ready (%s)", "systemd notified" if self.notifier.enabled else "not under systemd")
        while not stop.is_set():
            await self.check()
            await pause(stop, self.tick_s)  # a timer: wait_for made a task every tick (3.11)
        self.notifier.stopping()
        self.notifier.status("stopping: flushing the queue to the sinks")


def _intervals(poller: Any, config: Any) -> list[float]:
    """The poll intervals in force: a downlink command (BusPoller.set_interval) may have changed them since the
    configuration was read. Read from the poller's node list when it has one, else from the configuration."""
    nodes = getattr(poller, "_nodes", None)
    if nodes:
        return [float(n.config.interval) for n in nodes]
    return [node.interval for b in config.buses if b.name == poller.bus.name for node in b.nodes]
