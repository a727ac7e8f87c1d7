"""faults.toml through the real gateway: a silent node, a stuck sensor, spikes, a reboot.

Three runs of the scenario, each where its faults are (times are into the scenario, which starts
at 09:00 local):

* 04:30-07:45 at 30x: the noise node (boundary bus, unit 2) does not answer from 05:00 to 07:00;
  the gateway polls the three boundary nodes every 0.5 real seconds (15 simulated seconds), the
  nodes sample every 30 simulated seconds;
* 49:30-54:30 at 40x: the dust node's PM10 (boundary, unit 1) has been stuck since 40:00, and from
  50:00 the mast anemometer's speed (tower, unit 1) spikes (x5, one sample in twenty); the dust
  node samples every 10 s, the anemometer every 2 s, both polled back to back;
* 1:14:40-1:15:30 at 10x: boundary unit 3 (dust) reboots at 1:15:00 (a 2-s boot); it samples
  every 4 s and is polled every 0.2 real seconds (2 s simulated), which leaves the line free time
  to fetch from the node's history a first sample after the restart that no poll caught.

Numbers changed for speed, and why: the sample intervals above (holding register sample_interval,
and per node limits.sampling.interval_s) let a 9600- or 19200-baud line follow minutes of scenario
in seconds; the stuck check's time for PM10 is 60 s instead of 3600 (limits.quality.stuck_s; the
fault lasts 15 minutes and the run 5); wind speed gets a spike filter floor of 3 m/s
(limits.quality.hampel_floor; the default filters PM only); buses time out after 0.2 s and back
off at most 0.3 s (real seconds), so that a silent node is tried again within a few samples.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Iterator

import pytest

from gateway.model import Quality, Reading
from tests.integration.support import Polled, Run, run_scenario, usable

POLL_S = 0.5  # real seconds between polls of a node, in the silent-node run


@pytest.fixture(scope="module")
def silent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield asyncio.run(
        run_scenario(
            tmp_path_factory.mktemp("silent"), "faults", skip=4 * 60 + 30, until=7 * 60 + 45, speed=30.0,
            polled=[Polled("boundary", unit, 30.0) for unit in (1, 2, 3)], poll_interval=POLL_S,
            # On a loaded host the backlog of the silence may still be on its way at 07:45 (series s6a).
            done=lambda run: any(r.value is not None and scenario_time(run, r) >= 420.0
                                 for r in run.readings("noise-2", "laeq_1s")),
        )
    )


SENSORS_EXTRA = """
[limits.quality]
stuck_s = { pm10 = 60.0 }
hampel_floor = { wind_speed = 3.0 }
[node_limits."dust-1".sampling]
interval_s = 10.0
"""


@pytest.fixture(scope="module")
def sensors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield asyncio.run(
        run_scenario(
            tmp_path_factory.mktemp("sensors"), "faults", skip=49 * 60 + 30, until=54 * 60 + 30, speed=40.0,
            polled=[Polled("boundary", 1, 10.0), Polled("tower", 1, 2.0)], extra=SENSORS_EXTRA,
        )
    )


@pytest.fixture(scope="module")
def reboot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield asyncio.run(
        run_scenario(
            tmp_path_factory.mktemp("reboot"), "faults", skip=3600 + 14 * 60 + 40, until=3600 + 15 * 60 + 30,
            speed=10.0, polled=[Polled("boundary", 3, 4.0)], poll_interval=0.2,
        )
    )


def scenario_time(run: Run, r: Reading) -> float:
    return run.scenario_seconds(r.timestamp)


def test_a_silent_node_gets_an_outage_from_its_last_answer_to_its_first_answer_again(silent: Run) -> None:
    assert silent.started < 300.0  # the gateway was up before the node fell silent
    noise = silent.readings("noise-2", "laeq_1s")
    # No value-less rows: the samples it took while silent are fetched from its history (below), and
    # the store must not say both "no value" and the value for one sample.
    assert [r for r in noise if r.value is None] == []
    (outage,) = silent.outages("noise-2")
    assert outage.closed and outage.kind == "noise" and outage.missed >= 3
    assert outage.reason == "B: timeout"
    # Silent from 05:00 to 07:00 (scenario time; a poll every 15 s, a probe or retry at least every 9 s):
    # from its last answer before 05:00 to its first answer after 07:00, not what the retries made of it.
    # The answers are the gateway's own exchanges (its trace, in the site's time as the gateway has it): how soon
    # a busy host let the gateway try again is the schedule's business (tests/gateway/acquire/test_bus_polling.py),
    # not where the outage begins and ends.
    tries = [t for t in silent.traces["boundary"] if t.node == "noise-2"]
    answers = [t for t in tries if t.outcome in ("sample", "no new sample", "probe")]
    last = [t for t in answers if silent.scenario_seconds(t.completed) <= 300.0][-1]
    first = next(t for t in answers if silent.scenario_seconds(t.completed) >= 420.0)
    assert last.sent <= outage.start <= last.completed
    # The node answers requests it heard from 420 s on; it dates hearing from when the bus thread saw the
    # request (later than the gateway sent it on a busy host, by the measured hearing delay) in whole ms.
    assert silent.scenario_seconds(outage.end) >= 420.0 - 0.001 - silent.hearing_delay("boundary")
    assert first.sent <= outage.end <= first.completed
    # Answering again after 07:00, with values.
    assert any(r.value is not None and scenario_time(silent, r) >= 420.0 for r in noise)
    health = silent.gateway.pollers[0].health["noise-2"]
    assert health.timeouts >= 3 and health.consecutive_failures == 0 and health.healthy  # failed, then answered


def test_the_other_nodes_keep_their_poll_interval_meanwhile(silent: Run) -> None:
    # Every sample, none missing, none failed, polled at their interval throughout.
    real_seconds = (silent.ended - silent.started) / silent.site.speed
    for node in ("dust-1", "dust-3"):
        pm10 = silent.readings(node, "pm10")
        assert all(r.value is not None and r.quality is not Quality.COMMUNICATION_FAILURE for r in pm10), node
        sequences = [r.sequence for r in pm10]
        assert sequences == list(range(sequences[0], sequences[0] + len(sequences))), node
        during = [r for r in pm10 if 300.0 <= scenario_time(silent, r) < 420.0]
        assert len(during) >= 3, node
        health = silent.gateway.pollers[0].health[node]
        # None failed but for a reply a busy host held past the timeout (the simulated node's thread off the CPU):
        # a timeout, whose sample the backfill fetched (every sample is there, above); never a damaged frame.
        assert health.failures == health.timeouts and health.polls >= 0.85 * real_seconds / POLL_S, (node, health)
        # Such a timeout is honestly recorded as a short outage (values did not arrive live), closed at the next
        # answer (or, for a timeout in the run's last moments, still open when the gateway stopped: closed=False
        # at the stop); never more outages than timeouts, never one of another cause, and none at all on an idle
        # host unless a reply was held past the timeout.
        outages = silent.outages(node)
        assert len(outages) <= health.timeouts, (node, outages, health)
        assert all(o.reason == "B: timeout" for o in outages), (node, outages)
        assert all(o.closed for o in outages[:-1]), (node, outages)


def test_the_silent_nodes_samples_are_fetched_from_its_history_afterwards(silent: Run) -> None:
    # The node kept sampling while it did not answer; the gateway reads them back from its history
    # window once it answers again, each with its own time (gateway/acquire/backfill.py).
    noise = [r for r in silent.readings("noise-2", "laeq_1s") if r.value is not None]
    sequences = sorted(r.sequence for r in noise)
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
    during = [r for r in noise if 300.0 <= scenario_time(silent, r) < 420.0]
    assert len(during) >= 3 and all(r.quality is Quality.NORMAL for r in during)
    times = {r.sequence: scenario_time(silent, r) for r in noise}
    # 30 s apart, as sampled; each time may be early by as much as the node heard a request late
    # (measured: nothing on an idle host, see Run.hearing_delay).
    late = silent.hearing_delay("boundary")
    spacing = {s: round(times[s + 1] - times[s], 2) for s in sequences[:-1]}
    assert all(abs(d - 30.0) < 3.0 + late for d in spacing.values()), (late, spacing)


def test_a_stuck_sensor_is_flagged_once_it_has_held_its_value_too_long(sensors: Run) -> None:
    # (A poll that fails on a busy host gives a reading without a value, flag B: left out here.)
    pm10 = [r for r in sensors.readings("dust-1", "pm10") if r.value is not None]
    assert len(pm10) >= 20
    assert len({r.value for r in pm10}) == 1  # the sensor repeats itself
    first = pm10[0].timestamp
    early = [r for r in pm10 if r.timestamp - first < 60.0]
    late = [r for r in pm10 if r.timestamp - first >= 60.0]
    assert early and all(r.quality is Quality.NORMAL for r in early)
    assert late and all(r.quality is Quality.DEVICE_FAULT for r in late)
    # Flagged, never dropped or replaced: the value is kept for the uplink to send with its flag.
    assert all(r.value == pm10[0].value for r in late)
    # The other channels of the same node move, and are not flagged as stuck.
    pm25 = sensors.readings("dust-1", "pm25")
    assert len({r.value for r in pm25}) > 1


def test_spikes_are_flagged_by_the_spike_filter(sensors: Run) -> None:
    speeds = [r for r in sensors.readings("wind-1", "wind_speed") if r.value is not None]
    assert len(speeds) >= 100
    flagged = [i for i, r in enumerate(speeds) if r.quality is Quality.DEVICE_FAULT]
    assert len(flagged) >= 3
    assert sensors.started < 50 * 60
    assert all(scenario_time(sensors, speeds[i]) >= 50 * 60 for i in flagged)  # the spikes start at 50:00
    for i, r in enumerate(speeds):
        neighbours = [v for v in map(usable, speeds[max(0, i - 7) : i + 8]) if v is not None]
        median = statistics.median(neighbours)
        assert r.value is not None
        if i in flagged:
            assert r.value > 2.5 * median, (i, r.value, median)  # a spike, far above its neighbours
        elif i >= 7:  # (the filter needs its window full)
            assert r.value < 2.5 * median + 1.0, (i, r.value, median)  # no spike slipped through
    # The wind statistics leave the flagged samples out: no 2-min mean is pulled up by a spike.
    for mean in sensors.aggregates("wind-1", "wind_2min_speed_mean"):
        inside = [v for r in speeds if mean.start <= r.timestamp < mean.end if (v := usable(r)) is not None]
        assert mean.count == len(inside)
        if inside:
            assert mean.value == pytest.approx(sum(inside) / len(inside))


def test_a_reboot_is_seen_as_the_sequence_going_back(reboot: Run) -> None:
    assert reboot.started < 3600 + 15 * 60  # the gateway was up before the reboot
    readings = [r for r in reboot.readings("dust-3", "pm10") if r.value is not None]
    sequences = [r.sequence for r in readings]
    back = [i for i in range(1, len(sequences)) if sequences[i] < sequences[i - 1]]
    assert len(back) == 1, sequences
    restart = back[0]
    assert sequences[restart] == 1 and sequences[restart - 1] >= 4
    assert sequences[restart:] == list(range(sequences[restart], sequences[restart] + len(sequences) - restart))
    assert 15 * 60 <= reboot.scenario_seconds(readings[restart].timestamp) - 3600 <= 15 * 60 + 10
    health = reboot.gateway.pollers[0].health["dust-3"]
    assert health.reboots == 1 and health.last_boot_count == 2
    # Its values go on after the restart, in time order.
    times = [r.timestamp for r in readings if r.value is not None]
    assert times == sorted(times)
