"""Fault plans (who is faulty when), the pure helpers that apply faults, and ground-truth files."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.modbus_rtu import crc16, crc_ok
from simulator.faults import (
    BUS_ONLY,
    NODE_ONLY,
    Fault,
    FaultKind,
    FaultPlan,
    NodeId,
    SensorFaults,
    corrupt_crc,
    garbage_bytes,
    happens,
    spike,
)
from simulator.truth import TruthError, TruthRecord, TruthWriter, read_truth

DUST_1 = NodeId("boundary", 1)
NOISE_2 = NodeId("boundary", 2)
WIND_1 = NodeId("tower", 1)


def node_fault(kind: FaultKind, start: float, end: float = math.inf, node: NodeId = DUST_1, **extra: Any) -> Fault:
    return Fault(kind, node.bus, start, end, node.unit_id, **extra)


# ---------------------------------------------------------------------------
# Fault records
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(NODE_ONLY))
def test_node_faults_need_a_unit_id(kind: FaultKind) -> None:
    with pytest.raises(ValueError, match="unit_id"):
        Fault(kind, "boundary", 0.0)


@pytest.mark.parametrize("kind", sorted(BUS_ONLY))
def test_bus_faults_refuse_a_unit_id(kind: FaultKind) -> None:
    with pytest.raises(ValueError, match="unit_id"):
        Fault(kind, "boundary", 0.0, unit_id=1)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"end": -1.0}, "end"),
        ({"probability": 1.5}, "probability"),
        ({"delay_ms": -3.0}, "delay_ms"),
        ({"length": 0}, "length"),
        ({"start": math.nan}, "start"),
        ({"bus": ""}, "bus"),
        ({"unit_id": 248}, "unit_id"),
    ],
)
def test_impossible_faults_are_refused_naming_the_field(changes: dict[str, object], field: str) -> None:
    arguments: dict[str, Any] = {"kind": FaultKind.GARBAGE, "bus": "boundary", "start": 0.0, **changes}
    with pytest.raises(ValueError, match=f"^{field}: "):
        Fault(**arguments)


def test_a_fault_is_active_from_its_start_until_just_before_its_end() -> None:
    fault = node_fault(FaultKind.NO_REPLY, 10.0, 20.0)
    assert [fault.active_at(t) for t in (9.999, 10.0, 19.999, 20.0)] == [False, True, True, False]


def test_reboot_is_silent_for_its_boot_time() -> None:
    fault = Fault.reboot("boundary", 1, 100.0)
    assert (fault.kind, fault.start, fault.end, fault.unit_id) == (FaultKind.REBOOT, 100.0, 102.0, 1)


def test_labels_say_what_and_how_much() -> None:
    assert node_fault(FaultKind.LATE_REPLY, 0.0, delay_ms=300.0).label == "late_reply(300 ms)"
    assert node_fault(FaultKind.STUCK_VALUE, 0.0, channel="pm10").label == "stuck_value(pm10)"
    assert node_fault(FaultKind.STUCK_VALUE, 0.0).label == "stuck_value(all)"
    assert node_fault(FaultKind.NO_REPLY, 0.0).label == "no_reply"
    assert Fault(FaultKind.BUS_UNPLUGGED, "tower", 0.0).label == "bus_unplugged"


# ---------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------


def test_a_bus_fault_reaches_every_node_on_that_bus_and_no_other() -> None:
    plan = FaultPlan([Fault(FaultKind.GARBAGE, "boundary", 0.0, 60.0)])
    assert [f.kind for f in plan.active(DUST_1, 30.0)] == [FaultKind.GARBAGE]
    assert [f.kind for f in plan.active(NOISE_2, 30.0)] == [FaultKind.GARBAGE]
    assert plan.active(WIND_1, 30.0) == ()
    assert [f.kind for f in plan.active_on_bus("boundary", 30.0)] == [FaultKind.GARBAGE]


def test_a_node_fault_reaches_only_its_node() -> None:
    plan = FaultPlan([node_fault(FaultKind.NO_REPLY, 0.0, 60.0)])
    assert len(plan.active(DUST_1, 1.0)) == 1
    assert plan.active(NOISE_2, 1.0) == ()
    assert plan.active(NodeId("tower", 1), 1.0) == ()  # same unit id, other bus
    assert plan.active_on_bus("boundary", 1.0) == ()


def test_faults_can_be_added_and_cleared_while_running() -> None:
    plan = FaultPlan()
    assert plan.active(DUST_1, 5.0) == ()
    plan.add(node_fault(FaultKind.SENSOR_MISSING, 5.0))
    plan.add(node_fault(FaultKind.LATE_REPLY, 5.0, delay_ms=100.0))
    plan.add(node_fault(FaultKind.NO_REPLY, 5.0, node=NOISE_2))
    assert {f.kind for f in plan.active(DUST_1, 50.0)} == {FaultKind.SENSOR_MISSING, FaultKind.LATE_REPLY}

    ended = plan.clear(60.0, unit_id=1, kind=FaultKind.SENSOR_MISSING)
    assert [f.kind for f in ended] == [FaultKind.SENSOR_MISSING]
    assert {f.kind for f in plan.active(DUST_1, 60.0)} == {FaultKind.LATE_REPLY}
    assert {f.kind for f in plan.active(DUST_1, 59.0)} == {
        FaultKind.SENSOR_MISSING,
        FaultKind.LATE_REPLY,
    }  # history kept
    assert len(plan.active(NOISE_2, 60.0)) == 1

    plan.clear(70.0)
    assert plan.active(DUST_1, 70.0) == () and plan.active(NOISE_2, 70.0) == ()
    assert len(plan) == 3


def test_clear_leaves_future_faults_unless_asked() -> None:
    plan = FaultPlan([node_fault(FaultKind.NO_REPLY, 100.0, 200.0)])
    assert plan.clear(50.0) == []
    assert len(plan.active(DUST_1, 150.0)) == 1
    assert len(plan.clear(50.0, future=True)) == 1
    assert plan.active(DUST_1, 150.0) == () and len(plan) == 0


def test_started_finds_the_reboots_to_carry_out_exactly_once() -> None:
    plan = FaultPlan([Fault.reboot("boundary", 1, 30.0), node_fault(FaultKind.NO_REPLY, 10.0, 50.0)])
    polls = [0.0, 10.0, 20.0, 30.0, 40.0]
    reboots = [
        f for before, now in itertools.pairwise(polls) for f in plan.started(DUST_1, before, now, FaultKind.REBOOT)
    ]
    assert [f.start for f in reboots] == [30.0]
    assert plan.started(NOISE_2, 0.0, 100.0) == ()


def test_labels_for_the_ground_truth_are_sorted() -> None:
    plan = FaultPlan(
        [node_fault(FaultKind.STUCK_VALUE, 0.0, channel="pm10"), Fault(FaultKind.CRC_CORRUPTION, "boundary", 0.0)]
    )
    assert plan.labels(DUST_1, 1.0) == ["crc_corruption(p=1)", "stuck_value(pm10)"]


fault_kinds = st.sampled_from(sorted(FaultKind))
nodes = st.sampled_from([DUST_1, NOISE_2, WIND_1])


@st.composite
def faults(draw: st.DrawFn) -> Fault:
    kind = draw(fault_kinds)
    node = draw(nodes)
    start = draw(st.floats(0.0, 1000.0))
    end = start + draw(st.floats(0.0, 500.0) | st.just(math.inf))
    unit: int | None = node.unit_id
    if kind in BUS_ONLY or (kind not in NODE_ONLY and draw(st.booleans())):
        unit = None
    return Fault(kind, node.bus, start, end, unit)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(faults(), max_size=12),
    st.floats(0.0, 1500.0),
    st.lists(st.floats(0.0, 1600.0), min_size=1, max_size=8),
    st.none() | nodes.map(lambda n: n.bus),
    st.none() | fault_kinds,
)
def test_clear_rewrites_no_history_and_ends_what_it_matches(
    plan_faults: list[Fault], when: float, probes: list[float], bus: str | None, kind: FaultKind | None
) -> None:
    plan = FaultPlan(plan_faults)
    before = {(node, t): plan.labels(node, t) for node in (DUST_1, NOISE_2, WIND_1) for t in probes}
    plan.clear(when, bus=bus, kind=kind)
    for (node, t), labels in before.items():
        after = plan.labels(node, t)
        if t < when:
            assert after == labels  # the past is untouched
        matched = [
            f for f in plan.active(node, t) if (bus is None or f.bus == bus) and (kind is None or f.kind == kind)
        ]
        if t >= when:
            # Whatever still matches at or after the clear must have started after it.
            assert all(f.start > when for f in matched)
            assert set(after) <= set(labels)


# ---------------------------------------------------------------------------
# Applying faults
# ---------------------------------------------------------------------------


def frame(unit: int, payload: bytes) -> bytes:
    body = bytes([unit]) + payload
    crc = crc16(body, len(body))
    return body + bytes([crc & 0xFF, crc >> 8])


@given(st.integers(1, 247), st.binary(min_size=1, max_size=60), st.integers(0, 2**32))
def test_a_corrupted_crc_is_always_rejected_and_the_header_survives(unit: int, payload: bytes, seed: int) -> None:
    good = frame(unit, payload)
    assert crc_ok(good, len(good))
    bad = corrupt_crc(good, random.Random(seed))
    assert len(bad) == len(good) and bad[:-2] == good[:-2]
    assert not crc_ok(bad, len(bad))


def test_corrupting_a_too_short_frame_is_refused() -> None:
    with pytest.raises(ValueError):
        corrupt_crc(b"\x01\x02\x03", random.Random(1))


def test_garbage_has_the_asked_length_and_follows_the_seed() -> None:
    assert len(garbage_bytes(random.Random(1), 12)) == 12
    assert garbage_bytes(random.Random(5), 32) == garbage_bytes(random.Random(5), 32)
    assert garbage_bytes(random.Random(5), 32) != garbage_bytes(random.Random(6), 32)


def test_probability_sets_how_often_a_fault_strikes() -> None:
    rng = random.Random(9)
    always = node_fault(FaultKind.CRC_CORRUPTION, 0.0)
    sometimes = node_fault(FaultKind.CRC_CORRUPTION, 0.0, probability=0.2)
    never = node_fault(FaultKind.CRC_CORRUPTION, 0.0, probability=0.0)
    assert all(happens(always, rng) for _ in range(100))
    assert not any(happens(never, rng) for _ in range(100))
    assert 150 < sum(happens(sometimes, rng) for _ in range(1000)) < 250


def test_a_stuck_channel_keeps_its_first_value_then_lets_go() -> None:
    applier = SensorFaults(random.Random(1))
    stuck = node_fault(FaultKind.STUCK_VALUE, 10.0, 30.0, channel="pm10")
    readings = [{"pm10": 50.0 + i, "pm25": 20.0 + i} for i in range(4)]
    assert applier.apply(readings[0], [stuck]) == {"pm10": 50.0, "pm25": 20.0}
    assert applier.apply(readings[1], [stuck]) == {"pm10": 50.0, "pm25": 21.0}
    assert applier.apply(readings[2], []) == readings[2]  # fault over: live values again
    assert applier.apply(readings[3], [stuck]) == {"pm10": 53.0, "pm25": 23.0}  # a fresh stuck value


def test_stuck_without_a_channel_freezes_every_channel() -> None:
    applier = SensorFaults(random.Random(1))
    stuck = node_fault(FaultKind.STUCK_VALUE, 0.0)
    applier.apply({"a": 1.0, "b": 2.0}, [stuck])
    assert applier.apply({"a": 5.0, "b": 6.0}, [stuck]) == {"a": 1.0, "b": 2.0}


def test_a_missing_sensor_delivers_nothing() -> None:
    applier = SensorFaults(random.Random(1))
    assert applier.apply({"pm10": 5.0}, [node_fault(FaultKind.SENSOR_MISSING, 0.0)]) is None


def test_spikes_multiply_one_channel() -> None:
    applier = SensorFaults(random.Random(3))
    on_speed = node_fault(FaultKind.SPIKES, 0.0, channel="wind_speed", magnitude=5.0)
    assert applier.apply({"wind_speed": 4.0, "wind_dir": 90.0}, [on_speed]) == {"wind_speed": 20.0, "wind_dir": 90.0}
    anywhere = node_fault(FaultKind.SPIKES, 0.0, magnitude=5.0)
    values = {"a": 10.0, "b": 20.0, "c": 30.0}
    for _ in range(20):
        out = applier.apply(values, [anywhere])
        assert out is not None
        assert sum(out[k] != values[k] for k in values) == 1


def test_a_spike_on_a_zero_reading_still_shows() -> None:
    assert spike(0.0, 10.0) == 10.0
    assert spike(-3.0, 10.0) == -30.0


def test_faults_that_are_not_sensor_faults_leave_values_alone() -> None:
    applier = SensorFaults(random.Random(1))
    link = [node_fault(kind, 0.0) for kind in (FaultKind.NO_REPLY, FaultKind.LATE_REPLY, FaultKind.CRC_CORRUPTION)]
    assert applier.apply({"pm10": 5.0}, link) == {"pm10": 5.0}


# ---------------------------------------------------------------------------
# Ground truth files
# ---------------------------------------------------------------------------


def test_truth_records_round_trip_through_a_file(tmp_path: Path) -> None:
    path = tmp_path / "run" / "truth.jsonl"
    with TruthWriter(path) as writer:
        first = writer.record(1744678800.0, "boundary", 1, "dust", {"pm10": 83.25, "pm25": 30.0}, ["b", "a"])
        writer.record(1744678801.0, "tower", 2, "wind", {"wind_speed": 4.5}, [])
        writer.record(1744678802.0, "tower", 3, "tilt", {}, ["sensor_missing"])
    assert writer.count == 3
    records = read_truth(path)
    assert records[0] == first
    assert records[0].faults == ("a", "b")
    assert [r.kind for r in records] == ["dust", "wind", "tilt"]
    assert records[2].values == {}
    line = json.loads(path.read_text().splitlines()[0])
    assert set(line) == {"time", "bus", "unit_id", "kind", "values", "faults"}


def test_truth_writer_truncates_unless_appending(tmp_path: Path) -> None:
    path = tmp_path / "truth.jsonl"
    record = TruthRecord(1.0, "b", 1, "noise", {"laeq_1s": 55.0})
    with TruthWriter(path) as writer:
        writer.write(record)
    with TruthWriter(path, append=True) as writer:
        writer.write(record)
    assert len(read_truth(path)) == 2
    with TruthWriter(path) as writer:
        writer.write(record)
    assert len(read_truth(path)) == 1


def test_a_closed_writer_refuses_records(tmp_path: Path) -> None:
    writer = TruthWriter(tmp_path / "t.jsonl")
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(TruthRecord(1.0, "b", 1, "noise"))


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"time": 1, "bus": "b", "unit_id": 1, "kind": "dust", "values": {}}', "missing ['faults']"),
        ('{"time": 1, "bus": "b", "unit_id": 1, "kind": "smoke", "values": {}, "faults": []}', "kind"),
        ('{"time": 1, "bus": "b", "unit_id": "1", "kind": "dust", "values": {}, "faults": []}', "unit_id"),
        ('{"time": 1, "bus": "b", "unit_id": 1, "kind": "dust", "values": {"pm10": "x"}, "faults": []}', "values"),
        ('{"time": 1, "bus": "b", "unit_id": 1, "kind": "dust", "values": {}, "faults": [3]}', "faults"),
    ],
)
def test_a_bad_truth_line_is_reported_with_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "truth.jsonl"
    good = TruthRecord(1.0, "b", 1, "dust", {"pm10": 1.0}).to_json()
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(TruthError) as caught:
        read_truth(path)
    assert str(caught.value).startswith(f"{path}:2: ")
    assert problem in str(caught.value)


def test_non_finite_values_cannot_be_recorded() -> None:
    with pytest.raises(TruthError, match="pm10"):
        TruthRecord(1.0, "b", 1, "dust", {"pm10": math.nan})


def test_over_range_saturates_the_pm_channels_at_the_sensors_range_limit() -> None:
    applier = SensorFaults(random.Random(1))
    sample = {"pm1": 700.0, "pm25": 900.0, "pm10": 1800.0, "humidity": 35.0}
    fault = node_fault(FaultKind.OVER_RANGE, 0.0)
    assert applier.apply(sample, [fault]) == {"pm1": 1000.0, "pm25": 1000.0, "pm10": 1000.0, "humidity": 35.0}
    assert applier.over_range == {"pm1", "pm25", "pm10"}
    assert applier.apply(sample, []) == sample  # fault over: the live values, nothing saturated
    assert applier.over_range == frozenset()
    only_pm10 = node_fault(FaultKind.OVER_RANGE, 0.0, channel="pm10")
    assert applier.apply(sample, [only_pm10]) == {**sample, "pm10": 1000.0}
    assert applier.over_range == {"pm10"}
    assert applier.apply({"laeq_1s": 80.0}, [fault]) == {"laeq_1s": 80.0}  # a node without a PM channel
    assert applier.over_range == frozenset()


def test_over_range_of_a_channel_without_a_range_is_refused() -> None:
    with pytest.raises(ValueError, match="channel: 'humidity' has no range to exceed"):
        node_fault(FaultKind.OVER_RANGE, 0.0, channel="humidity")
    assert node_fault(FaultKind.OVER_RANGE, 0.0, channel="pm25").label == "over_range(pm25)"
