"""Alarm notifiers: message text, robot payloads, DingTalk's signature, retries and skips, against a local server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.deliver import notify_text as nt
from gateway.deliver.dispatch import Delivery
from gateway.deliver.notify import AlarmNotifier, NotifySettings, build_notifiers
from gateway.deliver.queue import Batch, DurableQueue, Queued
from gateway.deliver.sinks import SinkError, SinkFatalError
from gateway.ops.config import NotifyConfig
from gateway.process.alarms import AlarmEvent, EventState, Severity
from tests.support.http_recorder import HttpRecorder
from tests.support.waiting import wait_until

NOW = 1_780_000_000.0


def event(severity: Severity = Severity.ALARM, state: EventState = EventState.RAISED, t: float = NOW - 5,
          alarm: str = "crane_wind") -> AlarmEvent:
    return AlarmEvent(alarm, "wind-1", "wind_gust_3s", severity, state, 12.5, 9.0, t,
                      "gust 12.5 m/s >= 9 m/s (GB 55034-2022 3.4.7)")


def notifier(flavour: str, url: str, token: str = "", secret: str = "", **settings: object) -> AlarmNotifier:
    return AlarmNotifier(flavour, url, NotifySettings("工地A", **settings), token=token,  # type: ignore[arg-type]
                         secret=secret, wall=lambda: NOW)


# -- words and signatures (sans-IO) -----------------------------------------------------------


def test_the_chinese_message_says_severity_state_and_what_to_stop() -> None:
    msg = nt.message(event(), "工地A", "zh")
    assert msg.title == "【报警触发】大风：停止塔吊安装、拆卸、顶升"
    text = msg.text()
    assert "工地: 工地A" in text and "测点: wind-1 / wind_gust_3s" in text
    assert "测量值: 12.5" in text and "限值: 9" in text and nt.local_time(NOW - 5) in text
    cleared = nt.message(event(Severity.PREWARNING, EventState.CLEARED), "工地A", "zh")
    assert cleared.title.startswith("【预警解除】")
    english = nt.message(event(), "site A", "en").title
    assert english == "[ALARM raised] wind: stop crane erection, dismantling and jacking"


def test_an_unknown_alarm_name_is_shown_as_it_is() -> None:
    assert nt.message(event(alarm="my_alarm"), "s", "zh").title == "【报警触发】my_alarm"


def test_dingtalk_signature_matches_the_documented_recipe() -> None:
    # The recipe of DingTalk's documentation, computed independently of the module.
    secret, ts = "SEC0123456789abcdef", 1_700_000_000_123
    digest = hmac.new(secret.encode("utf-8"), f"{ts}\n{secret}".encode(), digestmod=hashlib.sha256).digest()
    expected = urllib.parse.quote_plus(base64.b64encode(digest))
    assert nt.dingtalk_sign(secret, ts) == expected
    url = nt.dingtalk_url("https://oapi.dingtalk.com/robot/send", "tok", secret, ts)
    assert url == f"https://oapi.dingtalk.com/robot/send?access_token=tok&timestamp={ts}&sign={expected}"
    assert nt.dingtalk_url("https://x/robot/send", "tok", "", ts) == "https://x/robot/send?access_token=tok"


@given(st.text(min_size=0, max_size=3000))
def test_messages_are_clipped_to_what_wecom_accepts(reason: str) -> None:
    e = AlarmEvent("dust", "dust-1", "pm10", Severity.ALARM, EventState.RAISED, 1.0, 1.0, NOW, reason)
    msg = nt.message(e, "s", "zh")
    for content in (msg.text(), msg.markdown()):
        assert len(content.encode()) <= nt.MAX_CONTENT_BYTES
        assert content.startswith(("【", "### 【"))


def test_min_severity_and_cleared_choose_what_is_sent() -> None:
    assert nt.wanted(event(Severity.PREWARNING), "prewarning", True)
    assert not nt.wanted(event(Severity.PREWARNING), "alarm", True)
    assert nt.wanted(event(Severity.ALARM), "alarm", True)
    assert not nt.wanted(event(state=EventState.CLEARED), "prewarning", False)


# -- against a local HTTP server ---------------------------------------------------------------


async def test_wecom_markdown_body_and_key() -> None:
    with HttpRecorder() as server:
        sink = notifier("wecom", server.url + "/cgi-bin/webhook/send", token="k-123")
        url, _, _ = sink.request(event(), NOW)
        assert url.endswith("/cgi-bin/webhook/send?key=k-123")
        assert await sink.send(_batch(event())) == 1
        (request,) = server.requests
        assert request.query == {"key": ["k-123"]}
        body = request.json()
        assert body["msgtype"] == "markdown"
        assert body["markdown"]["content"].startswith("### 【报警触发】大风：停止塔吊安装、拆卸、顶升")
        assert request.headers["content-type"] == "application/json; charset=utf-8"
        sink.close()


async def test_dingtalk_text_body_is_signed_and_the_signature_verifies() -> None:
    secret = "SECabc"
    with HttpRecorder() as server:
        sink = notifier("dingtalk", server.url + "/robot/send", token="tok", secret=secret, msgtype="text")
        assert await sink.send(_batch(event())) == 1
        (request,) = server.requests
        ts = request.query["timestamp"][0]
        assert ts == str(int(NOW * 1000))
        # What DingTalk does on its side: recompute the HMAC over "timestamp\nsecret" and compare.
        digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
        assert request.query["sign"] == [base64.b64encode(digest).decode()]  # parse_qs undid the URL encoding
        assert request.query["access_token"] == ["tok"]
        assert request.json() == {"msgtype": "text", "text": {"content": nt.message(event(), "工地A").text()}}
        sink.close()


async def test_generic_webhook_carries_the_event_and_a_bearer_token() -> None:
    with HttpRecorder(default=(204, b"")) as server:
        sink = notifier("webhook", server.url + "/hook", token="t0k", language="en")
        assert await sink.send(_batch(event())) == 1
        (request,) = server.requests
        assert request.headers["authorization"] == "Bearer t0k"
        body = request.json()
        assert body["alarm"] == "crane_wind" and body["severity"] == "alarm" and body["state"] == "raised"
        assert body["value"] == 12.5 and body["limit"] == 9.0 and body["site"] == "工地A"
        assert body["title"].startswith("[ALARM raised]")
        sink.close()


async def test_a_robot_errcode_is_a_refusal_and_never_counts_as_sent() -> None:
    answers = [(200, b'{"errcode": 45009, "errmsg": "api freq out of limit"}'),
               (200, b'{"errcode": 93000, "errmsg": "invalid webhook url, key=k-123"}')]
    with HttpRecorder(answers) as server:
        sink = notifier("wecom", server.url, token="k-123")
        with pytest.raises(SinkError) as limited:
            await sink.send(_batch(event()))
        assert limited.value.retry_after == 60.0 and not isinstance(limited.value, SinkFatalError)
        with pytest.raises(SinkFatalError) as fatal:
            await sink.send(_batch(event()))
        assert "k-123" not in str(fatal.value) and "***" in str(fatal.value)  # the key never reaches a log
        assert sink.stats.sent == 0 and sink.stats.refused == 2
        sink.close()


async def test_old_unwanted_and_partial_batches() -> None:
    # 1: sent; 2: a pre-warning below min_severity (skipped); 3: too old (skipped); 4: the server fails.
    with HttpRecorder([(200, b'{"errcode":0}'), (500, b"boom")]) as server:
        sink = notifier("dingtalk", server.url, token="t", min_severity="alarm", max_age_s=600.0)
        batch = _batch(event(), event(Severity.PREWARNING), event(t=NOW - 601), event(), event())
        assert await sink.send(batch) == 3  # the failed fourth and the fifth wait for the retry
        assert sink.stats.sent == 1 and sink.stats.skipped == {"not asked for": 1, "too old": 1}
        assert len(server.requests) == 2
        sink.close()


async def test_delivered_from_the_durable_queue_retried_after_a_500_without_blocking_other_sinks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with HttpRecorder([(500, b"busy"), (502, b"bad gateway")]) as server:
        sink = notifier("wecom", server.url, token="k")
        queue = DurableQueue(tmp_path / "q.sqlite3", [sink.name])
        try:
            from gateway.model import Quality, Reading

            reading = Reading("wind-1", "wind", "wind_speed", 3.0, "m/s", Quality.NORMAL, NOW - 6, 1)
            queue.append([reading, event(), reading])
            pauses: list[float] = []

            async def pause(stop: asyncio.Event, seconds: float) -> None:  # the backoff, recorded, not waited
                pauses.append(seconds)

            delivery = Delivery(queue, sink, lane=sink.lanes[0], min_backoff=1.0, max_backoff=8.0, pause=pause,
                                wall=lambda: NOW)
            stop = asyncio.Event()
            task = asyncio.create_task(delivery.run(stop))
            await asyncio.to_thread(wait_until, lambda: sink.stats.sent == 1, 30.0)
            stop.set()
            await asyncio.wait_for(task, 30)
            assert server.answers == [500, 502, 200]
            assert pauses[:2] == [1.0, 2.0]  # exponential backoff between the retries
            assert [r.json()["msgtype"] for r in server.requests] == ["markdown"] * 3  # only the alarm, thrice
            assert queue.pending(sink.name) == 0
            assert any("notify.wecom" in r.message and "500" in r.message for r in caplog.records)
        finally:
            queue.close()
            sink.close()


def test_the_notify_section_builds_the_notifiers_with_their_credentials(tmp_path: Path) -> None:
    (tmp_path / "wecom").write_text("wk\n")
    (tmp_path / "ding").write_text("dt\n")
    (tmp_path / "sec").write_text("SECx\n")
    config = NotifyConfig(wecom_key_file=str(tmp_path / "wecom"), dingtalk_token_file=str(tmp_path / "ding"),
                          dingtalk_secret_file=str(tmp_path / "sec"), webhook_url="http://127.0.0.1:1/h")
    built = build_notifiers(config, "s")
    assert [n.name for n in built] == ["notify.wecom", "notify.dingtalk", "notify.webhook"]
    assert built[1].request(event(), NOW)[0].startswith("https://oapi.dingtalk.com/robot/send?access_token=dt&")
    assert build_notifiers(NotifyConfig(), "s") == []
    for n in built:
        n.close()


def _batch(*events: AlarmEvent) -> Batch:
    return Batch("q", tuple(Queued(i + 1, "alarm", e) for i, e in enumerate(events)))


async def test_a_notifier_that_never_answers_holds_up_neither_the_pipeline_nor_the_store(tmp_path: Path) -> None:
    import socket
    import tomllib

    from gateway.ops.config import parse_config
    from gateway.ops.service import Gateway
    from simulator.site import BusSpec, NodeSpec, Site
    from tests.ops.service_process import gateway_toml

    # A server that accepts connections (the kernel does) and never reads or answers.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    extra = (f'[spray]\nenabled = false\n[limits.dust]\npm10_1h_limit = 1.0\n[[processing.alarm]]\ntype = "dust"\n'
             f'channels = ["pm10"]\n[notify]\ntimeout_s = 30.0\n'
             f'webhook_url = "http://127.0.0.1:{hole.getsockname()[1]}/hook"\n')
    text = gateway_toml(tmp_path, str(tmp_path / "buses" / "bus0"), extra, queue_extra="deliver_interval_s = 0.1")
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=3)
    stop = asyncio.Event()
    with site:
        gateway = Gateway(parse_config(tomllib.loads(text), "test.toml"))
        store, notifier = gateway.deliveries[0], gateway.deliveries[1]
        assert notifier.name == "notify.webhook"
        running = asyncio.create_task(gateway.run(stop))
        try:
            await _until(lambda: gateway.counts.get("AlarmEvent", 0) >= 1)
            raised_at = store.stats.delivered
            # The alarm's notification is stuck in its send; readings keep flowing into the store meanwhile.
            await _until(lambda: store.stats.delivered >= raised_at + 20)
            sink = notifier.sink
            assert isinstance(sink, AlarmNotifier)
            assert sink.stats.sent == 0 and notifier.stats.delivered == 0 and notifier.stats.failures == 0
        finally:
            stop.set()
            hole.close()  # resets the pending connection: the stuck send ends, the shutdown goes on
            await asyncio.wait_for(running, 120)
    # Not delivered, so not lost: the alarm waits in the queue for the next start.
    queue = DurableQueue(gateway.config.queue_path, ["sqlite", "notify.webhook"])
    try:
        assert [q.kind for q in queue.read("notify.webhook", 10, frozenset({"alarm"})).items] == ["alarm"]
    finally:
        queue.close()


async def _until(condition: object, timeout: float = 120.0) -> None:
    assert callable(condition)
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"not within {timeout} s"
        await asyncio.sleep(0.05)


async def test_an_alarm_too_old_to_notify_is_said_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """Audit: after a webhook outage longer than notify.max_age_s, the waiting alarms were confirmed without a
    message and only a status counter moved; the journal must say which alarm was not notified and why."""
    caplog.set_level(logging.INFO)
    with HttpRecorder([]) as server:
        sink = notifier("webhook", server.url, max_age_s=600.0)
        assert await sink.send(_batch(event(t=NOW - 3600.0), event(Severity.PREWARNING, EventState.CLEARED))) == 2
        sink.close()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, lines
    assert "notify.webhook" in lines[0] and "crane_wind" in lines[0] and "wind-1" in lines[0], lines
    assert "3600 s old" in lines[0] and "notify.max_age_s" in lines[0], lines
