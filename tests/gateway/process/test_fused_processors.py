"""The default processors in one pass over a poll (issue 13): the same output and state as the four in turn.

``DefaultChecks`` runs range, hampel, stuck and humidity reading by reading instead of processor by
processor. These tests run random streams of polls (dust, noise, tilt and wind nodes with their real
channels; NaN, infinities, missing values, values out of range, frozen values, spikes, humid and dry
air, late samples, every input flag) through the four processors' ``process_poll`` one after another
and through the fused pass, each on fresh processors, and compare every output and, at the end, what
the processors remember. The processing stage must pick the fused pass for the default configuration
only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import regmap
from gateway.model import Quality, Reading
from gateway.pipeline import DEFAULT_PROCESSORS, ProcessStage, StageSpec, build_pipeline
from gateway.process import create_processor
from gateway.process.limits import LimitsResolver
from gateway.process.processors import DefaultChecks, HampelFilter, HumidityFlag, RangeCheck, StuckCheck
from gateway.process.registry import Processor
from tests.gateway.process.support import local

# node -> kind; the channels and units are the register map's.
NODES = {"d1": "dust", "d2": "dust", "n1": "noise", "t1": "tilt", "w1": "wind"}
KIND_ROWS = {regmap.KIND_NAMES[code]: [(row[0], row[4]) for row in rows] for code, rows in regmap.MEASUREMENTS.items()}
# Short stuck times and windows so that runs and spikes happen within a few samples; d2 has its own limits.
SITE_LIMITS: dict[str, object] = {
    "quality": {"stuck_s": {"pm25": 4.0, "pm10": 3.0, "temperature": 5.0, "laeq_1s": 2.0, "pitch": 3.0},
                "hampel_window": 3, "stuck_tolerance": 0.05},
    "humidity": {"rh_flag_threshold": 70.0, "max_age_s": 4.0},
}
NODE_LIMITS = {
    "d2": {"quality": {"ranges": {"pm10": [0.0, 80.0]}, "stuck_s": {"pm1": 3.0, "pm10": 0.0}, "hampel_window": 4,
                       "hampel_floor": {"pm10": 10.0, "humidity": 5.0}},
           "humidity": {"rh_flag_threshold": 60.0}},
}
# A channel's usual level; the values drawn are around it, far from it, or not numbers at all.
LEVELS = {"pm25": 35.0, "pm10": 50.0, "pm1": 20.0, "temperature": 20.0, "humidity": 65.0, "pressure": 100.0,
          "laeq_1s": 60.0, "lamax_1s": 70.0, "lamin_1s": 50.0, "pitch": 100.0, "roll": -50.0, "slope_x": 1.0,
          "slope_y": -1.0, "wind_speed": 5.0, "wind_dir": 180.0, "wind_gust_3s": 8.0}
QUALITIES = [Quality.NORMAL] * 6 + [Quality.OVER_RANGE, Quality.COMMUNICATION_FAILURE, Quality.DEVICE_FAULT]

# How a value is made from the channel's level (None: no value).
shapes = st.sampled_from(["level"] * 6 + ["near", "spike", "far", "negative", "nan", "inf", "-inf", "none"])


def value_of(shape: str, level: float, jitter: float) -> float | None:
    return {
        "level": level,  # repeated: a frozen sensor once the stuck time has passed
        "near": round(level + jitter, 1),
        "spike": level * 8 + 40.0,
        "far": 1e6,
        "negative": -level - 200.0,
        "nan": math.nan,
        "inf": math.inf,
        "-inf": -math.inf,
        "none": None,
    }[shape]


@st.composite
def polls(draw: st.DrawFn) -> tuple[str, float, list[tuple[str, str, float | None, Quality]]]:
    """(node, seconds since its last poll (late: negative), [(channel, unit, value, flag)])."""
    node = draw(st.sampled_from(sorted(NODES)))
    rows = KIND_ROWS[NODES[node]]
    if draw(st.integers(0, 4)) == 0:  # now and then a partial sample, in another order
        rows = draw(st.permutations(rows))[: draw(st.integers(1, len(rows)))]
    dt = draw(st.sampled_from([1.0, 1.0, 1.0, 1.0, 0.0, 2.5, -2.0, -30.0]))
    level_shift = draw(st.sampled_from([0.0, 0.0, 0.0, 10.0, -10.0]))  # humid and dry air, level steps
    channels = []
    for channel, unit in rows:
        shape = draw(shapes)
        jitter = draw(st.floats(-3.0, 3.0))
        quality = draw(st.sampled_from(QUALITIES))
        channels.append((channel, unit, value_of(shape, LEVELS[channel] + level_shift, jitter), quality))
    return node, dt, channels


streams = st.lists(st.tuples(polls(), st.integers(1, 3)), max_size=50)


def build(limits: LimitsResolver) -> tuple[RangeCheck, HampelFilter, StuckCheck, HumidityFlag]:
    built = [create_processor(spec.type, limits, dict(spec.params)) for spec in DEFAULT_PROCESSORS]
    assert isinstance(built[0], RangeCheck) and isinstance(built[1], HampelFilter)
    assert isinstance(built[2], StuckCheck) and isinstance(built[3], HumidityFlag)
    return built[0], built[1], built[2], built[3]


def runs_of(stream: list[tuple[tuple[str, float, list[tuple[str, str, float | None, Quality]]], int]]
            ) -> list[list[Reading]]:
    """The polls as the stage gets them: mostly one poll per run, sometimes a few polls of several nodes."""
    t = {node: local(10, 0, i * 0.1) for i, node in enumerate(sorted(NODES))}
    runs: list[list[Reading]] = []
    left = 0
    for sequence, ((node, dt, channels), run_length) in enumerate(stream, start=1):
        t[node] += dt
        sample = [Reading(node, NODES[node], channel, value, unit, quality, t[node], sequence)
                  for channel, unit, value, quality in channels]
        if left == 0:
            runs.append([])
            left = run_length
        runs[-1] += sample
        left -= 1
    return runs


def state(processors: Sequence[Processor]) -> str:
    """What the four processors remember, as text (NaN values compare equal as text)."""
    range_check, hampel, stuck, humidity = processors
    assert isinstance(range_check, RangeCheck) and isinstance(hampel, HampelFilter)
    assert isinstance(stuck, StuckCheck) and isinstance(humidity, HumidityFlag)
    plans = [sorted(p.plans._plans) for p in (range_check, hampel, stuck, humidity)]
    return repr((plans, hampel._kept, stuck._runs, humidity._humidity_at))


@settings(max_examples=300, deadline=None)
@given(streams, st.booleans())
def test_one_pass_gives_what_the_four_processors_give_in_turn(
    stream: list[tuple[tuple[str, float, list[tuple[str, str, float | None, Quality]]], int]], correction: bool
) -> None:
    limits = LimitsResolver.from_config({**SITE_LIMITS, "humidity": {**SITE_LIMITS["humidity"],  # type: ignore[dict-item]
                                                                     "correction": correction}}, NODE_LIMITS)
    in_turn = build(limits)
    fused_processors = build(limits)
    fused = DefaultChecks(*fused_processors)
    for run in runs_of(stream):
        given_run = list(run)
        expected = run
        for processor in in_turn:
            expected = processor.process_poll(expected)
        got = fused.process_poll(run)
        assert run == given_run  # the poll's list is not changed in place
        assert [repr(r) for r in got] == [repr(r) for r in expected]  # repr: NaN values compare equal
    assert state(fused_processors) == state(in_turn)


def test_the_rules_the_stream_exercises() -> None:
    """A hand-made stream that meets each rule once, through both paths (the property test's sanity check)."""
    limits = LimitsResolver.from_config({**SITE_LIMITS, "humidity": {"correction": True}}, NODE_LIMITS)
    t0 = local(10)
    pm10 = [50.0, 50.0, 50.0, 50.0, 50.0, 900.0, 2000.0, math.nan, None, 50.0]
    humidity = [80.0, 80.0, 50.0, 50.0, 50.0, math.nan, 40.0, 40.0, 40.0, 40.0]
    runs = [[Reading("d1", "dust", "pm10", v, "ug/m3", Quality.NORMAL, t0 + i, i + 1),
             Reading("d1", "dust", "humidity", h, "%", Quality.NORMAL, t0 + i, i + 1)]
            for i, (v, h) in enumerate(zip(pm10, humidity, strict=True))]
    in_turn, fused_processors = build(limits), build(limits)
    fused = DefaultChecks(*fused_processors)
    flags = []
    for run in runs:
        expected = run
        for processor in in_turn:
            expected = processor.process_poll(expected)
        got = fused.process_poll(run)
        assert [repr(r) for r in got] == [repr(r) for r in expected]
        flags.append("".join(r.quality.value for r in got))
    assert state(fused_processors) == state(in_turn)
    # pm10, pm10_dry, humidity, pm_humid: frozen from the 4th sample (stuck 3 s), a spike, over range, NaN.
    assert flags[3][0] == "D" and flags[5][0] == "D" and flags[6][0] == "T" and flags[7][0] == "T"


def stage_of(specs: Sequence[StageSpec]) -> ProcessStage:
    stage = build_pipeline(LimitsResolver(), processors=specs).stages[0]
    assert isinstance(stage, ProcessStage)
    return stage


def test_the_default_configuration_takes_the_one_pass() -> None:
    stage = build_pipeline(LimitsResolver()).stages[0]
    assert isinstance(stage, ProcessStage)
    assert isinstance(stage.fused, DefaultChecks)
    assert stage.fused.processors == stage.processors  # the same objects: warm() rebuilds what it reads
    assert isinstance(stage_of(DEFAULT_PROCESSORS).fused, DefaultChecks)


@pytest.mark.parametrize("specs", [
    pytest.param((StageSpec("range", {"channels": ["pm10"]}), *DEFAULT_PROCESSORS[1:]), id="range-channels"),
    pytest.param((DEFAULT_PROCESSORS[1], DEFAULT_PROCESSORS[0], *DEFAULT_PROCESSORS[2:]), id="order"),
    pytest.param(DEFAULT_PROCESSORS[:3], id="fewer"),
    pytest.param((*DEFAULT_PROCESSORS, StageSpec("units", {"to": {"pm10": "mg/m3"}})), id="more"),
    pytest.param((*DEFAULT_PROCESSORS[:1], StageSpec("hampel", {"flag": "B"}), *DEFAULT_PROCESSORS[2:]),
                 id="hampel-flag"),
    pytest.param((*DEFAULT_PROCESSORS[:2], StageSpec("stuck", {"flag": "B"}), DEFAULT_PROCESSORS[3]), id="stuck-flag"),
    pytest.param((*DEFAULT_PROCESSORS[:3], StageSpec("humidity", {"flag_channel": "humid"})), id="humidity-flag"),
    pytest.param((*DEFAULT_PROCESSORS[:3], StageSpec("humidity", {"pm_channels": ["pm10"]})), id="humidity-pm"),
])
def test_other_configurations_keep_the_processors_in_turn(specs: Sequence[StageSpec]) -> None:
    assert stage_of(specs).fused is None


def test_the_default_options_written_out_are_the_defaults() -> None:
    specs = (StageSpec("range", {"channels": None}), StageSpec("hampel", {"flag": "D"}),
             StageSpec("stuck", {"flag": "D"}),
             StageSpec("humidity", {"pm_channels": ["pm1", "pm10", "pm25"], "flag_channel": "pm_humid"}))
    assert isinstance(stage_of(specs).fused, DefaultChecks)


def test_a_subclass_is_not_taken_for_its_base() -> None:
    class Wider(RangeCheck):
        pass

    limits = LimitsResolver()
    _, hampel, stuck, humidity = build(limits)
    assert ProcessStage([Wider(limits), hampel, stuck, humidity]).fused is None
    assert isinstance(ProcessStage([RangeCheck(limits), hampel, stuck, humidity]).fused, DefaultChecks)


def test_the_stage_gives_the_same_either_way() -> None:
    """Through ProcessStage (one pass) and through the stage of the same processors forced to go in turn."""
    limits = LimitsResolver.from_config(SITE_LIMITS, NODE_LIMITS)
    t0 = local(10)
    runs = [[Reading("d1", "dust", c, v, u, Quality.NORMAL, t0 + i, i + 1) for c, u in KIND_ROWS["dust"]
             for v in [LEVELS[c] if i % 4 else LEVELS[c] * 20]] for i in range(12)]
    one_pass = ProcessStage(list(build(limits)))
    in_turn = ProcessStage(list(build(limits)))
    in_turn.fused = None
    in_turn._process = in_turn._in_turn
    assert one_pass.fused is not None
    for run in runs:
        assert repr(one_pass(list(run), 0.0)) == repr(in_turn(list(run), 0.0))


def test_a_node_called_nothing_is_filtered_too() -> None:
    """The spike filter started from the node "" (as if planned, with no floors): that node was never judged."""
    hampel = HampelFilter(LimitsResolver())
    series = [Reading("", "dust", "pm10", 50.0, "ug/m3", Quality.NORMAL, local(10, 0, i), i + 1) for i in range(7)]
    for r in series:
        assert hampel.process_poll([r]) == [r]
    spike = Reading("", "dust", "pm10", 500.0, "ug/m3", Quality.NORMAL, local(10, 0, 7), 8)
    assert hampel.process_poll([spike])[0].quality is Quality.DEVICE_FAULT
