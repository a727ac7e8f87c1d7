"""A new sitewatch kind added in a folder outside the tree: one profile (TOML + firmware data module) and one adapter.

The folder is written by the test (a deep pit's water level: a 4-20 mA submersible transducer), installed
with ``install_kinds``, and from then on every room reads it like a shipped kind: the board boots its adapter
from node.json, the firmware build ships it, the register-map document describes it, the simulator runs a
firmware node of it on its generic walk model, and the gateway polls it, decodes, aggregates it with the
windows its profile declares and raises the alarm its profile declares at its default limit. No file of the
tree is changed, and none names the kind.

Installing a kind changes process-wide registries (the register map, stage registries, limits defaults), so the
end-to-end part runs in a fresh interpreter and reports what it saw as JSON.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]

KIND_MODULE = '''# A deep pit's water level: the node's tables (plain MicroPython data).
U16 = 0

CODE = 201
NAME = "water_level"
ADAPTER = "firmware.water_level_sensor"
MEASUREMENTS = (("level", 16, U16, 1000, "m"),)
HOLDING = (("sensor_span", 16, U16, 100, "m", 100, 10000, 1000),)
COILS = ()
AUX_CHANNELS = ()
'''

ADAPTER = '''# A 4-20 mA submersible pressure transducer across a 165 ohm shunt on an ADC pin.
from firmware import regmap

SHUNT_OHM = 165


class WaterLevelSensor:
    def __init__(self, adc):
        self.adc = adc

    def read(self, bank, now_ms):
        milliamps = self.adc.read_uv() / SHUNT_OHM / 1000
        if milliamps < 3.5:  # an open loop: the cable is cut
            return regmap.STATUS_ABSENT
        bank.set_input("level", (milliamps - 4.0) / 16.0 * bank.get_holding("sensor_span"))
        return regmap.STATUS_OK


def make_sensor(settings, io):
    return WaterLevelSensor(io.adc(settings.get("adc", 35)))
'''

PROFILE = '''kind = "water_level"
description = "deep-pit water level: a 4-20 mA submersible transducer"

[registers]
level = "water depth above the transducer"
sensor_span = "depth at 20 mA (the transducer's range)"

[ranges]
level = [0.0, 10.0]

[stages]
mean_channels = ["level"]
mean_windows = ["5s", "1h"]

[[alarm]]
name = "pit_water_high"
channels = ["level_5s_mean"]
alarm = 2.0
prewarning = 1.5
margin = 0.1
unit = "m"
description = "pit water above the pump start level"
source = "project choice (test kind)"

[label]
zh = "基坑水位"
en = "pit water level"

[alarm_text.pit_water_high]
zh = "基坑水位超过水泵启动水位"
en = "pit water above the pump start level"
short = "基坑水位高 pit water high"

[firmware]
sensor = { module = "firmware.water_level_sensor", adc = 35 }

[simulator]
model = "walk"

[simulator.channels.level]
mean = 2.6  # a flooding pit: above the alarm limit
low = 0.0
high = 10.0
diurnal = 0.05
step = 0.001

[doc]
unit_id = 120
write = { register = "sensor_span", value = 5.0, why = "a 0-5 m transducer" }
'''

UNIT = 3
# The same kind with HJ 212 codes in its profile. x01001 is the test's own code (HJ 212 names no water level
# factor for sites): what matters is that the uplink sends what the profile says.
HJ212_TABLE = '\n[hj212]\nrealtime = { level = "x01001" }\n'


def write_kind(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "water_level.toml").write_text(PROFILE)
    (folder / "kind_water_level.py").write_text(KIND_MODULE)
    (folder / "water_level_sensor.py").write_text(ADAPTER)
    return folder


def board_level(work: Path) -> dict[str, Any]:
    """Boot the kind as flashed (main.assemble with the build's node.json) on fake peripherals."""
    from firmware import fakes, main
    from gateway import firmware_build

    io = fakes.FakeIO()
    clock = io.clock()
    config = firmware_build.node_config("water_level", UNIT)
    (work / "cfg").mkdir()
    board = main.assemble(config, str(work / "cfg"), clock, io)
    io.adc(35).uv = round(12.0e-3 * 165 * 1e6)  # 12 mA: half the 10 m span
    for _ in range(300):
        clock.advance_ms(10)
        board.step()
    (built,) = firmware_build.build(work / "build", ["water_level"])  # mpy-cross compiles the folder's modules
    return {
        "sensor": type(board.node.sensor).__name__,
        "level": board.node.bank.get_input("level"),
        "modules": firmware_build.kind_modules("water_level"),
        "shipped": sorted(p.name for p in (built / "firmware").iterdir()),
        "node_json": json.loads((built / "node.json").read_text()),
    }


async def gateway_run(work: Path) -> dict[str, Any]:
    from gateway.deliver.sqlite_store import SqliteStore
    from gateway.ops import live_state
    from gateway.ops.config import parse_config
    from gateway.ops.service import Gateway
    from simulator.site import BusSpec, NodeSpec, Site

    store_path = work / "store.sqlite3"
    with Site((BusSpec("bus0", (NodeSpec("water_level", UNIT),)),), work / "buses", seed=4) as site:
        text = f"""
[store]
path = "{store_path}"
[clock]
require_sync = "never"
[queue]
deliver_interval_s = 0.2
[processing]
tick_s = 0.2
late_s = 0.5
[limits.sampling]
validity_fraction = 0.5
[[bus]]
port = "{site.paths['bus0']}"
[[bus.node]]
name = "pit-east"
kind = "water_level"
unit_id = {UNIT}
interval = 0.5
"""
        config = parse_config(tomllib.loads(text), "gateway.toml")
        stop = asyncio.Event()
        gateway = Gateway(config)
        task = asyncio.create_task(gateway.run(stop))

        def alarmed() -> bool:
            """The alarm raised and five samples stored (a valid 5-s mean needs only three)."""
            store = SqliteStore(store_path)
            try:
                raised = store.query("SELECT 1 FROM alarms WHERE alarm = 'pit_water_high' AND severity = 'alarm'")
                samples = store.query("SELECT COUNT(*) FROM readings WHERE channel = 'level'")
                return bool(raised) and int(str(samples[0][0])) >= 5
            finally:
                store.close()

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90.0
        try:
            while not alarmed():
                if loop.time() > deadline or task.done():
                    raise AssertionError(f"no pit_water_high alarm in the store: {gateway.status()}")
                await asyncio.sleep(0.2)
            state = await live_state.collect(gateway, 0.0)  # what the status page and `sitewatch status` show
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        truth = {seq: values["level"] for seq, values in site.node("bus0", UNIT).node.sensor.truth.items() if values}
    store = SqliteStore(store_path)
    try:
        readings = [(r.sequence, r.value, r.unit, r.quality.value, r.kind) for r in store.readings(node="pit-east")
                    if r.channel == "level" and r.sequence > 0]
        means = store.query("SELECT channel, value, valid, unit FROM aggregates WHERE node = 'pit-east'")
        alarms = store.query("SELECT alarm, channel, severity, state, value, \"limit\" FROM alarms")
    finally:
        store.close()
    (node,) = [n for n in state["nodes"] if n["name"] == "pit-east"]
    return {"readings": readings, "truth": {str(k): v for k, v in truth.items()}, "means": means, "alarms": alarms,
            "aggregators": [s.type for s in config.processing.aggregator], "status_node": node,
            "store": str(store_path)}


def words_and_uplink(folder: Path, work: Path, store_path: Path) -> dict[str, Any]:
    """The kind on the status page, in a notification, in the daily report and in HJ 212 (from its profile)."""
    from datetime import datetime, timedelta, timezone

    from gateway.deliver import notify_text
    from gateway.deliver.hj212_session import FactorTable, Settings, Uplink
    from gateway.deliver.sqlite_store import SqliteStore
    from gateway.model import Quality
    from gateway.ops.cli import main
    from gateway.ops.page_charts import page_charts
    from gateway.ops.recent import RecentReadings
    from gateway.ops.status_page import page
    from gateway.process.aggregate import Aggregate
    from gateway.process.alarms import AlarmEvent, EventState, Severity
    from gateway.process.limits import LimitsResolver
    from gateway.profiles.kinds import load_kind_profile
    from tests.report.pages import pdf_text

    out: dict[str, Any] = {}
    html = page()
    out["page"] = {"label": "基坑水位" in html and "pit water level" in html,
                   "alarm": "基坑水位超过水泵启动水位" in html}
    event = AlarmEvent("pit_water_high", "pit-east", "level_5s_mean", Severity.ALARM, EventState.RAISED, 2.6, 2.0,
                       1.7e9, "level_5s_mean 2.6 m >= 2 m")
    out["notify"] = [notify_text.message(event, "工地", language).title for language in ("zh", "en")]

    store = SqliteStore(store_path)
    try:
        readings = [r for r in store.readings(node="pit-east") if r.channel == "level"]
    finally:
        store.close()
    recent = RecentReadings()
    recent.update(readings)
    charts = page_charts(recent, LimitsResolver().for_node, readings[-1].timestamp, "zh")
    out["charts"] = [(c["id"], "基坑水位 pit-east" in c["svg"]) for c in charts]
    day = datetime.fromtimestamp(readings[0].timestamp, timezone(timedelta(hours=8))).date()  # the site's day
    status = main(["report", "--site", "pit", "--date", day.isoformat(), "--from-store", str(store_path),
                   "--out", str(work / "report")])
    text = pdf_text(work / "report" / f"pit-{day.isoformat()}.pdf")
    out["report"] = {"status": status, "title": "基坑水位 pit water level" in text, "node": "pit-east" in text,
                     "alarm": "基坑水位高 pit water high" in text,
                     "day_mean": [line for line in text.splitlines() if "pit-east" in line and " m" in line]}

    # HJ 212 from the installed profile, which declares no code: refused, counted and said.
    refused = Uplink(Settings(mn="MN1"))
    sent = refused.records(readings, readings[-1].timestamp + 3600)
    out["hj212_refused"] = {"packets": len(sent) + len(refused.flush_realtime(readings[-1].timestamp + 3600)),
                            "counts": dict(refused.counts)}
    # The same kind with codes in its profile: its readings and aggregates go out under them.
    variant = folder.parent / "with-codes"
    variant.mkdir()
    for part in folder.iterdir():
        (variant / part.name).write_text(part.read_text() + (HJ212_TABLE if part.suffix == ".toml" else ""))
    profile = load_kind_profile(variant / "water_level.toml")
    uplink = Uplink(Settings(mn="MN1"), factors=FactorTable.of([profile]))
    t = readings[-1].timestamp
    minute = Aggregate("pit-east", "water_level", "level_1min_mean", "level", "mean", "1min", t - t % 60,
                       t - t % 60 + 60, 2.5, "m", 60, 60, True, Quality.NORMAL)
    packets = [*uplink.records([*readings, minute], t + 3600), *uplink.flush_realtime(t + 3600)]
    out["hj212"] = [p.encode().decode() for p in packets]
    return out


def run_in_fresh_process(folder: Path, work: Path) -> dict[str, Any]:
    """What the new kind does in every room; runs in the child interpreter."""
    from gateway import regmap_doc
    from gateway.profiles.kinds import install_kinds

    (profile,) = install_kinds([folder])
    out: dict[str, Any] = {"code": profile.code, "board": board_level(work)}
    out["doc"] = regmap_doc.render_markdown([profile.code])
    from gateway.profiles.quantities import KINDS, QUANTITY_UNITS

    out["vendor"] = {"kind": "water_level" in KINDS, "unit": QUANTITY_UNITS.get("level")}
    out.update(asyncio.run(gateway_run(work)))
    out["words"] = words_and_uplink(folder, work, Path(out["store"]))
    return out


def test_a_kind_added_as_one_profile_in_a_folder_is_polled_decoded_aggregated_alarmed_and_simulated(
    tmp_path: Path,
) -> None:
    folder = write_kind(tmp_path / "kinds")
    work = tmp_path / "work"
    work.mkdir()
    script = (
        "import json, sys\nfrom pathlib import Path\n"
        "from tests.gateway.profiles.test_new_kind import run_in_fresh_process\n"
        "print(json.dumps(run_in_fresh_process(Path(sys.argv[1]), Path(sys.argv[2]))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(folder), str(work)], cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    seen = json.loads(proc.stdout.splitlines()[-1])

    # The board: node.json from the profile boots the folder's adapter; 12 mA is half the 10 m span.
    board = seen["board"]
    assert board["sensor"] == "WaterLevelSensor"
    assert board["level"] == pytest.approx(5.0, abs=0.001)
    assert {"kind_water_level", "water_level_sensor"} <= set(board["modules"])
    assert not [m for m in board["modules"] if m.startswith("kind_") and m != "kind_water_level"]
    assert {"kind_water_level.mpy", "water_level_sensor.mpy", "regmap.mpy"} <= set(board["shipped"])
    assert board["node_json"]["sensor"] == {"module": "firmware.water_level_sensor", "adc": 35}

    # A vendor transmitter may supply it too: its quantity and kind are known to vendor profiles.
    assert seen["vendor"] == {"kind": True, "unit": "m"}

    # The register-map document describes it from the profile.
    doc = seen["doc"]
    assert f"`node_kind` = {seen['code']}" in doc and "water depth above the transducer" in doc
    assert "-a 120" in doc  # the profile's example unit id in the mbpoll lines

    # Polled and decoded: every stored level is the simulated truth of its sample, to the register's 1 mm.
    readings = seen["readings"]
    assert len(readings) >= 5
    for sequence, value, unit, quality, kind in readings:
        assert (unit, quality, kind) == ("m", "N", "water_level")
        assert math.isclose(value, seen["truth"][str(sequence)], abs_tol=0.0005 + 1e-9)

    # Aggregated by the stage selected from the profile, with its windows and statistics.
    assert "water_level" in seen["aggregators"]
    means = [(value, valid) for channel, value, valid, unit in seen["means"] if channel == "level_5s_mean"]
    assert means and all(unit == "m" for channel, _, _, unit in seen["means"] if channel.endswith(("_mean", "_max")))
    assert any(valid and 2.0 < value < 3.2 for value, valid in means), means

    # Alarmed from the profile's default limit (the walk sits around 2.6 m).
    raised = [a for a in seen["alarms"] if a[0] == "pit_water_high" and a[3] == "raised"]
    assert ("pit_water_high", "level_5s_mean", "alarm") in {tuple(a[:3]) for a in raised}
    assert all(a[5] in (1.5, 2.0) and a[4] >= a[5] for a in raised)

    # The status page names it and its alarm in both languages, from the profile; it has no spray buttons.
    words = seen["words"]
    assert seen["status_node"]["kind"] == "water_level" and seen["status_node"]["spray"] is False
    assert words["page"] == {"label": True, "alarm": True}
    assert words["charts"] == [["water_level-pit-east", True]]  # its level charted, titled with its label
    assert words["notify"] == ["【报警触发】基坑水位超过水泵启动水位",
                               "[ALARM raised] pit water above the pump start level"]

    # The daily report has a section for it, headed by its label, with the day's mean of its level.
    report = words["report"]
    assert report["status"] == 0 and report["title"] and report["node"] and report["alarm"], report
    stored = [value for _, value, _, _, _ in readings]
    assert report["day_mean"], report
    assert f"{sum(stored) / len(stored):.2f} m" in " ".join(report["day_mean"]), (report, stored)

    # HJ 212: without codes in its profile the kind is refused (counted, said in the log: docs/hj212.md) ...
    refused = words["hj212_refused"]
    assert refused["packets"] == 0
    assert refused["counts"]["kind_without_factors"] == refused["counts"]["not_sent"] == len(readings)
    # ... with codes in its profile, its real-time values and aggregates go out under them.
    packets = words["hj212"]
    assert any("CN=2011" in p and "x01001-Rtd=" in p and "x01001-Flag=N" in p for p in packets), packets
    assert any("CN=2051" in p and "x01001-Avg=2.500" in p for p in packets), packets


def test_no_file_of_the_tree_names_the_test_kind() -> None:
    """The claim 'no other file changed': nothing in firmware/, gateway/ or simulator/ knows the kind."""
    proc = subprocess.run(["git", "grep", "-l", "-i", "water_level", "--", "firmware", "gateway", "simulator"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.stdout == "", proc.stdout


def test_the_firmware_cli_flashes_a_folder_kind_named_by_kind_dir(tmp_path: Path) -> None:
    folder = write_kind(tmp_path / "kinds")
    command = [sys.executable, "-m", "gateway", "firmware", "flash", "--port", "/dev/ttyUSB0", "--kind", "water_level",
               "--unit-id", "3", "--build-dir", str(tmp_path / "build"), "--dry-run"]
    proc = subprocess.run([*command, "--kind-dir", str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    written = json.loads(proc.stdout.splitlines()[0].split(": ", 1)[1])
    assert (written["kind"], written["unit_id"], written["sensor"]["module"]) == (
        "water_level", 3, "firmware.water_level_sensor")
    # Without the folder the kind is unknown, as any misspelt one.
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "invalid choice: 'water_level'" in proc.stderr


SCENARIO = """name = "pit"
seed = 3
duration = "1h"
start = 2025-04-15T06:00:00+08:00
kind_dirs = ["kinds"]

[[buses]]
name = "pit"

[[buses.nodes]]
kind = "water_level"
unit_id = 4
params = { level = 0.5 }
"""


def scenario_in_fresh_process(path: Path, state: Path) -> dict[str, Any]:
    """A scenario naming the folder: its node is simulated, and the gateway config it prints knows the kind."""
    from gateway.ops.config import parse_config
    from gateway.ops.sim_gateway_config import gateway_config_text
    from simulator.scenario import load_scenario

    scenario = load_scenario(path)
    model = scenario.physics().model("pit", 4)
    levels = [model.step(float(t), 1.0)["level"] for t in range(1, 61)]
    text = gateway_config_text(scenario, {"pit": "/dev/null"}, state)
    config = parse_config(tomllib.loads(text), str(state / "gateway.toml"))
    return {"levels": levels, "nodes": [(n.name, n.kind) for bus in config.buses for n in bus.nodes],
            "kinds": "[kinds]" in text}


def test_a_scenario_names_its_kind_folder_and_hands_it_to_the_gateway_config(tmp_path: Path) -> None:
    write_kind(tmp_path / "kinds")
    (tmp_path / "pit.toml").write_text(SCENARIO)
    script = (
        "import json, sys\nfrom pathlib import Path\n"
        "from tests.gateway.profiles.test_new_kind import scenario_in_fresh_process\n"
        "print(json.dumps(scenario_in_fresh_process(Path(sys.argv[1]), Path(sys.argv[2]))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "pit.toml"), str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert seen["kinds"] and seen["nodes"] == [["water_level-4", "water_level"]]
    # The scenario's mean (0.5 m) replaces the profile's 2.6 m; the walk wanders a little around it.
    assert all(0.0 <= v <= 1.0 for v in seen["levels"]) and abs(sum(seen["levels"]) / 60 - 0.5) < 0.2
