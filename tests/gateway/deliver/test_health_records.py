"""Health reports as records: their queue body, their line protocol, their MQTT topic and id, the HJ 212 sink
skipping them, and the queue's disk quota dropping them before any reading (counted)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.deliver.hj212_session import Settings, Uplink
from gateway.deliver.line_protocol import HEALTH_MEASUREMENTS, RecordEncoder
from gateway.deliver.mqtt_topics import TopicTree, status_payload
from gateway.deliver.queue import DurableQueue
from gateway.deliver.records import (
    GatewayHealth,
    HealthReport,
    NodePollHealth,
    RecordError,
    SinkHealth,
    from_json,
    kind_of,
    record_node,
    record_time,
    to_json,
)
from gateway.model import Quality, Reading
from tests.gateway.deliver.test_quota_and_held import QUOTA, fill, kinds

T0 = 1_796_300_000.25

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=12)
finite = st.floats(0, 1e9, allow_nan=False, allow_infinity=False)
counts = st.integers(0, 2**53)
optional = st.none() | finite

gateways = st.builds(GatewayHealth, finite, counts, finite, counts, finite, counts, counts, counts, st.booleans())
sinks = st.builds(SinkHealth, names, counts, finite, counts, counts, st.booleans(), st.booleans())
nodes = st.builds(NodePollHealth, names, names, names, st.booleans(), counts, counts, optional, optional, optional)
reports = st.builds(HealthReport, st.floats(1e9, 4e9), gateways, st.lists(sinks, max_size=4).map(tuple),
                    st.lists(nodes, max_size=6).map(tuple))


def report(time: float = T0) -> HealthReport:
    return HealthReport(
        time,
        GatewayHealth(3600.5, 52_428_800, 12.25, 40, 95.5, 3, 1, 2, True),
        (SinkHealth("influxdb", 40, 95.5, 1200, 7, False, False), SinkHealth("mqtt", 0, 0.0, 1240, 0, True, False)),
        (NodePollHealth("dust-1", "dust", "bus0", True, 3500, 12, 0.98, 21.5, 0.4),
         NodePollHealth("wind-1", "wind", "bus0", False, 0, 30, None, None, None)),
    )


@given(reports)
def test_a_health_report_survives_the_queue_body(r: HealthReport) -> None:
    assert kind_of(r) == "health"
    assert from_json("health", to_json(r)) == r


def test_a_health_report_is_about_the_gateway_at_its_time() -> None:
    r = report()
    assert (record_node(r), record_time(r)) == ("gateway", T0)


@pytest.mark.parametrize("body, problem", [
    ('{"time": 1}', "'gateway'"),
    ('{"time": 1, "gateway": {"uptime_s": 1}, "sinks": [], "nodes": []}', "rss_bytes"),
    (to_json(report()).replace('"clock_valid":true', '"clock_valid":"yes"'), "gateway.clock_valid"),
    (to_json(report()).replace('"sinks":[{', '"sinks":[7,{'), "health record"),
])
def test_a_broken_health_body_is_a_record_error_naming_what(body: str, problem: str) -> None:
    with pytest.raises(RecordError, match="health record") as error:
        from_json("health", body)
    assert problem in str(error.value)


def test_line_protocol_gives_one_point_per_measurement_part_at_the_report_time() -> None:
    lines = RecordEncoder("zs-1", "gw-1").health_lines(report())
    stamp = str(round(T0 * 1_000_000) * 1000)
    assert lines == [
        "gateway_health,gateway=gw-1,site=zs-1 uptime_s=3600.5,rss_bytes=52428800i,cpu_s=12.25,queue_depth=40i,"
        "queue_oldest_age_s=95.5,dropped_total=3i,nodes_online=1i,nodes_total=2i,clock_valid=true " + stamp,
        "sink_health,gateway=gw-1,sink=influxdb,site=zs-1 backlog=40i,oldest_age_s=95.5,delivered_total=1200i,"
        "failed_total=7i,connected=false,fatal=false " + stamp,
        "sink_health,gateway=gw-1,sink=mqtt,site=zs-1 backlog=0i,oldest_age_s=0.0,delivered_total=1240i,"
        "failed_total=0i,connected=true,fatal=false " + stamp,
        "node_health,bus=bus0,gateway=gw-1,kind=dust,node=dust-1,site=zs-1 online=true,polls_ok_total=3500i,"
        "polls_failed_total=12i,success_rate=0.98,latency_ms=21.5,last_seen_age_s=0.4 " + stamp,
        # Unknown values are left out of the point (InfluxQL reads them as null), the counters stay.
        "node_health,bus=bus0,gateway=gw-1,kind=wind,node=wind-1,site=zs-1 online=false,polls_ok_total=0i,"
        "polls_failed_total=30i " + stamp,
    ]
    assert RecordEncoder("zs-1", "gw-1").line(report()) == "\n".join(lines)
    assert {line.split(",")[0] for line in lines} == set(HEALTH_MEASUREMENTS)


def test_every_health_field_keeps_its_type_whatever_the_value() -> None:
    # A field's type must never change between points (a type conflict is a 400 for good): 0.0 stays a float,
    # a count that happens to be whole stays an integer.
    zero = HealthReport(T0, GatewayHealth(0, 0, 0, 0, 0, 0, 0, 0, False), (SinkHealth("s", 0, 0, 0, 0, 0, 0),),  # type: ignore[arg-type]
                        (NodePollHealth("n", "k", "b", 0, 0, 0, 0, 0, 0),))  # type: ignore[arg-type]
    text = RecordEncoder("s", "g").line(zero)
    assert text is not None
    assert "uptime_s=0.0," in text and "rss_bytes=0i" in text and "clock_valid=false" in text
    assert "oldest_age_s=0.0," in text and "connected=false" in text and "fatal=false" in text
    assert "online=false" in text and "success_rate=0.0" in text and "polls_ok_total=0i" in text


def test_the_mqtt_topic_id_and_payload_of_a_health_report() -> None:
    tree = TopicTree("sitewatch", "site-a", "gw-1")
    r = report()
    assert tree.topic(r) == "sitewatch/site-a/gw-1/health" == tree.health
    assert tree.owns(tree.topic(r))
    assert tree.message_id(r) == f"site-a/gw-1/health/{T0!r}"
    assert tree.message_id(report(T0 + 60)) != tree.message_id(r)
    body = json.loads(tree.payload(r))
    assert body["id"] == tree.message_id(r) and body["kind"] == "health"
    assert from_json("health", json.dumps(body["record"])) == r
    status = json.loads(status_payload(tree, "online", T0 + 1, "health", r))
    assert status["state"] == "online" and status["health"] == body["record"]
    assert "health" not in json.loads(status_payload(tree, "offline", T0, "stopped"))


def test_the_hj212_uplink_skips_health_reports_and_counts_them() -> None:
    up = Uplink(Settings(mn="88888880000001"))
    assert up.records([report()], T0) == []
    assert up.counts["not_sent"] == 1


# -- the disk quota -------------------------------------------------------------------------


def health_reports(queue: DurableQueue, n: int, first: int = 0) -> None:
    for i in range(first, first + n):
        queue.append([report(T0 + 60 * i)])


def test_the_quota_drops_undelivered_health_reports_before_any_undelivered_reading(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store", "cloud"], max_bytes=QUOTA)
    health_reports(queue, 200)  # the gateway's own reports, some 270 KiB
    fill(queue, 40)
    assert kinds(queue)["health"] == 200 and queue.stats.quota_dropped_health == 0  # within the quota
    queue.confirm("store", queue.last_id())  # the cloud sink is down: nothing is delivered to every sink
    fill(queue, 60, first=40)  # past the quota
    assert queue.used_bytes() <= QUOTA
    assert queue.stats.quota_dropped_health > 0
    assert queue.stats.quota_dropped == 0, "a reading went while health reports were left"
    assert kinds(queue).get("health", 0) == 200 - queue.stats.quota_dropped_health
    assert queue.dropped_total == 0  # dropped_total counts the site's data, not the gateway's reports
    # The oldest reports went first: what is left is the newest.
    left = [from_json("health", b) for (b,) in queue._db.execute("SELECT body FROM records WHERE kind = 'health'")]
    assert all(isinstance(r, HealthReport) and r.time > T0 + 60 * (200 - len(left) - 1) for r in left)
    queue.close()


def test_drops_since_install_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    queue = DurableQueue(path, ["store", "cloud"], max_bytes=QUOTA)
    fill(queue, 200)
    queue.confirm("store", queue.last_id())
    fill(queue, 800, first=200)
    dropped = queue.stats.quota_dropped
    assert dropped > 0 and queue.dropped_total == dropped
    queue.note_dropped(5)  # a bus's hold for a valid clock overflowed: saved with the next append
    queue.append([Reading("dust-1", "dust", "pm10", 1.0, "ug/m3", Quality.NORMAL, 2e9, 1)])
    queue.close()
    again = DurableQueue(path, ["store", "cloud"], max_bytes=QUOTA)
    assert again.stats.quota_dropped == 0  # this run's counter
    assert again.dropped_total == dropped + 5
    again.close()



def test_backlog_figures_agree_with_each_cursor_whatever_their_order(tmp_path: Path) -> None:
    wall = [1000.0]
    sinks = ["store", "cloud", "mqtt.alarms", "mqtt", "hj212"]
    queue = DurableQueue(tmp_path / "q.sqlite3", sinks, wall=lambda: wall[0])
    assert queue.backlogs() == ((0, None), {s: (0, None) for s in sinks})
    rng = random.Random(7)
    for step in range(12):
        wall[0] += 10
        queue.append([Reading("dust-1", "dust", "pm10", 1.0, "ug/m3", Quality.NORMAL, 2e9 + i, i + 1)
                      for i in range(rng.randint(1, 20))])
        for sink in rng.sample(sinks, 2):
            queue.confirm(sink, rng.randint(queue.cursor(sink), queue.last_id()))
        if step == 6:
            queue.prune(0.0, now=wall[0] + 1)  # ids no longer contiguous: counts are of rows, not of id ranges
        undelivered, per_sink = queue.backlogs()
        added = dict(queue._db.execute("SELECT id, added FROM records").fetchall())
        for sink in sinks:
            position = queue.cursor(sink)
            after = [added[i] for i in sorted(added) if i > position]
            assert per_sink[sink] == (queue.pending(sink), after[0] if after else None), (step, sink)
        lowest = min(queue.cursor(s) for s in sinks)
        assert undelivered == per_sink[next(s for s in sinks if queue.cursor(s) == lowest)]
    queue.close()
