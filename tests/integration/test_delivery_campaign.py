"""The delivery fault campaign: real services, a simulated site, and everything going wrong at once.

A site of three nodes (dust, noise, wind) runs SPEED times faster than real time; the gateway is a
process of its own on the site's clock (tests/support/sim_gateway.py) with four uplinks: InfluxDB
1.6.7 (v1 /write), VictoriaMetrics (v2 API), mosquitto (MQTT over TLS) and an HJ 212 platform
(the receiver of gateway/deliver/hj212_listen.py, in this process). During the two simulated hours
that are compared, InfluxDB is stopped for a while, mosquitto is stopped and started again, the
HJ 212 platform goes away and comes back on the same port, and the gateway is killed with SIGKILL
KILLS times at seeded random moments and started again a few real seconds later (the nodes'
history rings, 600 samples of 60 s, cover the gaps). Then the test counts, for every sample of the
simulator's ground truth in the window (node, channel, sample sequence):

* InfluxDB: exactly one `reading` point (no sequence twice, none missing), whose value is the true
  value as the node's register holds it; the same in VictoriaMetrics (`reading_seq` series);
* MQTT: at least one `reading` message, and exactly one message id per sample (deduplicable by id:
  an id that changed across a restart would count a sample twice);
* HJ 212: the platform's minute data (CN 2051). A 2051 packet carries each factor's Avg/Min/Max,
  not its sample count, so what is compared is this: the nodes sample once a minute, every minute
  of the window holds exactly one sample per node, and for every such minute the platform's last
  2051 for that DataTime carries that sample as its Avg (PM10 a34002, noise LA, wind speed a01007),
  to the packet's three decimals; no 2051 of the window is for a minute without a sample;
* the hourly means in InfluxDB (`pm10_1h_mean`, `noise_1h_leq`, `wind_1h_speed_mean`, latest
  revision) equal those of an undisturbed run: the mean (Leq by energy) of the window's true values
  as read, with the count of all 60 samples; so do the highest revision of each received over MQTT,
  and the platform's last hourly data (CN 2061) Avg, to its three decimals.

The processors that judge samples against their neighbours (Hampel spikes, stuck values) are left
out of the chain: their verdicts depend on the order late samples arrive in, which is a question
for them (docs/revisions.md), not for delivery; `range` stays.

The seed is printed (set CAMPAIGN_SEED to run one again); the counts are printed at the end
(pytest -s shows them; docs/fault-campaign.md has a run's output).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simulator.site import BusSpec, NodeSpec, Site
from simulator.truth import TruthRecord, read_truth
from tests.integration.support import leq
from tests.support.campaign import GatewayProcess, Platform, expected_reading, hj212_time
from tests.support.influx import InfluxServer, VictoriaServer
from tests.support.mosquitto import GATEWAY, GATEWAY_USER, OPERATOR_USER, PASSWORDS, PREFIX, SITE, Mosquitto

pytestmark = pytest.mark.slow

SPEED = 120.0  # simulated seconds per real second
# The fault plan's lengths, in simulated minutes (they were first tuned as real seconds at 60x): a
# faster site keeps the same plan in its own time, with shorter real outages.
PLAN_UNIT = 60.0
SAMPLE_S = 60.0  # the nodes' sample interval (simulated s)
HOUR = 3600.0
# A fixed simulated start, 11.5 minutes (5.75 real seconds for the gateway's first start) before a full
# hour: samples fall mid-minute, far from window edges.
FIRST_HOUR = 1_796_299_200.0  # 2026-12-03 12:00 UTC (20:00 at the site)
START = FIRST_HOUR - 690.0
HOURS = 2  # hours compared
WINDOW = (FIRST_HOUR, FIRST_HOUR + HOURS * HOUR)
LATE_S = 300.0  # simulated s a window of a silent node waits before it closes
KILLS = 3
# Records per delivery: small and prime, so that batches end at every kind of place, in the middle of a
# window's statistics too (the default 500 cuts one only in a backlog, after an outage).
QUEUE_BATCH = 37
MN = "44200020260001"
NODES = (("dust", 1), ("noise", 2), ("wind", 3))
CHANNELS = {
    "dust": ("pm25", "pm10", "pm1", "temperature", "humidity", "pressure"),
    "noise": ("laeq_1s", "lamax_1s", "lamin_1s"),
    "wind": ("wind_speed", "wind_dir", "wind_gust_3s"),
}
HJ212_FACTORS = {"dust": ("pm10", "a34002"), "noise": ("laeq_1s", "LA"), "wind": ("wind_speed", "a01007")}
HOURLY = {"dust": ("pm10", "pm10_1h_mean"), "noise": ("laeq_1s", "noise_1h_leq"), "wind": ("wind_speed",
                                                                                          "wind_1h_speed_mean")}
DRAIN_TIMEOUT = 300.0  # real s for the sinks to catch up after the window (a loaded machine)


def gateway_toml(tmp: Path, bus: str, influx: InfluxServer, database: str, victoria: VictoriaServer,
                 victoria_site: str, broker: Mosquitto, hj212_port: int) -> str:
    password = tmp / "mqtt-password"
    password.write_text(PASSWORDS[GATEWAY_USER] + "\n")
    password.chmod(0o600)
    nodes = "".join(
        f'[[bus.node]]\nname = "{kind}-{unit}"\nkind = "{kind}"\nunit_id = {unit}\ninterval = 0.2\n'
        for kind, unit in NODES
    )
    return f"""
[site]
name = "{SITE}"
[store]
enabled = false
[queue]
path = "{tmp / 'queue.sqlite3'}"
deliver_interval_s = 0.2
max_backoff_s = 2.0
batch = {QUEUE_BATCH}
[clock]
require_sync = "never"
[processing]
tick_s = 0.05
late_s = {LATE_S}
alarm = []
[[processing.processor]]
type = "range"
[[processing.aggregator]]
type = "pm"
channels = ["pm10"]
windows = ["1min", "1h"]
[[processing.aggregator]]
type = "noise"
windows = ["1min", "20min", "1h"]
[[processing.aggregator]]
type = "wind"
windows = ["1min", "1h"]
[limits.sampling]
interval_s = {SAMPLE_S}
[spray]
enabled = false
[[sink]]
type = "influxdb"
name = "influx"
api = "v1"
url = "{influx.url}"
database = "{database}"
site = "{SITE}"
gateway = "{GATEWAY}"
timeout_s = 3.0
[[sink]]
type = "influxdb"
name = "victoria"
api = "v2"
url = "{victoria.url}"
bucket = "sitewatch"
site = "{victoria_site}"
gateway = "{GATEWAY}"
[[sink]]
type = "mqtt"
host = "{broker.host}"
port = {broker.port}
gateway = "{GATEWAY}"
site = "{SITE}"
topic_prefix = "{PREFIX}"
ca_file = "{broker.ca}"
username = "{GATEWAY_USER}"
password_file = "{password}"
keepalive = 5
publish_timeout_s = 5.0
max_backoff_s = 2.0
[[sink]]
type = "hj212"
host = "127.0.0.1"
port = {hj212_port}
mn = "{MN}"
reply = true
reply_timeout = 3.0
connect_timeout = 3.0
[[bus]]
name = "bus0"
port = "{bus}"
baud = 19200
timeout = 1.0
max_backoff = 1.0
{nodes}"""


Plan = list[tuple[float, str, Callable[[], None]]]


def fault_plan(rng: random.Random, gateway: GatewayProcess, influx: InfluxServer, broker: Mosquitto,
               platform: Platform) -> Plan:
    """(simulated time, what, action), in time order: every fault inside the compared window."""
    plan: Plan = []

    def at(t: float, what: str, action: Callable[[], None]) -> None:
        plan.append((t, what, action))

    h0 = FIRST_HOUR
    # Outages of the gateway, as (kill, restart) pairs in simulated time, apart from each other:
    # * one kill just before the first hour ends, the gateway down until after that window's close
    #   (end + LATE_S): the restarted gateway rebuilds the window from the queue and the backfill
    #   brings the samples it missed, late;
    # * one kill anywhere, down 2-20 simulated minutes, and a second kill 0.5-3 minutes after that
    #   restart (while the gateway starts, rebuilds its windows and backfills), down 2-10 minutes;
    # * the rest (KILLS > 3) anywhere, down 2-20 minutes.
    boundary = rng.uniform(h0 + HOUR - 240, h0 + HOUR - 30)
    outages = [(boundary, h0 + HOUR + LATE_S + rng.uniform(1.0, 5.0) * PLAN_UNIT)]
    while len(outages) < KILLS:
        kill = rng.uniform(h0 + 300, h0 + HOURS * HOUR - 3600)
        pair = [(kill, kill + rng.uniform(2.0, 20.0) * PLAN_UNIT)]
        if len(outages) == 1 and KILLS >= 3:  # the first after the boundary one: killed again at once
            again = pair[0][1] + rng.uniform(0.5, 3.0) * PLAN_UNIT
            pair.append((again, again + rng.uniform(2.0, 10.0) * PLAN_UNIT))
        if all(b < k - 120 or a > r + 120 for a, b in pair for k, r in outages):
            outages += pair
    for kill, restart in sorted(outages):
        at(kill, "kill -9 gateway", gateway.kill9)
        at(restart, "start gateway", gateway.start)
    influx_down = rng.uniform(h0 + 600, h0 + 3000)
    at(influx_down, "stop influxd", influx.stop)
    at(influx_down + rng.uniform(20, 40) * PLAN_UNIT, "start influxd", influx.start)
    mqtt_down = rng.uniform(h0 + 1800, h0 + 5400)
    at(mqtt_down, "stop mosquitto", broker.stop)
    at(mqtt_down + rng.uniform(3, 15) * PLAN_UNIT, "start mosquitto", broker.start)
    hj_down = rng.uniform(h0 + 1200, h0 + 5400)
    at(hj_down, "drop HJ 212 platform", platform.drop)
    at(hj_down + rng.uniform(10, 30) * PLAN_UNIT, "platform back on its port", lambda: void(platform.start()))
    return sorted(plan, key=lambda step: step[0])


def void(_result: object) -> None:
    """An action's result is not wanted."""


# -- reading back ------------------------------------------------------------------------------


def truth_in_window(path: Path) -> list[TruthRecord]:
    return [r for r in read_truth(path) if WINDOW[0] <= r.time < WINDOW[1]]


Key = tuple[str, str, int]  # node, channel, sequence


def influx_readings(influx: InfluxServer, database: str) -> dict[Key, list[float | None]]:
    out: dict[Key, list[float | None]] = defaultdict(list)
    for row in influx.rows('SELECT "seq", "value" FROM "reading" GROUP BY "node", "channel"', database):
        out[(row["node"], row["channel"], int(row["seq"]))].append(row["value"])
    return out


def victoria_sequences(victoria: VictoriaServer, site: str) -> Counter[Key]:
    out: Counter[Key] = Counter()
    for series in victoria.export(f'{{__name__="reading_seq",site="{site}"}}'):
        labels = series["metric"]
        for value in series["values"]:
            out[(labels["node"], labels["channel"], int(value))] += 1
    return out


def mqtt_ids(messages: list[Any]) -> dict[Key, set[str]]:
    out: dict[Key, set[str]] = defaultdict(set)
    for message in messages:
        body = json.loads(message.payload)
        if body.get("kind") != "reading":
            continue
        record = body["record"]
        out[(record["node"], record["channel"], int(record["seq"]))].add(body["id"])
    return out


def hourly_aggregates(influx: InfluxServer, database: str) -> dict[tuple[str, str, float], dict[str, Any]]:
    rows = influx.rows('SELECT "value", "count", "expected", "revision" FROM "aggregate" WHERE "window" = \'1h\''
                       ' GROUP BY "node", "channel"', database)
    return {(r["node"], r["channel"], r["time"] / 1e9): r for r in rows}


def mqtt_hourly(messages: list[Any]) -> dict[tuple[str, str, float], tuple[int, float | None, int]]:
    """(node, channel, start) -> (revision, value, count) of the highest revision received of each 1-h window."""
    out: dict[tuple[str, str, float], tuple[int, float | None, int]] = {}
    for message in messages:
        body = json.loads(message.payload)
        record = body["record"]
        if body.get("kind") != "aggregate" or record["window"] != "1h":
            continue
        key = (record["node"], record["channel"], float(record["start"]))
        revision = int(record["revision"])
        if key not in out or revision >= out[key][0]:
            out[key] = (revision, record["value"], int(record["count"]))
    return out


def minute_data(platform: Platform, cn: str = "2051") -> dict[str, dict[str, float | None]]:
    """DataTime -> factor code -> Avg, from the last packet of this CN for each (DataTime, factor)."""
    out: dict[str, dict[str, float | None]] = defaultdict(dict)
    for packet in platform.packets():
        if packet.cn != cn or packet.data_time is None:
            continue
        for code, factor in packet.factors.items():
            out[packet.data_time][code] = factor.values.get("Avg")
    return out


# -- the test ----------------------------------------------------------------------------------


def test_every_sample_delivered_through_kills_and_outages(
    tmp_path: Path, own_influxd: InfluxServer, victoria: VictoriaServer, broker: Mosquitto
) -> None:
    seed = int(os.environ.get("CAMPAIGN_SEED", random.SystemRandom().randrange(1 << 32)))
    print(f"\ncampaign seed {seed} (CAMPAIGN_SEED={seed} runs it again)")
    rng = random.Random(seed)
    database = own_influxd.database()
    victoria_site = "campaign-" + uuid.uuid4().hex[:8]
    subscriber = broker.client(OPERATOR_USER, client_id=f"campaign-{victoria_site}", clean=False)
    subscriber.client.reconnect_delay_set(1, 2)
    subscriber.subscribe(f"{PREFIX}/{SITE}/{GATEWAY}/reading/#")
    subscriber.subscribe(f"{PREFIX}/{SITE}/{GATEWAY}/aggregate/#")
    messages: list[Any] = []
    platform = Platform()
    platform.start()
    truth = tmp_path / "truth.jsonl"
    site = Site((BusSpec("bus0", tuple(NodeSpec(k, u) for k, u in NODES), baud=19200),), tmp_path / "buses",
                seed=seed % 1000 + 1, speed=SPEED, start_time=START, truth=truth, lossless=True)
    log = tmp_path / "gateway.log"
    done: list[str] = []
    spare = GatewayProcess.warm(log)  # imported before the site's clock starts (5.75 real s to the window)
    spare.wait_ready()
    try:
        with site:
            for site_node in site.nodes:
                site_node.node.bank.set_holding_raw("sample_interval", round(SAMPLE_S * 1000))
            config = tmp_path / "gateway.toml"
            config.write_text(gateway_toml(tmp_path, site.paths["bus0"], own_influxd, database, victoria,
                                           victoria_site, broker, platform.port))
            gateway = GatewayProcess(site, config, log, spare)
            gateway.start()
            plan = fault_plan(rng, gateway, own_influxd, broker, platform)
            should_run = True
            end = WINDOW[1] + LATE_S + 120.0
            real_deadline = time.monotonic() + (end - site.clock.seconds()) / SPEED + 120.0
            while site.clock.seconds() < end:
                assert time.monotonic() < real_deadline, "the site's clock stalled"
                while plan and plan[0][0] <= site.clock.seconds():
                    moment, what, action = plan.pop(0)
                    action()
                    should_run = {"kill -9 gateway": False, "start gateway": True}.get(what, should_run)
                    done.append(f"{hj212_time(moment)[8:12]} local (+{(moment - FIRST_HOUR) / 60:5.1f} min): {what}")
                if should_run and not gateway.running:
                    raise AssertionError(f"the gateway exited on its own: {gateway.tail()}")
                messages.extend(subscriber.drain())
                time.sleep(0.05)
            assert not plan, plan

            expected = truth_in_window(truth)
            keys = {(f"{r.kind}-{r.unit_id}", ch, int(r.sequence or 0)): expected_reading(r.kind, ch, r.values[ch])
                    for r in expected for ch in CHANNELS[r.kind]}

            def delivered() -> bool:
                messages.extend(subscriber.drain())
                influx = influx_readings(own_influxd, database)
                ids = mqtt_ids(messages)
                minutes = minute_data(platform)
                hourly = hourly_aggregates(own_influxd, database)
                hours_sent = minute_data(platform, "2061")
                return (all(k in influx for k in keys) and all(k in ids for k in keys)
                        and all(hj212_time(h) in hours_sent for h in (WINDOW[0], WINDOW[0] + HOUR))
                        and all(hj212_time(r.time // 60 * 60) in minutes for r in expected)
                        and all((f"{kind}-{unit}", HOURLY[kind][1], h) in hourly
                                and hourly[(f"{kind}-{unit}", HOURLY[kind][1], h)]["count"] == HOUR / SAMPLE_S
                                for kind, unit in NODES for h in (WINDOW[0], WINDOW[0] + HOUR)))

            drain_started = time.monotonic()
            while not delivered():
                if time.monotonic() - drain_started > DRAIN_TIMEOUT:
                    break  # the comparisons below say what is missing
                time.sleep(1.0)
            drained_in = time.monotonic() - drain_started
            assert gateway.terminate() == 0, gateway.tail()
    finally:
        gateway_process = locals().get("gateway")
        if isinstance(gateway_process, GatewayProcess):
            gateway_process.ensure_stopped()
        spare.discard()  # (the first gateway's process when it started; else still waiting)
        subscriber.close()
        platform.close()

    # ---- counting -------------------------------------------------------------------------------
    # What the platform received, for a post-mortem of a failed run (the queue and the logs are there too).
    with (tmp_path / "platform.jsonl").open("w") as received:
        for packet in platform.packets():
            received.write(json.dumps(packet.as_dict()) + "\n")
    influx = influx_readings(own_influxd, database)
    in_victoria = victoria_sequences(victoria, victoria_site)
    ids = mqtt_ids(messages)
    minutes = minute_data(platform)
    hourly = hourly_aggregates(own_influxd, database)
    hourly_mqtt = mqtt_hourly(messages)
    hourly_hj212 = minute_data(platform, "2061")

    influx_missing = [k for k in keys if k not in influx]
    influx_twice = {k: v for k, v in influx.items() if k in keys and len(v) > 1}
    influx_wrong = {k: (influx[k], want) for k, want in keys.items()
                    if k in influx and any(v is None or abs(v - want) > 1e-9 * max(1.0, abs(want)) for v in influx[k])}
    victoria_missing = [k for k in keys if in_victoria[k] == 0]
    victoria_twice = [k for k in keys if in_victoria[k] > 1]
    mqtt_missing = [k for k in keys if k not in ids]
    mqtt_two_ids = {k: sorted(ids[k]) for k in keys if len(ids.get(k, ())) > 1}
    mqtt_messages = sum(1 for m in messages if b'"kind": "reading"' in m.payload or b'"kind":"reading"' in m.payload)

    minute_problems: list[str] = []
    sampled_minutes = set()
    for record in expected:
        minute = hj212_time(record.time // 60 * 60)
        sampled_minutes.add(minute)
        channel, code = HJ212_FACTORS[record.kind]
        want = expected_reading(record.kind, channel, record.values[channel])
        got = minutes.get(minute, {}).get(code)
        if got is None or abs(got - want) > 0.0005 + 1e-9:
            minute_problems.append(f"{minute} {code}: {got} (sample {want})")
    per_minute = Counter(hj212_time(r.time // 60 * 60) for r in expected)
    assert max(per_minute.values()) == len(NODES), "a minute with two samples of one node: the comparison is void"
    window_minutes = {hj212_time(WINDOW[0] + 60 * i) for i in range(int((WINDOW[1] - WINDOW[0]) // 60))}
    unsampled_sent = sorted(m for m in minutes if m in window_minutes and m not in sampled_minutes)

    hourly_problems: list[str] = []
    hourly_lines: list[str] = []
    for kind, unit in NODES:
        node = f"{kind}-{unit}"
        channel, aggregate = HOURLY[kind]
        for hour in (WINDOW[0], WINDOW[0] + HOUR):
            values = [expected_reading(kind, channel, r.values[channel]) for r in expected
                      if r.kind == kind and hour <= r.time < hour + HOUR]
            want = leq(values) if kind == "noise" else math.fsum(values) / len(values)
            row = hourly.get((node, aggregate, hour))
            got = None if row is None else row["value"]
            hourly_lines.append(f"  {aggregate:20} {hj212_time(hour)}: undisturbed {want:.6f} ({len(values)} samples),"
                                f" InfluxDB {got} (count {None if row is None else row['count']},"
                                f" revision {None if row is None else row['revision']})")
            close = got is not None and abs(got - want) <= 1e-9 * max(1.0, abs(want))
            if row is None or not close or row["count"] != len(values):
                hourly_problems.append(hourly_lines[-1])
            revision, mqtt_value, mqtt_count = hourly_mqtt.get((node, aggregate, hour), (-1, None, 0))
            if mqtt_value is None or abs(mqtt_value - want) > 1e-9 * max(1.0, abs(want)) or mqtt_count != len(values):
                hourly_problems.append(f"  MQTT {aggregate} {hj212_time(hour)}: {mqtt_value} (count {mqtt_count},"
                                       f" revision {revision}), undisturbed {want}")
            code = HJ212_FACTORS[kind][1]
            hj_value = hourly_hj212.get(hj212_time(hour), {}).get(code)
            if hj_value is None or abs(hj_value - want) > 0.0005 + 1e-9:
                hourly_problems.append(f"  HJ 212 2061 {code} {hj212_time(hour)}: {hj_value}, undisturbed {want}")

    per_channel = Counter((k[0], k[1]) for k in keys)
    report = [
        f"campaign seed {seed}: {len(expected)} samples of {len(NODES)} nodes, {len(keys)} channel values "
        f"in {hj212_time(WINDOW[0])}..{hj212_time(WINDOW[1])} (site time), speed {SPEED:g}x",
        "faults (simulated time):", *(f"  {line}" for line in done),
        f"gateway: {gateway.starts} starts, {gateway.kills} kill -9; HJ 212 platform dropped {platform.drops} time(s);"
        f" sinks caught up {drained_in:.1f} s after the window",
        "per channel: truth / InfluxDB points / VictoriaMetrics / MQTT distinct ids",
        *(f"  {node:8} {channel:13} {n:4} / {sum(len(influx.get(k, [])) for k in keys if k[:2] == (node, channel)):4}"
          f" / {sum(in_victoria[k] for k in keys if k[:2] == (node, channel)):4}"
          f" / {sum(len(ids.get(k, ())) for k in keys if k[:2] == (node, channel)):4}"
          for (node, channel), n in sorted(per_channel.items())),
        f"InfluxDB: {len(keys) - len(influx_missing)} of {len(keys)} present, {len(influx_twice)} twice,"
        f" {len(influx_wrong)} wrong value",
        f"VictoriaMetrics: {len(keys) - len(victoria_missing)} present, {len(victoria_twice)} twice",
        f"MQTT: {mqtt_messages} reading messages received, {len(keys) - len(mqtt_missing)} of {len(keys)} samples,"
        f" {len(mqtt_two_ids)} with more than one id",
        f"HJ 212: {len(sampled_minutes)} sampled minutes, {len(sampled_minutes) * len(NODES) - len(minute_problems)}"
        f" of {len(expected)} samples carried by the minute data, {len(unsampled_sent)} minutes sent without a sample;"
        f" receiver: {sum(1 for p in platform.packets() if p.cn == '2051')} packets 2051,"
        f" {dict(platform.counts())}, refused frames {platform.errors[:5]}",
        "hourly means (MQTT's highest revision and the platform's last 2061 Avg checked against the same):",
        *hourly_lines,
    ]
    print("\n".join(report))
    assert not influx_missing, influx_missing[:20]
    assert not influx_twice, list(influx_twice.items())[:20]
    assert not influx_wrong, list(influx_wrong.items())[:20]
    assert not victoria_missing and not victoria_twice, (victoria_missing[:20], victoria_twice[:20])
    assert not mqtt_missing, mqtt_missing[:20]
    assert not mqtt_two_ids, list(mqtt_two_ids.items())[:20]
    assert not minute_problems, minute_problems[:20]
    assert not unsampled_sent, unsampled_sent[:20]
    assert not hourly_problems, hourly_problems
    assert gateway.kills == KILLS and platform.drops >= 1
