"""Every shipped scenario, run accelerated against independent readers, shows what it is meant to show.

Each test runs the real site (firmware nodes on pseudo-terminals or TCP) for a few real seconds,
jumping into the scenario (skip) and running it fast (speed), and checks the scenario's outcome on
the ground truth written by the run and on what a Modbus master (pymodbus, or raw bytes) read.
"""

from __future__ import annotations

import functools
import math
import struct
import time
from collections.abc import Sequence
from pathlib import Path

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from firmware import regmap
from simulator.physics import EpochSource, leq
from simulator.scenario import builtin_names, load_builtin
from simulator.site import Site, warm_up
from simulator.truth import TruthRecord, read_truth
from tests.simulator.test_bus_timing import RawMaster, read_request
from tests.simulator.test_site import decode
from tests.support.waiting import wait_until

KIND = {"dust": regmap.KIND_DUST, "noise": regmap.KIND_NOISE, "tilt": regmap.KIND_TILT, "wind": regmap.KIND_WIND}
SPRAY = regmap.find(regmap.COILS[regmap.KIND_DUST], "spray_relay")[1]


def test_every_shipped_scenario_has_a_test_here() -> None:
    tested = {"demo", "normal_day", "dust_episode", "typhoon", "night_work", "formwork_pour", "faults"}
    assert set(builtin_names()) == tested


# ---------------------------------------------------------------------------
# An independent reader, and the truth
# ---------------------------------------------------------------------------


Client = AsyncModbusSerialClient | AsyncModbusTcpClient


# The reader checks values, not speed: at thousands of times real time on a busy CPU the bus thread
# may be catching up on samples for a while before it answers, so it waits long and asks again.
READER_TIMEOUT, READER_RETRIES = 3.0, 3


async def connect(site: Site, bus: str) -> Client:
    path = site.paths[bus]
    client: Client
    if path.startswith("tcp://"):
        client = AsyncModbusTcpClient(
            "127.0.0.1", port=int(path.rsplit(":", 1)[1]), timeout=READER_TIMEOUT, retries=READER_RETRIES
        )
    else:
        baud = next(b.baud for b in site.buses if b.name == bus)
        client = AsyncModbusSerialClient(path, baudrate=baud, timeout=READER_TIMEOUT, retries=READER_RETRIES)
    assert await client.connect()
    return client


async def read(client: Client, unit: int, kind: str) -> dict[str, float]:
    count = regmap.input_count(KIND[kind])
    result = await client.read_input_registers(0, count=count, device_id=unit)
    assert not result.isError(), result
    return decode(list(result.registers), KIND[kind])


Reads = list[tuple[int, dict[str, float]]]  # (unit id, decoded input registers)


def run_for(site: Site, seconds: float) -> float:
    """The scenario time `seconds` of real time after the start, were the host fast enough."""
    return site.skip + seconds * site.speed


def wait_for_samples(site: Site, until: float) -> None:
    """Wait until every node has sampled up to scenario time `until` (a lossless site: however late)."""
    wait_until(lambda: site.sampled_until() >= until, timeout=600)


async def poll(site: Site, bus: str, nodes: Sequence[tuple[int, str]], seconds: float) -> Reads:
    """Read the nodes over and over until the site has sampled `seconds` of real time's worth of scenario."""
    client = await connect(site, bus)
    reads: Reads = []
    until = run_for(site, seconds)
    try:
        # At least one round, however late it starts: on a busy host the site may already have
        # sampled past `until` by the time the reader has connected (the run is lossless, so the
        # values are still checkable against the truth).
        while not reads or site.sampled_until() < until:
            for unit, kind in nodes:
                reads.append((unit, await read(client, unit, kind)))
    finally:
        client.close()
    return reads


@functools.lru_cache(maxsize=4)
def truth_of(path: Path) -> tuple[TruthRecord, ...]:
    """A finished run's truth file, read once (the runs write tens of thousands of records)."""
    return tuple(read_truth(path))


def by_sequence(truth: Path, bus: str) -> dict[tuple[int, int], TruthRecord]:
    return {(r.unit_id, r.sequence or 0): r for r in truth_of(truth) if r.bus == bus}


def assert_reads_match_truth(reads: Reads, truth: Path, bus: str, kinds: dict[int, str]) -> None:
    """Each value read is its sample's true value, to the register's resolution."""
    records = by_sequence(truth, bus)
    assert reads
    for unit, values in reads:
        record = records[(unit, int(values["sample_seq"]))]
        assert values["sensor_status"] == regmap.STATUS_OK
        for name, true in record.values.items():
            scale = regmap.find(regmap.MEASUREMENTS[KIND[kinds[unit]]], name)[3]
            assert abs(values[name] - true) <= 0.5 / scale + 1e-9, (bus, unit, name, values[name], true)


def series(truth: Path, bus: str, unit: int) -> list[TruthRecord]:
    return [r for r in truth_of(truth) if r.bus == bus and r.unit_id == unit and r.values]


def scenario_seconds(site: Site, record: TruthRecord) -> float:
    return record.time - site.scenario.start_epoch


def local_hour(site: Site, record: TruthRecord) -> float:
    moment = site.scenario.local_time(scenario_seconds(site, record))
    return moment.hour + moment.minute / 60 + moment.second / 3600


def windows(records: Sequence[TruthRecord], length: float) -> list[list[TruthRecord]]:
    """Consecutive windows of `length` simulated seconds (the last, partial one dropped)."""
    out: list[list[TruthRecord]] = []
    current: list[TruthRecord] = []
    for record in records:
        if current and record.time - current[0].time >= length:
            out.append(current)
            current = []
        current.append(record)
    return out


def circular_mean(degrees: Sequence[float]) -> float:
    east = sum(math.sin(math.radians(d)) for d in degrees)
    north = sum(math.cos(math.radians(d)) for d in degrees)
    return math.degrees(math.atan2(east, north)) % 360


# ---------------------------------------------------------------------------
# The scenarios
# ---------------------------------------------------------------------------


async def test_demo_every_node_is_read_as_its_truth(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    kinds = {1: "dust", 2: "wind", 3: "noise", 4: "tilt"}
    with Site(load_builtin("demo"), tmp_path / "buses", speed=60, lossless=True, truth=truth) as site:
        reads = await poll(site, "bus0", list(kinds.items()), 2.0)
    assert {unit for unit, _ in reads} == set(kinds)
    assert_reads_match_truth(reads, truth, "bus0", kinds)


async def test_normal_day_work_starts_at_seven_and_the_wifi_anemometers_answer(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    normal_day = load_builtin("normal_day")
    with Site(normal_day, tmp_path / "buses", speed=600, lossless=True, skip=50 * 60, truth=truth) as site:
        assert site.paths["tower"].startswith("tcp://127.0.0.1:")
        reads = await poll(site, "tower", [(1, "wind"), (2, "wind")], 2.8)
    assert_reads_match_truth(reads, truth, "tower", {1: "wind", 2: "wind"})
    noise = series(truth, "boundary", 3)  # noise-north, 30 m from the works
    before = [r.values["laeq_1s"] for r in noise if local_hour(site, r) < 7.0]
    working = [r.values["laeq_1s"] for r in noise if local_hour(site, r) >= 7.2]
    assert len(before) >= 300 and len(working) >= 300
    assert leq(before) < 56.0  # the city in the early morning
    assert leq(working) >= leq(before) + 8.0  # excavators and trucks from 07:00


async def test_dust_episode_pm10_rises_and_falls_once_a_master_switches_the_spray(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    scenario = load_builtin("dust_episode")
    seen: list[float] = []
    with Site(scenario, tmp_path / "buses", speed=600, lossless=True, skip=55 * 60, truth=truth) as site:
        client = await connect(site, "boundary")
        try:
            switched = None
            until = run_for(site, 6.0)
            while site.sampled_until() < until:
                seen.append((await read(client, 1, "dust"))["pm10"])
                # A spray linkage: the mean of the last five readings above 150 ug/m3.
                if switched is None and len(seen) >= 5 and sum(seen[-5:]) / 5 > 150.0:
                    assert not (await client.write_coil(SPRAY, True, device_id=1)).isError()
                    # Where the node's samples were when the coil was written: a lossless site on a busy
                    # host lags its clock, and samples dated before the clock's now may follow the write.
                    switched = site.sampled_until("boundary", 1)
                    until = switched + 25 * 60  # 25 simulated minutes more
        finally:
            client.close()
    assert switched is not None, f"PM10 never rose above 150 ug/m3: {seen}"
    assert min(seen[:5]) < 100.0  # it rose: the morning started clean
    pm10 = series(truth, "boundary", 1)
    before = [r.values["pm10"] for r in pm10 if switched - 300 <= scenario_seconds(site, r) < switched]
    late = [r for r in pm10 if scenario_seconds(site, r) >= switched + 15 * 60]
    assert len(before) >= 200 and len(late) >= 200
    after = sum(r.values["pm10"] for r in late) / len(late)
    assert after < 0.8 * sum(before) / len(before)  # it fell
    assert after < 150.0
    # ... because of the spray: the same dust model without it would have gone on rising.
    alone = EpochSource(scenario.physics().model("boundary", 1), scenario.start_epoch)
    warm_up(alone, scenario.start_epoch, 55 * 60)
    without = [alone.values(r.time)["pm10"] for r in pm10]
    late_without = without[-len(late):]
    assert sum(late_without) / len(late_without) > 1.3 * after


async def test_typhoon_mean_wind_reaches_beaufort_8_gusts_above_it_and_the_wind_veers(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    typhoon = load_builtin("typhoon")
    with Site(typhoon, tmp_path / "buses", speed=4800, lossless=True, skip=6 * 3600, truth=truth) as site:
        reads = await poll(site, "tower", [(1, "wind")], 3.0)  # 06:00 .. 10:00 into the typhoon
    assert_reads_match_truth(reads, truth, "tower", {1: "wind"})
    mast = series(truth, "tower", 1)
    ten_minutes = windows(mast, 600.0)
    assert len(ten_minutes) >= 18
    means = [sum(r.values["wind_speed"] for r in w) / len(w) for w in ten_minutes]
    assert max(means) >= 17.2  # Beaufort 8
    for window, mean in zip(ten_minutes, means, strict=True):
        assert max(r.values["wind_gust_3s"] for r in window) > 1.15 * mean
    first = circular_mean([r.values["wind_dir"] for w in ten_minutes[:3] for r in w])
    last = circular_mean([r.values["wind_dir"] for w in ten_minutes[-3:] for r in w])
    veer = (last - first) % 360
    assert 40.0 <= veer <= 180.0, (first, last)  # clockwise: north-east round towards south


def test_night_work_laeq_is_over_55_after_22(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    night = load_builtin("night_work")
    with Site(night, tmp_path / "buses", speed=600, lossless=True, skip=2 * 3600 + 50 * 60, truth=truth) as site:
        wait_for_samples(site, run_for(site, 3.0))  # 21:50 .. 22:20
    pump = [r for r in series(truth, "boundary", 1) if local_hour(site, r) >= 22.0]
    assert len(pump) >= 900
    assert leq(r.values["laeq_1s"] for r in pump) > 55.0  # GB 12523-2011 night limit
    assert all("22:" in site.scenario.local_time(scenario_seconds(site, r)).isoformat() for r in pump)


def test_formwork_pour_slope_crosses_the_prewarning_then_the_alarm(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    with Site(load_builtin("formwork_pour"), tmp_path / "buses", speed=4800, lossless=True, skip=4.25 * 3600,
              truth=truth) as site:
        wait_for_samples(site, run_for(site, 2.5))  # 11:15 .. 14:35
    bay_a = series(truth, "formwork", 1)
    slope = [(r.time, math.hypot(r.values["slope_x"], r.values["slope_y"])) for r in bay_a]
    assert len(slope) >= 2000  # 12000 when the host keeps up with 5 nodes at 4800x
    assert slope[0][1] < 3.2
    prewarning = next(t for t, s in slope if s > 3.2)
    alarm = next(t for t, s in slope if s > 4.0)
    assert prewarning < alarm
    for unit in (2, 3):  # the other bays stay inside the limits
        assert max(math.hypot(r.values["slope_x"], r.values["slope_y"]) for r in series(truth, "formwork", unit)) < 3.2


def raw_poll(
    port: str, unit: int, count: int, seconds: float, at_least: int = 0, site: Site | None = None
) -> list[tuple[float, bytes]]:
    """Read `count` input registers from 0 as fast as the line allows, for `seconds` and `at_least` reads;
    (time, reply bytes) each. A reply waits for 0.3 s of silence: a busy host may hold the bus thread.

    site: one started held (Site(held=True)), whose clock goes once the line is open: the fault the test
    looks for is a fraction of a real second after the start, which a busy host may take to get here."""
    out: list[tuple[float, bytes]] = []
    with RawMaster(port) as master:
        if site is not None:
            site.clock.gate = lambda: None  # an open gate: the clock resumes from the held start
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline or len(out) < at_least:
            _, data, _ = master.transact(read_request(unit, 0, count), 5 + 2 * count, timeout=0.3)
            out.append((time.monotonic(), data))
            if data and len(data) < 5 + 2 * count:  # a short answer: let the line go quiet
                time.sleep(0.02)
    return out


def words(data: bytes) -> list[int]:
    return list(struct.unpack(f">{(len(data) - 5) // 2}H", data[3:-2]))


def test_faults_silent_node_crc_errors_and_a_reboot_seen_on_the_line(tmp_path: Path) -> None:
    scenario = load_builtin("faults")
    # 05:00-07:00 into the run, unit 2 (noise) stops answering.
    truth = tmp_path / "silent.jsonl"
    with Site(scenario, tmp_path / "a", speed=20, skip=4 * 60 + 45, truth=truth, held=True) as site:
        replies = raw_poll(site.paths["boundary"], 2, 1, 1.5, site=site)
    answered = [bool(data) for _, data in replies]
    assert answered[0] and not answered[-1]
    assert answered.index(False) == answered.count(True)  # answers, then silence for good
    silent = [r for r in read_truth(truth) if r.unit_id == 2 and r.bus == "boundary"]
    assert {r.faults for r in silent if scenario_seconds(site, r) >= 300} == {("no_reply",)}

    # 20:00-30:00: a third of unit 3's replies have a broken CRC; the reader counts them.
    with Site(scenario, tmp_path / "b", speed=20, skip=21 * 60, held=True) as site:
        replies = raw_poll(site.paths["boundary"], 3, 1, 1.5, at_least=40, site=site)
    sizes = {len(data) for _, data in replies}
    assert sizes == {7}  # every request answered, none lost
    from simulator.tcp import rtu_pdu

    bad = sum(1 for _, data in replies if rtu_pdu(data) is None)
    assert len(replies) >= 40 and 0.1 <= bad / len(replies) <= 0.6, (bad, len(replies))

    # 1:15:00: unit 3 reboots (2 s): its sequence goes back to 1, its boot count goes up.
    with Site(scenario, tmp_path / "c", speed=10, skip=3600 + 14 * 60 + 55, held=True) as site:
        replies = raw_poll(site.paths["boundary"], 3, 12, 1.5, site=site)
    seen = [(words(data)[5], words(data)[11]) for _, data in replies if len(data) == 29]  # (seq low word, boots)
    gaps = [i for i, (_, data) in enumerate(replies) if not data]
    assert gaps, "the node was never silent while it booted"
    restart = next(i for i in range(1, len(seen)) if seen[i][0] < seen[i - 1][0])
    assert seen[restart - 1][0] >= 4 and seen[restart][0] <= 3
    assert {boots for _, boots in seen[:restart]} == {1} and {boots for _, boots in seen[restart:]} == {2}
