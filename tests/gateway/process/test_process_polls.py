"""Processors on whole polls (issue 13, third pass) judge every reading as they do one at a time.

The processing stage hands each processor a whole run of readings, and each processor looks a node's
limits up once per run (a per-node plan). These tests run random streams (several nodes with their
own limits in one run, spikes, stuck values, over-range values, NaN, failed reads, humid air, late
samples) through the stage in random runs, and through fresh processors one reading at a time.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import Quality, Reading
from gateway.pipeline import DEFAULT_PROCESSORS, ProcessStage
from gateway.process import create_processor
from gateway.process.limits import LimitsResolver, NodePlans
from gateway.process.processors import RangeCheck, chain, median
from gateway.process.registry import Processor
from tests.gateway.process.support import local

NODE_LIMITS = {
    "n2": {"quality": {"ranges": {"pm10": [0.0, 80.0]}, "stuck_s": {"pm1": 3.0}, "hampel_window": 3},
           "humidity": {"correction": True, "rh_flag_threshold": 60.0}},
}
CHANNELS = ("pm10", "pm1", "humidity", "temperature", "wind_speed")
values = st.one_of(st.sampled_from([50.0, 50.0, 50.0, 51.0, 400.0, 90.0, 2000.0, math.nan, math.inf, None]),
                   # Register resolution (0.1). A subnormal humidity (5e-324) divides by zero in
                   # firmware/humidity.py growth_factor (aw underflows to 0): not a value a sensor sends.
                   st.floats(0.0, 100.0, allow_nan=False).map(lambda v: round(v, 1)))
samples = st.lists(
    st.tuples(st.sampled_from(["n1", "n2"]), st.sampled_from([1.0, 1.0, 1.0, 0.0, -30.0]),
              st.lists(st.tuples(st.sampled_from(CHANNELS), values,
                                 st.sampled_from([Quality.NORMAL] * 4 + [Quality.COMMUNICATION_FAILURE])),
                       min_size=1, max_size=5),
              st.integers(1, 3)),  # how many samples the run that starts here holds
    max_size=60,
)


def build(limits: LimitsResolver) -> list[Processor]:
    return [create_processor(spec.type, limits, dict(spec.params)) for spec in DEFAULT_PROCESSORS]


@settings(max_examples=150, deadline=None)
@given(samples)
def test_whole_runs_and_single_readings_come_out_the_same(stream: list[tuple[str, float, list[tuple[str, float | None,
                                                                                              Quality]], int]]) -> None:
    limits = LimitsResolver.from_config({}, NODE_LIMITS)
    runs: list[list[Reading]] = []
    t = {"n1": local(10), "n2": local(10, 0, 0.5)}
    left = 0
    for sequence, (node, dt, channels, run_length) in enumerate(stream, start=1):
        t[node] += dt
        sample = [Reading(node, "dust", channel, value, "ug/m3", quality, t[node], sequence)
                  for channel, value, quality in channels]
        if left == 0:
            runs.append([])
            left = run_length
        runs[-1] += sample
        left -= 1
    stage = ProcessStage(build(limits))
    one_by_one = build(limits)
    whole = [out for run in runs for out in stage(list(run), 0.0)]
    single = [out for run in runs for reading in run for out in chain(one_by_one, reading)]
    assert [repr(r) for r in whole] == [repr(r) for r in single]  # repr: NaN values compare equal


def test_a_run_is_not_changed_in_place_and_unflagged_readings_stay_the_same_objects() -> None:
    check = RangeCheck(LimitsResolver())
    fine = Reading("n1", "dust", "pm10", 50.0, "ug/m3", Quality.NORMAL, 0.0, 1)
    over = Reading("n1", "dust", "pm10", 5000.0, "ug/m3", Quality.NORMAL, 0.0, 1)
    run = [fine, over]
    out = check.process_poll(run)
    assert run == [fine, over] and out[0] is fine and out[1].quality is Quality.OVER_RANGE
    assert check.process_poll([fine])[0] is fine


def test_plans_follow_a_new_resolver() -> None:
    """A plan is worked out once per node; giving the plans a new resolver (a changed limit) forgets them."""
    check = RangeCheck(LimitsResolver())
    reading = Reading("n1", "dust", "pm10", 600.0, "ug/m3", Quality.NORMAL, 0.0, 1)
    assert check.process(reading)[0].quality is Quality.NORMAL
    check.plans.limits = check.plans.limits.changed("quality.ranges", {"pm10": [0.0, 500.0]}, "n1")
    assert check.process(reading)[0].quality is Quality.OVER_RANGE


def test_node_plans_derive_once_per_node() -> None:
    derived: list[float] = []

    def derive(site: object) -> float:
        derived.append(1.0)
        return 1.0

    plans = NodePlans(LimitsResolver(), derive)  # type: ignore[arg-type]
    for node in ("a", "b", "a", "a", "b"):
        plans(node)
    assert len(derived) == 2


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=12))
def test_median_is_the_statistics_modules(window: list[float]) -> None:
    import statistics

    assert median(window) == statistics.median(window)
