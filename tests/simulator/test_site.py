"""A site built from a scenario: its physics feeds the firmware nodes, the spray coil closes the loop,
the ground truth is deterministic, and reboots and sensor faults act as on a real node.

Values are read back by independent masters (raw bytes on the pty, mbpoll) and compared with the
ground-truth file and with the scenario's physics stepped on its own.
"""

from __future__ import annotations

import itertools
import math
import struct
import time
from collections.abc import Callable
from pathlib import Path

from firmware import regmap
from simulator.faults import Fault, FaultKind, FaultPlan
from simulator.physics import EpochSource
from simulator.scenario import load_builtin
from simulator.site import DEMO_SITE, BusSpec, NodeSpec, Site, bus_specs, physics_source, warm_up
from simulator.truth import TruthRecord, read_truth
from tests.simulator.test_bus_timing import RawMaster, read_request
from tests.support.mbpoll import mbpoll
from tests.support.waiting import wait_until

DUST, WIND, NOISE = regmap.KIND_DUST, regmap.KIND_WIND, regmap.KIND_NOISE
SPRAY = regmap.find(regmap.COILS[DUST], "spray_relay")[1]
INTERVAL = regmap.find(regmap.COMMON_HOLDING, "sample_interval")[1]


def decode(words: list[int], kind: int) -> dict[str, float]:
    """Input registers read from address 0, by name, in physical units."""
    out = {}
    for name, address, fmt, scale, *_ in regmap.input_registers(kind):
        if address + regmap.FORMAT_WORDS[fmt] <= len(words):
            out[name] = regmap.decode_raw(regmap.words_to_raw(words, address, fmt), fmt) / scale
    return out


def read_node(master: RawMaster, unit: int, kind: int) -> dict[str, float] | None:
    """Every input register of a node, decoded; None when no correct reply came."""
    count = regmap.input_count(kind)
    # A second of silence: a busy host may hold the simulated bus thread back for a while.
    _, data, _ = master.transact(read_request(unit, 0, count), 5 + 2 * count, timeout=1.0)
    if len(data) != 5 + 2 * count or data[:3] != bytes((unit, 4, 2 * count)):
        return None
    return decode(list(struct.unpack(f">{count}H", data[3:-2])), kind)


def node_records(path: Path, bus: str, unit: int) -> list[TruthRecord]:
    return [r for r in read_truth(path) if r.bus == bus and r.unit_id == unit]


def resolution(kind: int, name: str) -> float:
    return 0.5 / regmap.find(regmap.MEASUREMENTS[kind], name)[3] + 1e-9


# ---------------------------------------------------------------------------
# Built from a scenario, fed by its physics
# ---------------------------------------------------------------------------


def test_the_demo_scenario_builds_its_bus_and_nodes(tmp_path: Path) -> None:
    scenario = load_builtin("demo")
    assert bus_specs(scenario) == DEMO_SITE
    with Site(scenario, tmp_path) as site:
        assert site.paths == {"bus0": str(tmp_path / "bus0")}
        assert (tmp_path / "bus0").is_symlink()
        layout = [(n.bus, n.spec.unit_id, n.spec.kind) for n in site.nodes]
        assert layout == [("bus0", 1, "dust"), ("bus0", 2, "wind"), ("bus0", 3, "noise"), ("bus0", 4, "tilt")]
        # The simulated clock starts at the scenario's start, 09:00 in Zhongshan.
        assert abs(site.clock.seconds() - scenario.start_epoch) < 5
        assert site.describe()[0].startswith(f"bus0: {tmp_path / 'bus0'} (9600 baud 8N1; dust 1, wind 2")
    assert not (tmp_path / "bus0").exists()


def test_readings_and_truth_are_the_scenario_physics_at_the_scheduled_sample_times(tmp_path: Path) -> None:
    scenario = load_builtin("demo")
    truth = tmp_path / "truth.jsonl"
    with Site(scenario, tmp_path / "buses", speed=20, truth=truth) as site, \
            RawMaster(site.paths["bus0"]) as master:
        wait_until(lambda: all(n.node.seq >= 2 for n in site.nodes))  # samples to read
        read = {unit: read_node(master, unit, kind) for unit, kind in ((1, DUST), (2, WIND), (3, NOISE))}
        wait_until(lambda: all(n.node.seq >= 15 for n in site.nodes))
    physics = scenario.physics()
    for bus, node in scenario.nodes():
        mine = node_records(truth, bus.name, node.unit_id)
        assert len(mine) >= 15, len(mine)
        # One record per sample, in order, exactly one sample interval (1 s simulated) apart.
        assert [r.sequence for r in mine] == list(range(1, len(mine) + 1))
        assert all(abs(b.time - a.time - 1.0) < 1e-6 for a, b in itertools.pairwise(mine))
        assert abs(mine[0].time - scenario.start_epoch) < 1.0
        # The node's own model of the scenario, stepped at those moments, gives the same numbers.
        source = EpochSource(physics.model(bus.name, node.unit_id), scenario.start_epoch)
        for record in mine:
            assert record.faults == ()
            assert record.values == source.values(record.time), (node.name, record.sequence)
    # What a master read is the truth of the sample it read, to the register's resolution.
    for unit, kind in ((1, DUST), (2, WIND), (3, NOISE)):
        values = read[unit]
        assert values is not None and values["sensor_status"] == regmap.STATUS_OK
        sample = next(r for r in node_records(truth, "bus0", unit) if r.sequence == values["sample_seq"])
        for name, true in sample.values.items():
            assert abs(values[name] - true) <= resolution(kind, name), (unit, name, values[name], true)


def short_run(tmp_path: Path, name: str, seed: int | None = None) -> dict[tuple[int, int], dict[str, float]]:
    truth = tmp_path / f"{name}.jsonl"
    with Site(load_builtin("demo"), tmp_path / name, seed=seed, speed=30, truth=truth) as site:
        wait_until(lambda: all(n.node.seq >= 12 for n in site.nodes))
    return {(r.unit_id, r.sequence or 0): dict(r.values) for r in read_truth(truth)}


def test_the_same_seed_gives_the_same_truth_and_another_seed_another(tmp_path: Path) -> None:
    first, second = short_run(tmp_path, "a"), short_run(tmp_path, "b")
    other = short_run(tmp_path, "c", seed=2)
    common = set(first) & set(second) & set(other)
    assert len(common) >= 4 * 10  # four nodes, ten samples or more each
    assert all(first[key] == second[key] for key in common)
    assert all(first[key] != other[key] for key in common)


def test_writing_the_spray_coil_lowers_pm10_against_the_same_run_without_it(tmp_path: Path) -> None:
    """Closed loop: the coil a master writes reaches the dust model as its actuator."""
    scenario = load_builtin("dust_episode")
    truth = tmp_path / "truth.jsonl"
    skip = 5400.0  # 08:30, the earthworks are in full swing
    with Site(scenario, tmp_path / "buses", speed=120, skip=skip, truth=truth) as site:
        # Twenty samples or more before the coil is written: wait for them, not for a guessed time.
        wait_until(lambda: site.sampled_until("boundary", 1) >= skip + 30.0, timeout=60)
        # Where the node's samples were when the coil was written (a busy host's bus thread lags the
        # site's clock: samples dated before the clock's now may be taken after the write).
        asked = site.sampled_until("boundary", 1)
        proc = mbpoll(site.paths["boundary"], 1, "coil", SPRAY, 1)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        switched = site.scenario_time()
        # Six simulated minutes after the write: 240 samples or more past the first minute of spraying.
        wait_until(lambda: site.sampled_until("boundary", 1) >= switched + 360.0, timeout=120)
    physics = scenario.physics()
    without = EpochSource(physics.model("boundary", 1), scenario.start_epoch)  # nobody writes its coil
    warm_up(without, scenario.start_epoch, skip)  # as the site does before a skipped-to start
    mine = node_records(truth, "boundary", 1)
    before = [r for r in mine if r.time - scenario.start_epoch < asked]
    after = [r for r in mine if r.time - scenario.start_epoch > switched + 60.0]
    assert len(before) >= 20 and len(after) >= 240
    ratios = []
    for record in mine:
        counterfactual = without.values(record.time)["pm10"]
        if record in before:
            assert record.values["pm10"] == counterfactual  # identical until the coil is written
        if record in after:
            ratios.append(record.values["pm10"] / counterfactual)
    assert max(ratios) < 1.0
    # Scavenging at once, then the site wets (5 min time constant): a clear, growing drop.
    last = ratios[-60:]
    assert sum(last) / len(last) < 0.8
    assert sum(last) / len(last) < sum(ratios[:60]) / 60


def test_a_node_on_its_own_reads_the_physics() -> None:
    source = physics_source(WIND, 3, seed=1)
    values = source.values(time.time())
    assert set(values) == {"wind_speed", "wind_dir", "wind_gust_3s"}
    assert all(math.isfinite(v) for v in values.values())
    assert 0 <= values["wind_dir"] < 360 and values["wind_gust_3s"] >= 0


# ---------------------------------------------------------------------------
# Reboots and sensor faults
# ---------------------------------------------------------------------------


BOOT_S = 30.0


def test_a_reboot_restarts_the_sequence_bumps_the_boot_count_and_keeps_the_configuration(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    with Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", speed=10, truth=truth) as site:
        port = site.paths["bus0"]
        assert mbpoll(port, 1, "holding", INTERVAL, 500).returncode == 0
        assert mbpoll(port, 1, "coil", SPRAY, 1).returncode == 0
        dust = site.node("bus0", 1)
        wait_until(lambda: dust.node.seq >= 9)
        with RawMaster(port) as master:
            before = read_node(master, 1, DUST)
            assert before is not None and before["sample_seq"] >= 8 and before["boot_count"] == 1
            # A boot of 30 simulated seconds (3 real): long enough that a busy host cannot skip past it.
            fault_at = site.scenario_time()
            site.faults.add(Fault.reboot("bus0", 1, fault_at, boot_time=BOOT_S))
            wait_until(lambda: dust.sim.down)
            assert read_node(master, 1, DUST) is None  # booting: silent
            wait_until(lambda: dust.sim.booted and not dust.sim.down and dust.node.seq >= 1, timeout=60)
            after = read_node(master, 1, DUST)
            read_at = site.scenario_time()
        coil = mbpoll(port, 1, "coil", SPRAY, count=1)
        interval = mbpoll(port, 1, "holding", INTERVAL, count=1)
    assert after is not None
    assert after["boot_count"] == 2 and after["sample_seq"] < before["sample_seq"]
    assert after["uptime"] <= read_at - fault_at - BOOT_S + 1  # up since the boot ended, not before
    assert "[0]: \t0" in coil.stdout  # the relay starts off
    assert f"[{INTERVAL}]: \t500" in interval.stdout  # the configuration survived on "flash"
    sequences = [r.sequence for r in node_records(truth, "bus0", 1)]
    restart = sequences.index(1, 1)
    assert sequences[:restart] == list(range(1, restart + 1))
    assert sequences[restart:] == list(range(1, len(sequences) - restart + 1))


def test_stuck_spiking_and_missing_sensors_show_in_the_registers_and_in_the_truth(tmp_path: Path) -> None:
    plan = FaultPlan(
        [
            Fault(FaultKind.STUCK_VALUE, "bus0", 0.0, unit_id=1, channel="pm10"),
            Fault(FaultKind.SENSOR_MISSING, "bus0", 0.0, unit_id=2),
            Fault(FaultKind.SPIKES, "bus0", 0.0, unit_id=3, channel="laeq_1s", magnitude=3.0),
        ]
    )
    buses = (BusSpec("bus0", (NodeSpec("dust", 1), NodeSpec("wind", 2), NodeSpec("noise", 3))),)
    truth = tmp_path / "truth.jsonl"
    reads: list[dict[int, dict[str, float] | None]] = []
    with Site(buses, tmp_path / "buses", speed=20, truth=truth, faults=plan) as site, \
            RawMaster(site.paths["bus0"]) as master:
        def newer_than(seen: list[int]) -> Callable[[], bool]:
            return lambda: all(n.node.seq > s for n, s in zip(site.nodes, seen, strict=True))

        seen = [0, 0, 0]
        for _ in range(4):  # four reads, each of samples newer than the last read's
            wait_until(newer_than(seen))
            reads.append({unit: read_node(master, unit, kind) for unit, kind in ((1, DUST), (2, WIND), (3, NOISE))})
            seen = [n.node.seq for n in site.nodes]
    truth_of = {(r.unit_id, r.sequence): r for r in read_truth(truth)}
    stuck = {read[1]["pm10"] for read in reads if read[1] is not None}
    assert len(stuck) == 1  # the reader sees pm10 frozen ...
    assert len({truth_of[(1, int(read[1]["sample_seq"]))].values["pm10"] for read in reads if read[1]}) == 4
    for read in reads:  # ... while the other channels and the truth move on
        dust, wind, noise = read[1], read[2], read[3]
        assert dust is not None and wind is not None and noise is not None
        assert truth_of[(1, int(dust["sample_seq"]))].faults == ("stuck_value(pm10)",)
        assert wind["sensor_status"] == regmap.STATUS_ABSENT
        assert truth_of[(2, int(wind["sample_seq"]))].values == {}
        assert truth_of[(2, int(wind["sample_seq"]))].faults == ("sensor_missing",)
        true = truth_of[(3, int(noise["sample_seq"]))].values
        assert abs(noise["laeq_1s"] - 3.0 * true["laeq_1s"]) <= 0.05 + 1e-9
        assert abs(noise["lamax_1s"] - true["lamax_1s"]) <= 0.05 + 1e-9


def test_a_reboot_before_a_skipped_to_start_is_history_and_one_in_progress_delays_the_boot(tmp_path: Path) -> None:
    scenario = load_builtin("faults")  # boundary unit 3 reboots at 1:15:00; tower unit 1 at 1:40:00 for 5 s
    skip = 100 * 60 + 2  # 1:40:02: the tower is 2 s into its 5 s boot
    # Held at the skipped-to start until the test has looked (a busy host may take seconds to get here), then
    # real time, so the 3 s the tower still needs are 3 s on the wall: a loaded CPU cannot skip past them.
    with Site(scenario, tmp_path, speed=1, skip=skip, held=True) as site:
        tower, boundary = site.node("tower", 1), site.node("boundary", 3)
        wait_until(lambda: boundary.sim.booted, timeout=10)
        assert boundary.node.bank.get_input("boot_count") == 1  # its reboot at 1:15:00 is history
        wait_until(lambda: tower.sim.down, timeout=10)  # the boot in progress holds the tower back ...
        assert not tower.sim.booted
        site.clock.gate = lambda: None  # let the clock go on (an open gate: the clock resumes where it was held)
        wait_until(lambda: tower.sim.booted and not tower.sim.down and tower.node.seq >= 1, timeout=30)
        # ... until its 5 s are over (the skip started it 2 s in), not at once and not from scratch.
        assert site.scenario_time() >= skip + 3
        assert tower.node.bank.get_input("boot_count") == 2


def test_an_over_range_dust_sensor_reads_its_range_limit_and_says_so_in_its_status(tmp_path: Path) -> None:
    from gateway.acquire.decode import channel_qualities
    from gateway.model import Quality

    plan = FaultPlan([Fault(FaultKind.OVER_RANGE, "bus0", 0.0, unit_id=1)])
    truth = tmp_path / "truth.jsonl"
    with Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", speed=20, truth=truth,
              faults=plan) as site:
        node = site.node("bus0", 1)
        wait_until(lambda: node.node.seq >= 3, timeout=60)
        bank = node.node.bank
        values = {name: bank.get_input(name) for name in ("pm1", "pm25", "pm10", "temperature")}
        status = int(bank.get_input("sensor_status"))
    assert values["pm1"] == values["pm25"] == values["pm10"] == 1000.0
    assert status == regmap.STATUS_OK | regmap.STATUS_SPLIT | regmap.STATUS_RANGE
    quality = channel_qualities("dust", status)
    assert {quality[c] for c in ("pm1", "pm25", "pm10")} == {Quality.OVER_RANGE}
    assert {quality[c] for c in ("temperature", "humidity", "pressure")} == {Quality.NORMAL}
    # The truth keeps the physics' own value (below the limit in this quiet site) and names the fault.
    records = node_records(truth, "bus0", 1)
    assert records and all(r.faults == ("over_range(all)",) and r.values["pm10"] < 1000.0 for r in records)
