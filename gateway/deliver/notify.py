"""Alarm notifiers: WeCom and DingTalk group robots and a generic JSON webhook, fed from the durable queue.

Each notifier is a sink (sinks.py) with one lane that reads alarm events only (``notify.wecom``,
``notify.dingtalk``, ``notify.webhook``: a cursor each in the queue). So a notification survives a restart
and a network outage, is retried with the dispatcher's backoff (dispatch.py, up to ``queue.max_backoff_s``;
a robot's rate limit waits a minute), and a robot that is down or slow delays nothing but itself: the
pipeline and the other sinks never wait for it.

Events the configuration does not ask for (below ``notify.min_severity``, clearances with ``notify.cleared =
false``) and events older than ``notify.max_age_s`` when their turn comes are confirmed without a message and
counted in ``stats.skipped``. A batch is sent one event per request, in order; a failure delivers the events
before it (their cursor moves) and the rest wait for the retry.

Secrets (the WeCom key, the DingTalk token and secret, the webhook's bearer token) come from credential files
(credentials.py) and are scrubbed from every error message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import urllib3

from gateway.deliver import notify_text as nt
from gateway.deliver.credentials import read_credential
from gateway.deliver.http_status import refusal
from gateway.deliver.queue import Batch
from gateway.deliver.sinks import Lane, SinkError, SinkFatalError
from gateway.process.alarms import AlarmEvent

log = logging.getLogger(__name__)

ALARM_KINDS = frozenset({"alarm"})
RATE_LIMIT_WAIT_S = 60.0  # both robots allow 20 messages a minute


@dataclass
class NotifyStats:
    sent: int = 0  # messages the endpoint accepted
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> events confirmed without a message
    refused: int = 0  # requests the endpoint answered with an error (retried, or fatal)


@dataclass(frozen=True)
class NotifySettings:
    site: str
    language: str = "zh"
    min_severity: str = "prewarning"
    cleared: bool = True
    max_age_s: float = 3600.0
    timeout_s: float = 10.0
    msgtype: str = "markdown"


class AlarmNotifier:
    """One notification endpoint as a sink: `flavour` is "wecom", "dingtalk" or "webhook"."""

    def __init__(
        self,
        flavour: str,
        url: str,
        settings: NotifySettings,
        *,
        token: str = "",
        secret: str = "",
        wall: Callable[[], float] = time.time,
    ) -> None:
        if flavour not in ("wecom", "dingtalk", "webhook"):
            raise ValueError(f"unknown notifier {flavour!r}")
        self.flavour = flavour
        self.name = f"notify.{flavour}"
        self.lanes = (Lane(self.name, kinds=ALARM_KINDS),)
        self.url = url
        self.settings = settings
        self._token = token
        self._secret = secret
        self.wall = wall
        self.stats = NotifyStats()
        self.pool = urllib3.PoolManager(num_pools=1, maxsize=1, retries=False,
                                        timeout=urllib3.Timeout(total=settings.timeout_s))

    # -- what to send --------------------------------------------------------------------
    def _skip_reason(self, event: AlarmEvent, now: float) -> str:
        s = self.settings
        if not nt.wanted(event, s.min_severity, s.cleared):
            return "not asked for"
        if now - event.time > s.max_age_s:
            return "too old"
        return ""

    def request(self, event: AlarmEvent, now: float) -> tuple[str, dict[str, str], bytes]:
        """The URL, headers and body of the notification of `event` (sent at wall time `now`)."""
        s = self.settings
        msg = nt.message(event, s.site, s.language)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.flavour == "wecom":
            url = nt.with_query(self.url, key=self._token)
            payload = nt.wecom_payload(msg, s.msgtype)
        elif self.flavour == "dingtalk":
            url = nt.dingtalk_url(self.url, self._token, self._secret, int(now * 1000))
            payload = nt.dingtalk_payload(msg, s.msgtype)
        else:
            url = self.url
            payload = nt.webhook_payload(event, s.site, msg)
            if self._token:
                headers["Authorization"] = f"Bearer {self._token}"
        return url, headers, json.dumps(payload, ensure_ascii=False).encode()

    # -- the sink ------------------------------------------------------------------------
    async def send(self, batch: Batch) -> int:
        done = 0
        for item in batch.items:
            event = item.record
            if isinstance(event, AlarmEvent):
                now = self.wall()
                reason = self._skip_reason(event, now)
                if reason:
                    self.stats.skipped[reason] = self.stats.skipped.get(reason, 0) + 1
                    if reason == "too old":  # an alarm nobody was told of (the endpoint was down): say so
                        log.warning("sink %s: %s %s of %s (%s) not notified: %.0f s old, older than "
                                    "notify.max_age_s (%g s)", self.name, event.alarm, event.state.value,
                                    event.node, event.channel, now - event.time, self.settings.max_age_s)
                else:
                    try:
                        await asyncio.to_thread(self._post, *self.request(event, now))
                    except SinkError:
                        if done:
                            return done  # the ones before it are delivered; this one is retried
                        raise
                    self.stats.sent += 1
            done += 1
        return done

    def _post(self, url: str, headers: dict[str, str], body: bytes) -> None:
        try:
            response = self.pool.request("POST", url, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as error:
            raise SinkError(f"sink {self.name}: {self._scrub(f'{type(error).__name__}: {error}')}") from None
        text = response.data.decode("utf-8", "replace")
        if response.status // 100 != 2:
            self.stats.refused += 1
            raise refusal(self.name, response.status, self._scrub(text), response.headers.get("Retry-After"),
                          self.wall())
        if self.flavour != "webhook":
            self._check_robot_answer(text)

    def _check_robot_answer(self, text: str) -> None:
        """The robots answer 200 with an errcode: 0 is delivered, anything else is a refusal."""
        try:
            answer: Any = json.loads(text)
            code = int(answer["errcode"])
            message = str(answer.get("errmsg", ""))
        except (ValueError, KeyError, TypeError):
            self.stats.refused += 1
            raise SinkError(f"sink {self.name}: not a robot's answer: {self._scrub(text)[:200]!r}") from None
        if code == 0:
            return
        self.stats.refused += 1
        detail = f"sink {self.name}: the robot refused the message: errcode {code}: {self._scrub(message)}"
        fatal = nt.FATAL_ERRCODES[self.flavour].get(code)
        if fatal is not None:
            raise SinkFatalError(f"{detail} ({fatal})")
        if code in nt.RATE_LIMIT_ERRCODES[self.flavour]:
            raise SinkError(f"{detail} (rate limit)", retry_after=RATE_LIMIT_WAIT_S)
        raise SinkError(detail)

    def _scrub(self, text: str) -> str:
        for secret in (self._token, self._secret):
            if secret:
                text = text.replace(secret, "***")
        return text

    def close(self) -> None:
        self.pool.clear()


def _credential(name: str, what: str) -> str:
    return read_credential(name, what).decode().strip() if name else ""


def build_notifiers(notify: Any, site: str) -> list[AlarmNotifier]:
    """The notifiers a ``[notify]`` section (gateway.ops.config.NotifyConfig) asks for, credentials read."""
    settings = NotifySettings(site, notify.language, notify.min_severity, notify.cleared, notify.max_age_s,
                              notify.timeout_s, notify.msgtype)
    out = []
    if notify.wecom_key_file:
        out.append(AlarmNotifier("wecom", notify.wecom_url, settings,
                                 token=_credential(notify.wecom_key_file, "notify.wecom_key_file")))
    if notify.dingtalk_token_file:
        out.append(AlarmNotifier(
            "dingtalk", notify.dingtalk_url, settings,
            token=_credential(notify.dingtalk_token_file, "notify.dingtalk_token_file"),
            secret=_credential(notify.dingtalk_secret_file, "notify.dingtalk_secret_file"),
        ))
    if notify.webhook_url:
        out.append(AlarmNotifier("webhook", notify.webhook_url, settings,
                                 token=_credential(notify.webhook_token_file, "notify.webhook_token_file")))
    return out
