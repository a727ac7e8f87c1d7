"""dust_episode.toml through the real gateway: the dust alarm, and the spray switched through the bus.

One run of the scenario at 500x from 00:58 (07:58 local, work starts at 08:00) until the gateway
switches the spray off again, the gateway polling the downwind dust monitor (boundary bus, unit 1,
9600 baud) back to back. Nothing in the scenario turns the spray on: the gateway's linkage must
write the node's spray_relay coil, the simulated site then gets wetter and PM10 falls (closed loop).

Numbers changed for speed, and why:

* the dust node samples once a minute (sample_interval = 60000 ms; limits.sampling.interval_s =
  60): a 9600-baud line carries about 13 polls a second, and an hour of scenario must pass in
  about seven real seconds;
* the dust alarm reads the PM10 15-min mean instead of the 1-h mean (one [[processing.alarm]]
  of type "dust" with channels = ["pm10_15min_mean"]): the spray, switched on by the first
  15-min mean above 150 ug/m3, holds the hour's mean down, so an hourly alarm would need hours
  of scenario. Its limit (150 ug/m3) and margin are the defaults;
* the spray's minimum on-time is 40 min instead of 30 (limits.spray.min_on_s = 2400): the first
  quarter hour wholly under the spray ends 30 min after it went on, so with the default the
  clean mean and the end of the minimum on-time come together, and nothing would show the
  linkage holding the spray on while PM10 is already low. The rest of the rule (on when the
  15-min mean exceeds 150 ug/m3, off below 150 - 20) is the default;
* the spike filter's floor for PM10 is 200 ug/m3 instead of 30 (limits.quality.hampel_floor): its
  window counts samples (7), tuned for 1-s samples, where a real step such as the spray's is
  accepted after 4 s. At one sample a minute the step takes 4 minutes, and a quarter hour with 4
  of its 15 samples flagged holds fewer than 75 % valid ones: its mean is invalid, and with no
  valid mean for 30 minutes the linkage stops the spray for want of data rather than because
  the air is clean.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from gateway.deliver.records import Actuation
from gateway.model import Reading
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent
from gateway.process.spray import SprayMode
from simulator.site import Site
from tests.integration.support import Polled, Run, events_of, hysteresis_events, run_scenario, usable

NODE = "dust-downwind"
LIMIT, MARGIN = 150.0, 10.0  # dust setting and its hysteresis (docs/configuration.md, [limits.dust])
MIN_ON_S, OFF_BELOW = 2400.0, 130.0  # spray: 40 min at least (see above), off below the setting minus 20
SPEED = 500.0
EXTRA = """
[limits.spray]
min_on_s = 2400.0
[limits.quality]
hampel_floor = { pm10 = 200.0 }
[[processing.alarm]]
type = "dust"
channels = ["pm10_15min_mean"]
"""


def coil(site: Site) -> int:
    return int(site.node("boundary", 1).node.bank.coils[0])


def spray_went_off(run: Run) -> bool:
    return any(not a.on for a in run.of(Actuation))


@pytest.fixture(scope="module")
def episode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield asyncio.run(
        run_scenario(
            tmp_path_factory.mktemp("dust"), "dust_episode", skip=58 * 60, until=2.5 * 3600, speed=SPEED,
            polled=[Polled("boundary", 1, 60.0)], extra=EXTRA, stop_when=spray_went_off, watch=coil,
        )
    )


def commands(run: Run) -> list[list[Actuation]]:
    """The spray commands the gateway decided, each as the records of its writes in queue order.

    A decision is written once, then rewritten every spray.refresh_s (renewing the relay's lease) and
    retried after a failed write: on a starved host a rewrite can get no reply in time, which is queued
    and retried as the same command (tests/ops/test_spray_coil.py). Those are not new decisions.
    """
    by_decision: dict[tuple[float, bool], list[Actuation]] = {}
    for a in run.actuations(NODE):
        by_decision.setdefault((a.time, a.on), []).append(a)
    return list(by_decision.values())


def one_command(writes: list[Actuation]) -> Actuation:
    """The decision behind a command's writes; checks they are one decision's, ending with the coil as wanted."""
    first = writes[0]
    assert all((w.mode, w.reason, w.value, w.level) == (first.mode, first.reason, first.value, first.level)
               for w in writes), writes
    assert first.attempt == 1 and [w.attempt for w in writes] == sorted(w.attempt for w in writes), writes
    assert writes[-1].result == "ok", writes
    return first


def quarter_means(run: Run) -> list[Aggregate]:
    return run.aggregates(NODE, "pm10_15min_mean")


def spray_means(run: Run) -> list[Aggregate]:
    return run.aggregates(NODE, "pm10_15min_mean")  # what the spray follows (the default)


def test_dust_alarm_is_raised_from_the_pm10_mean(episode: Run) -> None:
    means = quarter_means(episode)
    expected = hysteresis_events(
        ((m.start, usable(m.to_reading())) for m in means), LIMIT, MARGIN, 0.0, inclusive=False
    )
    events = episode.alarms("dust", NODE)
    assert events_of(events) == expected
    assert all(e.limit == LIMIT for e in events)
    raised = [e for e in events if e.state.value == "raised"]
    assert raised and raised[0].value > LIMIT and raised[0].channel == "pm10_15min_mean"
    # The mean that raised it is the mean of the gateway's own PM10 readings in that quarter hour.
    window = next(m for m in means if m.start == raised[0].time)
    inside = [r for r in episode.readings(NODE, "pm10") if window.start <= r.timestamp < window.end]
    pm10 = [v for v in map(usable, inside) if v is not None]  # a value the spike filter flagged D stays out
    assert window.valid and window.count == len(pm10) >= 12
    assert window.value == pytest.approx(sum(pm10) / len(pm10))


def test_the_spray_goes_on_through_the_bus_and_pm10_falls(episode: Run) -> None:
    on = [writes for writes in commands(episode) if writes[0].on]
    assert len(on) == 1
    command = one_command(on[0])
    assert (command.coil, command.mode) == ("spray_relay", SprayMode.AUTO)
    assert command.value is not None and command.value > LIMIT
    assert command.reason == f"PM10 15-min mean {command.value:g} ug/m3 > {LIMIT:g} ug/m3"
    # ... decided on a valid mean the gateway queued, the first one above the setting.
    above = [m for m in spray_means(episode) if m.valid and m.value is not None and m.value > LIMIT]
    assert above[0].value == command.value and above[0].end <= command.time
    # The node's coil really went on (the gateway wrote it over the bus), after the decision.
    switched_on = next(t for t, state in episode.watched if state == 1)
    assert episode.scenario_seconds(command.time) <= switched_on
    assert all(state == 0 for t, state in episode.watched if t < episode.scenario_seconds(command.time))
    # Closed loop: PM10 at the node falls once the site is wet (in this dry wind it would go on
    # rising all morning without the spray), below the level that lets the spray go off.
    after = [m for m in spray_means(episode) if command.time <= m.start < command.time + MIN_ON_S and m.valid]
    assert after
    assert min(m.value for m in after if m.value is not None) < OFF_BELOW
    pm10 = [v for r in episode.readings(NODE, "pm10") if command.time + 600 <= r.timestamp < command.time + MIN_ON_S
            if (v := usable(r)) is not None]
    assert len(pm10) >= 15 and sum(pm10) / len(pm10) < command.value - 20.0


def test_the_spray_goes_off_after_the_minimum_on_time_once_pm10_is_low(episode: Run) -> None:
    decided = commands(episode)
    assert [writes[0].on for writes in decided] == [True, False]
    on, off = map(one_command, decided)
    assert off.mode is SprayMode.AUTO
    ran = off.time - on.time
    assert off.value is not None and off.value < OFF_BELOW
    assert off.reason == f"PM10 15-min mean {off.value:g} ug/m3 < {OFF_BELOW:g} ug/m3; ran {ran:g} s"
    # PM10 was low again well before the minimum on-time was over: the spray stayed on until it was,
    # and went off then (the gateway's tick is 0.05 real seconds, 25 simulated ones; a busy host adds
    # some).
    low = [m for m in spray_means(episode) if m.start >= on.time and m.valid and m.value is not None
           and m.value < OFF_BELOW]
    assert low and low[0].end + 120.0 < on.time + MIN_ON_S
    assert MIN_ON_S <= ran <= MIN_ON_S + 300.0
    # The node's coil was on from the write until the gateway decided to switch it off, and went off.
    # (Through every rewrite of the "on": a rewrite that failed on a busy host left the coil as it was.)
    switched_on = next(w.written for w in decided[0] if w.ok)
    states = [(t, s) for t, s in episode.watched if t >= episode.scenario_seconds(switched_on)]
    on_until = next(t for t, s in states if s == 0)
    assert on_until >= episode.scenario_seconds(off.time)
    assert episode.watched[-1][1] == 0


def test_nothing_is_lost_on_the_way(episode: Run) -> None:
    # Every record the pipeline counted reached the queue (spray commands are queued as actuations).
    counts = episode.gateway.counts
    queued = {cls.__name__: len(episode.of(cls)) for cls in (Reading, Aggregate, AlarmEvent, Actuation)}
    assert queued == {name: counts.get(name, 0) for name in queued}
    # Every sample once, in order (a poll that failed on a busy host has no value and no sequence:
    # the sample it missed is fetched from the node's history).
    sequences = [r.sequence for r in episode.readings(NODE, "pm10") if r.value is not None]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
