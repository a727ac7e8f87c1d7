"""The report's numbers against the simulator's ground truth: typhoon.toml through the real gateway and its store.

One run of the typhoon's onset, 13:00 to 15:30 local time (scenario 1 h to 3 h 30), at 600x: the
gateway polls the boundary dust monitor and noise meter (9600 baud) and both anemometers (10-m mast,
45-m crane top; 19200 baud) every 0.05 real seconds, and its own SQLite sink (``[[sink]] type = "sqlite"``)
writes the store the report reads. The wind rises through the crane (9 m/s) and lifting (12 m/s)
gust limits in this stretch, so stop periods begin in it.

Numbers changed for speed, and why: every node samples once a minute (sample_interval = 60000 ms,
limits.sampling.interval_s = 60), as in tests/integration, so 2 h 30 of scenario take seconds.

Ground truth: the simulator's truth file (simulator/truth.py), each sample matched to the stored
reading by the node's sample sequence. Stored values are the truth to the register's resolution
(half a step: 0.5 ug/m3, 0.05 dB, 0.005 m/s), so means are held to that; the crane-stop periods are
replayed from the truth's gusts with an independent implementation of the rule
(tests/integration/support.py hysteresis_events) and must start and end at the same samples.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from pathlib import Path

import pytest
from PIL import Image

from gateway.ops.cli import main
from gateway.process.limits import LimitsResolver
from gateway.report.influx_source import InfluxSource
from gateway.report.model import DaySummary
from gateway.report.sources import StoreSource
from gateway.report.summary import day_bounds, summarize
from simulator.truth import TruthRecord, read_truth
from tests.integration.support import Polled, Run, circular_mean, hysteresis_events, run_scenario
from tests.report.pages import ink, pdf_text, render_pages
from tests.support.influx import InfluxServer

DAY = date(2025, 9, 23)
NODES = {("boundary", 1): "dust-1", ("boundary", 2): "noise-2", ("tower", 1): "wind-mast", ("tower", 2): "wind-crane"}
SPEED = 600.0
# Real seconds between polls of a node (30 simulated s at 600x, two polls a sample): a loaded host that
# makes the gateway miss a sample live leaves it free line time to fetch it from the node's history
# (back-to-back polling leaves none; tests/integration/support.py).
POLL_S = 0.05


@dataclass
class Case:
    run: Run
    store: Path
    summary: DaySummary
    truth: dict[str, dict[int, TruthRecord]]  # node -> sequence -> truth sample
    stamps: dict[str, dict[int, float]]  # node -> sequence -> the stored reading's timestamp
    influx_url: str  # the InfluxDB 1.6.7 the gateway's influxdb sink wrote the same records to
    database: str


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory, influxd: InfluxServer) -> Iterator[Case]:
    path = tmp_path_factory.mktemp("report-typhoon")
    store = path / "store.sqlite3"
    database = influxd.database()
    extra = (
        f'[[sink]]\ntype = "sqlite"\nname = "store"\npath = "{store}"\n'
        f'[[sink]]\ntype = "influxdb"\nname = "bureau"\nurl = "{influxd.url}"\napi = "v1"\n'
        f'database = "{database}"\nsite = "typhoon"\ngateway = "gw-1"\n'
    )
    run = asyncio.run(
        run_scenario(
            path, "typhoon", skip=3600.0, until=3.5 * 3600, speed=SPEED, extra=extra, truth=path / "truth.jsonl",
            polled=[Polled(bus, unit, 60.0) for bus, unit in NODES], poll_interval=POLL_S,
        )
    )
    assert run.site.truth_path is not None
    limits = LimitsResolver.from_config({"sampling": {"interval_s": 60.0}})
    start, end = day_bounds(DAY, limits.site.time.tz_offset_s)
    with StoreSource(store) as source:
        records = source.fetch(start, end)
    summary = summarize("typhoon", DAY, records, limits)
    truth: dict[str, dict[int, TruthRecord]] = {name: {} for name in NODES.values()}
    for t in read_truth(run.site.truth_path):
        name = NODES.get((t.bus, t.unit_id))
        if name is not None and t.sequence is not None and t.values:
            truth[name][t.sequence] = t
    stamps: dict[str, dict[int, float]] = {name: {} for name in NODES.values()}
    for r in records.readings:
        if r.sequence > 0 and r.value is not None:
            stamps[r.node][r.sequence] = r.timestamp
    yield Case(run, store, summary, truth, stamps, influxd.url, database)


def received(case: Case, node: str) -> list[TruthRecord]:
    """The truth of the samples the store holds, in order (every one the node took while the gateway ran)."""
    return [case.truth[node][s] for s in sorted(case.stamps[node]) if s in case.truth[node]]


def test_every_sample_the_store_holds_is_counted_and_every_silence_listed(case: Case) -> None:
    by_node = {c.node: c for c in case.summary.completeness}
    for node in NODES.values():
        stamps = sorted(case.stamps[node].values())
        assert len(stamps) >= 120, node  # 2 h 30 of one-minute samples, less the start-up
        # Each stored sample is one the node took (its truth has the same sequence).
        assert set(case.stamps[node]) <= set(case.truth[node]), (node, set(case.stamps[node]) - set(case.truth[node]))
        c = by_node[node]
        assert c.received == len(stamps), (node, c.received, len(stamps), c.valid)
        assert c.interval_s == 60.0 and c.expected == 1440
        # Before the gateway started and after it stopped the day has no samples; in between, any stretch of
        # more than three intervals (a busy host can make the gateway miss samples for good) is listed too.
        inner = [(a, b) for a, b in pairwise(stamps) if b - a > 180.0]
        expected = [(case.summary.start, stamps[0]), *inner, (stamps[-1], case.summary.end)]
        assert [(p.start, p.end) for p in c.silences] == expected, (node, c.silences, expected)


def test_pm_means_are_the_truths_to_the_register_resolution(case: Case) -> None:
    (dust,) = case.summary.dust
    samples = received(case, "dust-1")
    for channel, day in (("pm10", dust.pm10_day), ("pm25", dust.pm25_day)):
        true = [t.values[channel] for t in samples]
        assert day.count == len(true)
        assert day.value == pytest.approx(math.fsum(true) / len(true), abs=0.5 + 1e-9), channel
        assert not day.valid  # 2 h 30 of a day: far below 75 % of its samples
    hours = [b for b in dust.pm10_hours if b.valid]
    assert len(hours) >= 1
    for b in hours:
        true = [t.values["pm10"] for t in samples if b.start <= case.stamps["dust-1"][t.sequence or 0] < b.end]
        assert b.value == pytest.approx(math.fsum(true) / len(true), abs=0.5 + 1e-9)
    expected = [b.start for b in dust.pm10_hours if b.value is not None and b.value > dust.pm10_limit]
    assert [b.start for b in dust.exceedances] == expected


def test_noise_day_leq_by_energy_and_lmax_are_the_truths(case: Case) -> None:
    (noise,) = case.summary.noise
    samples = received(case, "noise-2")
    levels = [t.values["laeq_1s"] for t in samples]
    true_leq = 10 * math.log10(math.fsum(10 ** (v / 10) for v in levels) / len(levels))
    assert noise.day.leq == pytest.approx(true_leq, abs=0.05 + 1e-9)
    assert noise.day.count == len(levels) and noise.night.count == 0  # 13:00-15:30 is all GB 12523 day
    true_max = max(max(t.values["lamax_1s"], t.values["laeq_1s"]) for t in samples)
    assert noise.day.lmax == pytest.approx(true_max, abs=0.05 + 1e-9)
    assert noise.day.over == (true_leq > noise.day.limit)


def test_wind_mean_gust_direction_and_crane_stops_are_the_truths(case: Case) -> None:
    by_node = {w.node: w for w in case.summary.wind}
    for node in ("wind-mast", "wind-crane"):
        wind = by_node[node]
        samples = received(case, node)
        speeds = [t.values["wind_speed"] for t in samples]
        assert wind.mean.value == pytest.approx(math.fsum(speeds) / len(speeds), abs=0.005 + 1e-9)
        # One-minute samples: the gust is the largest 3-s mean the anemometer reported.
        assert wind.gust == pytest.approx(max(t.values["wind_gust_3s"] for t in samples), abs=0.005 + 1e-9)
        calm = LimitsResolver().site.wind.calm_speed
        directions = [t.values["wind_dir"] for t in samples if t.values["wind_speed"] >= calm]
        difference = (wind.direction or 0.0) - circular_mean(directions)
        assert abs((difference + 180.0) % 360.0 - 180.0) < 0.1
        stamp = case.stamps[node]
        for limit, periods in ((wind.crane_limit, wind.crane_stops), (wind.lifting_limit, wind.lifting_stops)):
            # The rule replayed on the truth's gusts, at the truth's own times; then mapped to the stored samples.
            at = {t.time: t.sequence for t in samples}
            events = hysteresis_events([(t.time, t.values["wind_gust_3s"]) for t in samples], limit, 1.0, 600.0)
            assert events, (node, limit)  # the typhoon's onset crosses both limits at both heights
            starts = [stamp[at[t] or 0] for state, t, _ in events if state == "raised"]
            ends = [stamp[at[t] or 0] for state, t, _ in events if state == "cleared"]
            assert [p.start for p in periods] == starts, (node, limit)
            assert [p.end for p in periods if p.end is not None] == ends, (node, limit)


def test_the_gateways_crane_alarm_and_the_reports_crane_stop_agree(case: Case) -> None:
    """Two routes to one answer: the gateway's alarm stage live, the report from the stored readings."""
    for wind in case.summary.wind:
        raised = [a.start for a in case.summary.alarms if a.alarm == "crane_wind" and a.node == wind.node]
        assert raised == [p.start for p in wind.crane_stops], wind.node


def test_the_report_of_the_run_renders(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["report", "--site", "typhoon", "--date", DAY.isoformat(), "--from-store", str(case.store),
                   "--out", str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    pdf = tmp_path / "typhoon-2025-09-23.pdf"
    pages = render_pages(pdf, tmp_path)
    assert pages and all(ink(Image.open(p)) > 0.01 for p in pages)
    text = pdf_text(pdf)
    assert "wind-crane" in text and "塔吊停止作业" in text


def test_the_bureaus_influxdb_gives_the_same_report_as_the_store(case: Case) -> None:
    """The gateway's influxdb sink wrote the run to InfluxDB 1.6.7; read back over InfluxQL, the same numbers."""
    limits = LimitsResolver.from_config({"sampling": {"interval_s": 60.0}})
    start, end = day_bounds(DAY, limits.site.time.tz_offset_s)
    records = InfluxSource(case.influx_url, case.database, "typhoon").fetch(start, end)
    other = summarize("typhoon", DAY, records, limits)
    mine = case.summary
    assert other.readings == mine.readings > 0
    ((a,), (b,)) = (mine.dust, other.dust)
    assert (b.pm10_day.value, b.pm10_day.count) == pytest.approx((a.pm10_day.value, a.pm10_day.count))
    ((a_noise,), (b_noise,)) = (mine.noise, other.noise)
    assert b_noise.day.leq == pytest.approx(a_noise.day.leq) and b_noise.day.lmax == a_noise.day.lmax
    for x, y in zip(mine.wind, other.wind, strict=True):
        assert (y.node, y.gust, y.mean.count) == (x.node, x.gust, x.mean.count)
        assert [p.start for p in y.crane_stops] == pytest.approx([p.start for p in x.crane_stops], abs=1e-6)
    assert [(e.alarm, e.node, e.severity) for e in other.alarms] == [(e.alarm, e.node, e.severity) for e in mine.alarms]
    assert [e.start for e in other.alarms] == pytest.approx([e.start for e in mine.alarms], abs=1e-6)
    assert [(c.node, c.received, c.expected) for c in other.completeness] == [
        (c.node, c.received, c.expected) for c in mine.completeness
    ]
    # Another site's name finds nothing: the site tag selects.
    assert not InfluxSource(case.influx_url, case.database, "elsewhere").fetch(start, end).readings


def test_the_report_command_reads_influxdb(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["report", "--site", "typhoon", "--date", DAY.isoformat(), "--influx-url", case.influx_url,
                   "--influx-db", case.database, "--out", str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    assert "InfluxDB" in pdf_text(tmp_path / "typhoon-2025-09-23.pdf")


def test_an_influxdb_error_is_named(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["report", "--site", "typhoon", "--date", DAY.isoformat(), "--influx-url", case.influx_url,
                   "--influx-db", "no_such_database", "--out", str(tmp_path)])
    assert status == 1
    assert "database not found" in capsys.readouterr().err
