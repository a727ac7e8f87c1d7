"""Alarm notifications as words and bytes: message text (zh / en), robot payloads, DingTalk's signature. Sans-IO.

The WeCom (企业微信) group robot takes ``{"msgtype": "text", "text": {"content": ...}}`` or
``{"msgtype": "markdown", "markdown": {"content": ...}}``; the DingTalk (钉钉) custom robot takes
``{"msgtype": "text", "text": {"content": ...}}`` or ``{"msgtype": "markdown", "markdown": {"title": ..., "text":
...}}``. Both answer HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``, and with another errcode when they refuse.

A DingTalk robot with "加签" (signing) enabled wants ``&timestamp=<ms>&sign=<s>`` on its URL, where
s = urlencode(base64(HMAC-SHA256(key=secret, msg="<ms>\\n<secret>"))); the timestamp must be within an hour
of DingTalk's clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from gateway.process.alarms import AlarmEvent, EventState, Severity
from gateway.profiles.kinds import alarm_texts


def alarm_names(language: str) -> dict[str, str]:
    """What each alarm means to a person on site, by alarm name: the kind profiles' [alarm_text] words
    (gateway/profiles/kinds/*.toml), so a kind installed from a folder brings its own."""
    return {name: text.phrase(language) for name, text in alarm_texts().items()}


SEVERITY_WORDS = {
    "zh": {Severity.PREWARNING: "预警", Severity.ALARM: "报警"},
    "en": {Severity.PREWARNING: "pre-warning", Severity.ALARM: "ALARM"},
}
STATE_WORDS = {
    "zh": {EventState.RAISED: "触发", EventState.CLEARED: "解除"},
    "en": {EventState.RAISED: "raised", EventState.CLEARED: "cleared"},
}
LABELS = {
    "zh": {"site": "工地", "node": "测点", "value": "测量值", "limit": "限值", "time": "时间", "detail": "说明"},
    "en": {"site": "site", "node": "node", "value": "value", "limit": "limit", "time": "time", "detail": "detail"},
}
SEVERITY_RANK = {Severity.PREWARNING: 0, Severity.ALARM: 1}

# WeCom refuses longer messages (text 2048 bytes, markdown 4096); DingTalk's limit is larger.
MAX_CONTENT_BYTES = 2000


@dataclass(frozen=True)
class Message:
    title: str  # one line: severity, state, what
    lines: tuple[tuple[str, str], ...]  # (label, value) rows

    def text(self) -> str:
        return _clip("\n".join([self.title, *(f"{label}: {value}" for label, value in self.lines)]))

    def markdown(self) -> str:
        return _clip("\n".join([f"### {self.title}", *(f"> **{label}**: {value}" for label, value in self.lines)]))


def _clip(text: str) -> str:
    data = text.encode()
    if len(data) <= MAX_CONTENT_BYTES:
        return text
    return data[: MAX_CONTENT_BYTES - 3].decode(errors="ignore") + "..."


def local_time(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def message(event: AlarmEvent, site: str, language: str = "zh") -> Message:
    """The words of one alarm event: the severity first (what a safety officer reads), then the facts."""
    words = LABELS[language]
    what = alarm_names(language).get(event.alarm, event.alarm)
    severity = SEVERITY_WORDS[language][event.severity]
    state = STATE_WORDS[language][event.state]
    title = f"【{severity}{state}】{what}" if language == "zh" else f"[{severity} {state}] {what}"
    return Message(title, (
        (words["site"], site),
        (words["node"], f"{event.node} / {event.channel}"),
        (words["value"], f"{event.value:g}"),
        (words["limit"], f"{event.limit:g}"),
        (words["time"], local_time(event.time)),
        (words["detail"], event.reason),
    ))


def wanted(event: AlarmEvent, min_severity: str, cleared: bool) -> bool:
    """Whether the configuration asks for this event at all."""
    if SEVERITY_RANK[event.severity] < SEVERITY_RANK[Severity(min_severity)]:
        return False
    return cleared or event.state is EventState.RAISED


def wecom_payload(msg: Message, msgtype: str) -> dict[str, Any]:
    if msgtype == "markdown":
        return {"msgtype": "markdown", "markdown": {"content": msg.markdown()}}
    return {"msgtype": "text", "text": {"content": msg.text()}}


def dingtalk_payload(msg: Message, msgtype: str) -> dict[str, Any]:
    if msgtype == "markdown":
        return {"msgtype": "markdown", "markdown": {"title": msg.title, "text": msg.markdown()}}
    return {"msgtype": "text", "text": {"content": msg.text()}}


def webhook_payload(event: AlarmEvent, site: str, msg: Message) -> dict[str, Any]:
    """The generic webhook's body: the event's fields as they are, plus the text a person reads."""
    return {
        "site": site, "alarm": event.alarm, "node": event.node, "channel": event.channel,
        "severity": str(event.severity), "state": str(event.state), "value": event.value, "limit": event.limit,
        "time": event.time, "reason": event.reason, "title": msg.title, "text": msg.text(),
    }


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature of a request (already URL-encoded, as the query wants it)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def with_query(url: str, **params: str) -> str:
    """`url` with these query parameters appended (values already encoded where they must be)."""
    extra = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{url}{'&' if '?' in url else '?'}{extra}"


def dingtalk_url(base: str, token: str, secret: str, timestamp_ms: int) -> str:
    params = {"access_token": urllib.parse.quote_plus(token)}
    if secret:
        params.update(timestamp=str(timestamp_ms), sign=dingtalk_sign(secret, timestamp_ms))
    return with_query(base, **params)


# Robot answers that retrying cannot fix: the configuration must change (stop, say why, keep the events).
FATAL_ERRCODES = {
    "wecom": {93000: "invalid webhook key", 93008: "the robot is not in the group any more"},
    "dingtalk": {300001: "invalid access_token", 400101: "access_token missing"},
}
# Not fatal although usually a configuration error: DingTalk's 310000 (signature, keyword or IP check failed) also
# answers a request whose timestamp is over an hour off, which a clock that syncs later mends.
# Robot answers that mean "too fast": both allow 20 messages a minute.
RATE_LIMIT_ERRCODES = {"wecom": {45009}, "dingtalk": {130101, 410100}}
