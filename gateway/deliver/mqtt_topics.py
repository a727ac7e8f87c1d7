"""The MQTT topic tree, message ids and JSON payloads (sans-IO). docs/mqtt.md describes them for receivers.

Every topic of a gateway lies under ``<prefix>/<site>/<gateway>/``::

    status                              retained: online / offline (also the last will), with the latest health
    health                              the gateway's health report, every [health] interval_s
    reading/<node>/<channel>            one reading
    aggregate/<node>/<channel>          one window statistic (revisions share the topic)
    alarm/<node>/<alarm>                raised / cleared events
    event/<kind>/<node>                 actuation, outage, gap (and spray) records
    cmd                                 commands to the gateway (it subscribes)
    cmd/reply                           the gateway's replies

A node, channel or alarm name is one topic level: the characters MQTT gives
a meaning to (``/``, ``+``, ``#``) and ``%`` are percent-encoded there, so a
name can never reach outside the gateway's own subtree.

Message ids are derived from what a record *is*, not from where it sits in
the queue, so a record published again after a crash (or after a queue
file was rebuilt) carries the same id and a receiver can drop the copy:

========== ====================================================================
reading    ``<site>/<gateway>/reading/<node>/<channel>/<seq>/<ts>``
aggregate  ``<site>/<gateway>/aggregate/<node>/<channel>/<source>/<statistic>/<window>/<start>/r<revision>``
alarm      ``<site>/<gateway>/alarm/<alarm>/<node>/<channel>/<severity>/<state>/<time>``
actuation  ``<site>/<gateway>/actuation/<node>/<coil>/<time>/<attempt>``
outage     ``<site>/<gateway>/outage/<node>/<start>/<end>``
gap        ``<site>/<gateway>/gap/<node>/<first>/<last>/<start>``
spray      ``<site>/<gateway>/spray/<node>/<coil>/<time>/<on|off>``
health     ``<site>/<gateway>/health/<time>``
========== ====================================================================

Times in ids are the record's float seconds written with ``repr`` (exact).
A revised aggregate (same window, higher ``revision``) has a new id: a
receiver keeps the highest revision of a window.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from gateway.deliver.records import Actuation, HealthReport, Outage, Record, health_body, kind_of, to_json
from gateway.model import Gap, Reading
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent
from gateway.process.spray import SprayCommand

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SPECIAL = {"%": "%25", "/": "%2F", "+": "%2B", "#": "%23"}


class TopicError(ValueError):
    """A prefix, site or gateway that cannot be part of a topic."""


@functools.lru_cache(maxsize=4096)  # a site has a few hundred node and channel names; one per message otherwise
def level(text: str) -> str:
    """`text` as one topic level: /, +, # and % percent-encoded, never empty."""
    return "".join(_SPECIAL.get(ch, ch) for ch in text) or "%00"


@dataclass(frozen=True)
class TopicTree:
    prefix: str
    site: str
    gateway: str

    def __post_init__(self) -> None:
        for what, value in (("site", self.site), ("gateway", self.gateway)):
            if not _NAME.match(value):
                raise TopicError(f"mqtt {what} {value!r}: use 1-64 of A-Z a-z 0-9 _ . - (it is a topic level)")
        parts = self.prefix.split("/")
        if not self.prefix or any(not p or "+" in p or "#" in p for p in parts) or self.prefix.startswith("$"):
            raise TopicError(f"mqtt topic_prefix {self.prefix!r}: levels must be non-empty, without + or #, "
                             "and it must not start with $")

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.site}/{self.gateway}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def health(self) -> str:
        return f"{self.base}/health"

    @property
    def command(self) -> str:
        return f"{self.base}/cmd"

    @property
    def reply(self) -> str:
        return f"{self.base}/cmd/reply"

    def topic(self, record: Record) -> str:
        if isinstance(record, Reading):
            return f"{self.base}/reading/{level(record.node)}/{level(record.channel)}"
        if isinstance(record, Aggregate):
            return f"{self.base}/aggregate/{level(record.node)}/{level(record.channel)}"
        if isinstance(record, AlarmEvent):
            return f"{self.base}/alarm/{level(record.node)}/{level(record.alarm)}"
        if isinstance(record, HealthReport):
            return self.health
        return f"{self.base}/event/{kind_of(record)}/{level(record.node)}"

    def message_id(self, record: Record) -> str:
        head = f"{self.site}/{self.gateway}"
        r = record
        if isinstance(r, Reading):
            return f"{head}/reading/{r.node}/{r.channel}/{r.sequence}/{r.timestamp!r}"
        if isinstance(r, Aggregate):
            return (f"{head}/aggregate/{r.node}/{r.channel}/{r.source}/{r.statistic}/{r.window}/{r.start!r}"
                    f"/r{revision(r)}")
        if isinstance(r, AlarmEvent):
            return f"{head}/alarm/{r.alarm}/{r.node}/{r.channel}/{r.severity.value}/{r.state.value}/{r.time!r}"
        if isinstance(r, Actuation):
            return f"{head}/actuation/{r.node}/{r.coil}/{r.time!r}/{r.attempt}"
        if isinstance(r, Outage):
            return f"{head}/outage/{r.node}/{r.start!r}/{r.end!r}"
        if isinstance(r, Gap):
            return f"{head}/gap/{r.node}/{r.first_sequence}/{r.last_sequence}/{r.start!r}"
        if isinstance(r, SprayCommand):
            return f"{head}/spray/{r.node}/{r.coil}/{r.time!r}/{'on' if r.on else 'off'}"
        if isinstance(r, HealthReport):
            return f"{head}/health/{r.time!r}"
        raise TypeError(f"not a record: {record!r}")  # pragma: no cover - Record is closed

    def payload(self, record: Record) -> bytes:
        """``{"id", "kind", "site", "gateway", ["revision",] "record": {...}}``: the record as the queue stores it."""
        # The same text json.dumps of the head gives (tests/gateway/deliver/test_mqtt_payload.py checks it), built from
        # parts: one encoder call per message instead of a dict and a whole dumps (a backlog drain is CPU-bound).
        kind = kind_of(record)
        text = '{"id":' + _string(self.message_id(record)) + ',"kind":"' + kind + '",' + self._site_gateway
        if isinstance(record, Aggregate):
            text += ',"revision":' + str(revision(record))
        return (text + ',"record":' + to_json(record) + "}").encode("utf-8")

    @functools.cached_property
    def _site_gateway(self) -> str:
        return json.dumps({"site": self.site, "gateway": self.gateway}, separators=(",", ":"), ensure_ascii=False)[1:-1]

    def owns(self, topic: str) -> bool:
        """Whether `topic` lies in this gateway's subtree (the only topics it may publish)."""
        return topic == self.base or topic.startswith(self.base + "/")


_string = json.JSONEncoder(ensure_ascii=False).encode  # a str as a JSON string


def revision(aggregate: Aggregate) -> int:
    # Aggregate gains a `revision` (late samples revise closed windows); 0 until then.
    return int(getattr(aggregate, "revision", 0))


def status_payload(
    tree: TopicTree, state: str, time: float, reason: str, health: HealthReport | None = None
) -> bytes:
    """The retained status; `health`: the latest health report published (its body, as on ``<base>/health``)."""
    body: dict[str, Any] = {"state": state, "site": tree.site, "gateway": tree.gateway, "time": time,
                            "reason": reason}
    if health is not None:
        body["health"] = health_body(health)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
