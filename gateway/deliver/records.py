"""Every kind of record the pipeline produces, and their durable form (JSON) in the queue.

The pipeline's stages pass these along (gateway/pipeline.py), the durable
queue stores them (gateway/deliver/queue.py) and the sinks receive them
back, typed, in the order they were appended:

========== ============================================ =========================================
kind       record                                       made by
========== ============================================ =========================================
reading    gateway.model.Reading                        the bus pollers, then the processors
aggregate  gateway.process.aggregate.Aggregate          the aggregators, as their windows close
alarm      gateway.process.alarms.AlarmEvent            the alarm stage (raised / cleared)
spray      SprayCommand                                 the spray linkage (the pipeline's output;
                                                        the service writes the coil)
actuation  Actuation                                    the service: a command and what came of
                                                        writing it to the coil (this is what is
                                                        queued, with the command's reason)
outage     Outage                                       the bus owners (a node's values did not
                                                        arrive live: silent, or a frozen sample
                                                        sequence) or the service (the gateway)
gap        gateway.model.Gap                            the history backfill: samples lost for good
health     HealthReport                                 the service, every ``[health] interval_s``:
                                                        the gateway's, its sinks' and its nodes'
                                                        health (gateway/ops/health_report.py)
========== ============================================ =========================================

A gap says which samples are gone for good (the node's ring was overwritten,
the node rebooted before handing them over); an Outage says when a node's
values did not arrive live, whether or not a backfill fetched them later.

An aggregate's body carries its ``revision`` (docs/revisions.md); a body
without one (queued by an older gateway) reads as revision 0.

The JSON body of each kind is a flat object of the record's fields (enums by
value), so a queue file can be read with nothing but ``sqlite3`` and
``json``. A health report is the one nested body: ``{"time", "gateway": {...},
"sinks": [{...}], "nodes": [{...}]}``, each part flat.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.model import Gap, Quality, Reading
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent, EventState, Severity
from gateway.process.spray import SprayCommand, SprayMode


@dataclass(frozen=True, slots=True)
class Actuation:
    """A spray command and the result of writing it to the node's coil (what the queue logs)."""

    node: str  # the node whose coil was written
    coil: str
    on: bool
    time: float  # when the command was decided
    mode: SprayMode
    reason: str  # the command's reason, as the controller gave it
    value: float | None  # the PM10 mean behind the decision, if one was
    level: float  # the switch-on level in force
    result: str  # "ok", or what went wrong: "timeout", "exception 4", "no bus owns the node" ...
    attempt: int  # 1 for the command's first write; retries count up
    written: float  # wall time the write finished (or failed)

    @property
    def ok(self) -> bool:
        return self.result == "ok"

    @classmethod
    def of(cls, command: SprayCommand, result: str, attempt: int, written: float) -> Actuation:
        return cls(
            command.node, command.coil, command.on, command.time, command.mode, command.reason,
            command.value, command.level, result, attempt, written,
        )


@dataclass(frozen=True, slots=True)
class Outage:
    """A stretch of time a node (or, with node "gateway", the whole gateway) delivered no values.

    start: the node's last good answer before it fell silent, or its last new
    sample before its sequence froze (or the last record before the gateway
    stopped); end: its first answer again, or its first new sample (or when
    the gateway was up again). ``closed`` is False for an outage still open when the
    gateway stopped: its end is then the stop time, not a recovery.
    """

    node: str
    kind: str
    start: float
    end: float
    reason: str  # e.g. "B: timeout", "D: exception 4", "stale: sample sequence not advancing", "gateway not running"
    missed: int  # polls in it that brought no sample (0 for the gateway's own outage)
    closed: bool = True


GATEWAY_NODE = "gateway"


@dataclass(frozen=True, slots=True)
class GatewayHealth:
    """The gateway process and its queue (measurement ``gateway_health``, docs/influxdb-schema.md)."""

    uptime_s: float  # since this gateway process started
    rss_bytes: int  # resident memory
    cpu_s: float  # process CPU time (user + system) since it started
    queue_depth: int  # records not yet delivered to every sink (in memory ones included)
    queue_oldest_age_s: float  # age of the oldest of them (0 when none)
    dropped_total: int  # readings / aggregates dropped (quota, refused disk, held too long), since install
    nodes_online: int
    nodes_total: int
    clock_valid: bool


@dataclass(frozen=True, slots=True)
class SinkHealth:
    """One delivery lane of a sink (measurement ``sink_health``, tag ``sink``: its cursor name)."""

    sink: str
    backlog: int  # records after its cursor
    oldest_age_s: float  # age of the oldest of them (0 when none)
    delivered_total: int  # records it confirmed since the gateway started
    failed_total: int  # sends that failed since the gateway started
    connected: bool  # its connection is up (sinks without one: its last send did not fail)
    fatal: bool  # stopped for good (a bad token, a missing database) until the configuration is fixed


@dataclass(frozen=True, slots=True)
class NodePollHealth:
    """One node's polls (measurement ``node_health``, tags ``node``, ``kind``, ``bus``)."""

    node: str
    kind: str
    bus: str
    online: bool
    polls_ok_total: int  # polls that brought a usable sample, since the gateway started
    polls_failed_total: int
    success_rate: float | None  # polls_ok / polls over the report's interval; None: no poll in it
    latency_ms: float | None  # smoothed reply time; None before its first reply
    last_seen_age_s: float | None  # since its last good reply; None: never answered since the start


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The gateway's health at one moment (``time``: when it was measured, wall clock)."""

    time: float
    gateway: GatewayHealth
    sinks: tuple[SinkHealth, ...] = ()
    nodes: tuple[NodePollHealth, ...] = ()

    @property
    def node(self) -> str:
        return GATEWAY_NODE  # the queue's node column: the report is about the gateway


Record = Reading | Aggregate | AlarmEvent | SprayCommand | Actuation | Outage | Gap | HealthReport

KINDS: dict[type, str] = {
    Reading: "reading",
    Aggregate: "aggregate",
    AlarmEvent: "alarm",
    SprayCommand: "spray",
    Actuation: "actuation",
    Outage: "outage",
    Gap: "gap",
    HealthReport: "health",
}


class RecordError(ValueError):
    """A queued body that does not decode to its kind."""


def kind_of(record: Record) -> str:
    return KINDS[type(record)]


def record_time(record: Record) -> float:
    """The time a record is about: a sample, a window's start, an event, a command, an outage's start."""
    if isinstance(record, Reading):
        return record.timestamp
    if isinstance(record, Aggregate | Outage | Gap):
        return record.start
    return record.time


def record_node(record: Record) -> str:
    return record.node


def _number(value: float | None) -> float | str | None:
    # JSON has no NaN or infinity; the standard library writes them anyway
    # (non-standard). Keep the body strict JSON: spell them as strings.
    if value is None or math.isfinite(value):
        return value
    return repr(value)


def _float(value: Any) -> float | None:
    # float() reads both numbers and the spelt-out "nan", "inf", "-inf".
    return None if value is None else float(value)


def to_json(record: Record) -> str:
    """The record's body as compact JSON."""
    kind = type(record)
    if kind is Reading:
        text = _reading_json(record)  # type: ignore[arg-type]
        if text is not None:
            return text
    elif kind is Aggregate:
        text = _aggregate_json(record)  # type: ignore[arg-type]
        if text is not None:
            return text
    return _ENCODER.encode(_body(record))


def to_json_many(records: Sequence[Record]) -> list[str]:
    """`to_json` of each record, in order: the queue's append writes a whole batch's bodies in one call.

    The same bytes as `to_json` (tests/gateway/deliver/test_record_body_batches.py), written with what
    a batch's readings share (issue 13, fourth pass): a poll's readings have one node, kind, timestamp
    and sequence, so their series' JSON is looked up by channel in the node's table, without a tuple
    key per reading, and the timestamp and sequence are written once per poll. Anything unusual takes
    `to_json`.
    """
    out: list[str] = []
    add = out.append
    texts = _value_texts
    node: str | None = None
    kind: str | None = None
    series: dict[str, tuple[str, str, Quality, str]] = {}  # channel -> (prefix, unit, quality, middle)
    # The timestamp and sequence objects `tail` was written from (none yet: objects no reading holds).
    tail_ts: object = _NO_TAIL
    tail_sequence: object = _NO_TAIL
    tail = ""
    for r in records:
        if type(r) is not Reading:
            add(to_json(r))
            continue
        value = r.value
        if type(value) is float:
            # Only finite floats other than zero are cached: a text found needs no test of its own (issue 13,
            # fifth pass).
            value_text = texts.get(value)
            if value_text is None:
                if value - value != 0.0:  # NaN and infinities: the general path
                    add(to_json(r))
                    continue
                value_text = _value_text(value)
        elif value is None:
            value_text = "null"
        elif type(value) is int:
            value_text = int.__repr__(value)
        else:
            add(to_json(r))
            continue
        ts, sequence = r.timestamp, r.sequence
        if ts is not tail_ts or (  # the same float object: -0.0 and 0.0 differ
            # The same sequence object (a poll's readings share it), or an equal int: the same text. Not
            # identity alone: a sequence past 256 computed per reading is a new int each time (the bench's).
            sequence is not tail_sequence and (type(sequence) is not int or sequence != tail_sequence)
        ):
            if type(sequence) is not int or type(ts) is not float or ts - ts != 0.0:
                add(to_json(r))
                continue
            tail = f'{_float_repr(ts)},"seq":{int.__repr__(sequence)}}}'
            tail_ts, tail_sequence = ts, sequence
        if r.node is not node or r.kind is not kind:
            node, kind = r.node, r.kind
            series = _series_of(node, kind)
        known = series.get(r.channel)
        if known is None or known[1] is not r.unit or known[2] is not r.quality:
            known = _learn_series(series, r)
        add(f"{known[0]}{value_text}{known[3]}{tail}")
    return out


_NO_TAIL = object()


def _keep(cache: dict[Any, Any], key: Any, value: Any, limit: int = 0) -> Any:
    """Put value in a cache of at most `limit` entries (default _PREFIX_CACHE_LIMIT) and return it. A full cache
    starts again: the working set (a site's series, its recurring values) refills it at once."""
    if len(cache) >= (limit or _PREFIX_CACHE_LIMIT):
        cache.clear()
    cache[key] = value
    return value


def _reading_prefix_text(node: str, kind: str, channel: str) -> str:
    """A reading body's text up to its value."""
    return (f'{{"node":{_json_string(node)},"kind":{_json_string(kind)},"channel":{_json_string(channel)},'
            '"value":')


def _reading_middle_text(unit: str, quality: Quality) -> str:
    """A reading body's text from its value to its timestamp."""
    return f',"unit":{_json_string(unit)},"quality":{_json_string(quality.value)},"ts":'


def _value_text(value: float) -> str:
    """A finite float as the encoder writes it, kept in _value_texts (never a zero: see there)."""
    text = _float_repr(value)
    if value:
        _keep(_value_texts, value, text, _VALUE_CACHE_LIMIT)
    return text


def _series_of(node: str, kind: str) -> dict[str, tuple[str, str, Quality, str]]:
    """to_json_many's table of a node's channels (node and kind are what their JSON prefix names)."""
    table = _series_tables.get((node, kind))
    if table is None:
        table = _keep(_series_tables, (node, kind), {})
    return table


def _learn_series(table: dict[str, tuple[str, str, Quality, str]], r: Reading) -> tuple[str, str, Quality, str]:
    """The (prefix, unit, quality, middle) of the reading's series, kept in its node's table."""
    known = (_reading_prefix_text(r.node, r.kind, r.channel), r.unit, r.quality,
             _reading_middle_text(r.unit, r.quality))
    return _keep(table, r.channel, known)  # type: ignore[no-any-return]


def _body(record: Record) -> dict[str, Any]:
    """The record's body as a JSON-ready object (every kind; to_json's general path)."""
    body: dict[str, Any]
    if isinstance(record, Reading):
        body = {
            "node": record.node, "kind": record.kind, "channel": record.channel, "value": _number(record.value),
            "unit": record.unit, "quality": record.quality.value, "ts": record.timestamp, "seq": record.sequence,
        }
    elif isinstance(record, Aggregate):
        body = {
            "node": record.node, "kind": record.kind, "channel": record.channel, "source": record.source,
            "statistic": record.statistic, "window": record.window, "start": record.start, "end": record.end,
            "value": _number(record.value), "unit": record.unit, "count": record.count,
            "expected": record.expected, "valid": record.valid, "quality": record.quality.value,
            "revision": record.revision,
        }
    elif isinstance(record, AlarmEvent):
        body = {
            "alarm": record.alarm, "node": record.node, "channel": record.channel,
            "severity": record.severity.value, "state": record.state.value, "value": _number(record.value),
            "limit": _number(record.limit), "time": record.time, "reason": record.reason,
        }
    elif isinstance(record, SprayCommand):
        body = {
            "node": record.node, "coil": record.coil, "on": record.on, "time": record.time,
            "mode": record.mode.value, "reason": record.reason, "value": _number(record.value),
            "level": record.level,
        }
    elif isinstance(record, Actuation):
        body = {
            "node": record.node, "coil": record.coil, "on": record.on, "time": record.time,
            "mode": record.mode.value, "reason": record.reason, "value": _number(record.value),
            "level": record.level, "result": record.result, "attempt": record.attempt, "written": record.written,
        }
    elif isinstance(record, Outage):
        body = {
            "node": record.node, "kind": record.kind, "start": record.start, "end": record.end,
            "reason": record.reason, "missed": record.missed, "closed": record.closed,
        }
    elif isinstance(record, Gap):
        body = {
            "node": record.node, "kind": record.kind, "start": record.start, "end": record.end,
            "first": record.first_sequence, "last": record.last_sequence, "reason": record.reason,
        }
    elif isinstance(record, HealthReport):
        body = health_body(record)
    else:  # pragma: no cover - Record is closed
        raise TypeError(f"not a record: {record!r}")
    return body


# One encoder for every body: json.dumps with options builds a new JSONEncoder per call (a fifth of
# to_json's time, once per record in the queue).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# Readings and aggregates are nearly every record the queue takes, and building a dict per record for
# the encoder was half of an append's CPU time (issue 13). Their bodies are written here directly, with
# the same bytes the encoder writes (tests/gateway/deliver/test_record_bodies.py checks that against
# json.dumps): the fields that name a series (node, kind, channel ...) change rarely, so their JSON is
# made once per series and kept; numbers are written as the encoder writes them (float.__repr__,
# int.__repr__). Anything unusual (a NaN or an infinity, which the body spells as a string; a value
# that is not exactly a float, an int or None) takes the general path.
_PREFIX_CACHE_LIMIT = 65_536  # series: far more than a site has; past it the cache starts again
_reading_prefixes: dict[tuple[str, str, str], str] = {}
_reading_units: dict[tuple[str, Quality], str] = {}
_aggregate_prefixes: dict[tuple[str, str, str, str, str, str], str] = {}
_aggregate_units: dict[str, str] = {}
_json_string = json.encoder.encode_basestring  # what the encoder uses with ensure_ascii=False
_float_repr = float.__repr__
_QUALITY_JSON = {quality: _json_string(quality.value) for quality in Quality}
# A reading's value as float.__repr__ writes it, by value. Values come from registers of a fixed
# resolution (0.1 ug/m3, 0.1 dB ...) and wander within a range, so the same few thousand values recur;
# float.__repr__ (the shortest round trip, David Gay's dtoa) was a fifth of a body's instructions
# (issue 13, fourth pass). Zeros are never kept: 0.0 and -0.0 are one key but are written apart.
_VALUE_CACHE_LIMIT = 8192  # values, about 1 MB when full; past it the cache starts again
_value_texts: dict[float, str] = {}
# to_json_many's series, per (node, kind): channel -> (prefix, unit, quality, middle).
_series_tables: dict[tuple[str, str], dict[str, tuple[str, str, Quality, str]]] = {}
# The end of the last reading's body: (timestamp, sequence, text). A poll's readings share both, and
# writing the timestamp (float.__repr__ of ten-digit seconds) was a third of a body's time (issue 13).
# Replaced whole, never changed: a thread reading it sees one consistent tuple.
_last_tail: tuple[float, int, str] = (math.nan, 0, "")


def _number_json(value: object) -> str | None:
    """A value as the encoder writes it, or None when the general path must decide."""
    if value is None:
        return "null"
    if type(value) is float:
        return _float_repr(value) if value - value == 0.0 else None  # NaN and infinities: the general path
    if type(value) is int:
        return int.__repr__(value)
    return None


def _reading_json(r: Reading) -> str | None:
    value = r.value
    if value is None:
        value_text = "null"
    elif type(value) is float and value - value == 0.0:  # NaN and infinities: the general path
        value_text = _value_texts.get(value) or _value_text(value)
    else:
        other = _number_json(value)
        if other is None:
            return None
        value_text = other
    ts = r.timestamp
    if type(ts) is not float or ts - ts != 0.0 or type(r.sequence) is not int:
        return None
    series = (r.node, r.kind, r.channel)
    prefix = _reading_prefixes.get(series)
    if prefix is None:
        prefix = _keep(_reading_prefixes, series, _reading_prefix_text(r.node, r.kind, r.channel))
    flags = (r.unit, r.quality)  # Quality is a str: no `.value` (an enum property) per reading
    middle = _reading_units.get(flags)
    if middle is None:
        middle = _keep(_reading_units, flags, _reading_middle_text(r.unit, r.quality))
    global _last_tail
    tail = _last_tail
    if tail[0] is not ts or tail[1] != r.sequence:  # the same float object: -0.0 and 0.0 are written apart
        tail = _last_tail = (ts, r.sequence, f'{_float_repr(ts)},"seq":{int.__repr__(r.sequence)}}}')
    return f'{prefix}{value_text}{middle}{tail[2]}'


def _aggregate_json(a: Aggregate) -> str | None:
    value = _number_json(a.value)
    start, end = a.start, a.end
    if (
        value is None or type(start) is not float or type(end) is not float or start - start != 0.0
        or end - end != 0.0 or type(a.count) is not int or type(a.expected) is not int
        or type(a.valid) is not bool or type(a.revision) is not int
    ):
        return None
    series = (a.node, a.kind, a.channel, a.source, a.statistic, a.window)
    prefix = _aggregate_prefixes.get(series)
    if prefix is None:
        prefix = _keep(_aggregate_prefixes, series, (
            f'{{"node":{_json_string(a.node)},"kind":{_json_string(a.kind)},"channel":{_json_string(a.channel)},'
            f'"source":{_json_string(a.source)},"statistic":{_json_string(a.statistic)},'
            f'"window":{_json_string(a.window)},"start":'
        ))
    unit = _aggregate_units.get(a.unit)
    if unit is None:
        unit = _keep(_aggregate_units, a.unit, _json_string(a.unit))
    return (
        f'{prefix}{_float_repr(start)},"end":{_float_repr(end)},"value":{value},"unit":{unit},'
        f'"count":{int.__repr__(a.count)},"expected":{int.__repr__(a.expected)},'
        f'"valid":{"true" if a.valid else "false"},"quality":{_QUALITY_JSON[a.quality]},'
        f'"revision":{int.__repr__(a.revision)}}}'
    )


# raw_decode: json.loads without its two whitespace regex scans (a queue body is compact JSON, written by
# to_json); a sink draining a backlog decodes every body, and this is a quarter of that time.
_DECODER = json.JSONDecoder()
_QUALITIES = {quality.value: quality for quality in Quality}  # Quality(x) costs an enum lookup per reading


def from_json(kind: str, text: str) -> Record:
    """The record a body of `kind` describes."""
    try:
        b, end = _DECODER.raw_decode(text)
        if end != len(text):
            raise ValueError(f"data after the JSON object at {end}")
        if kind == "reading":
            value = b["value"]
            return Reading(
                b["node"], b["kind"], b["channel"], None if value is None else float(value), b["unit"],
                _QUALITIES.get(b["quality"]) or Quality(b["quality"]), float(b["ts"]), int(b["seq"]),
            )
        if kind == "aggregate":
            return Aggregate(
                b["node"], b["kind"], b["channel"], b["source"], b["statistic"], b["window"], float(b["start"]),
                float(b["end"]), _float(b["value"]), b["unit"], int(b["count"]), int(b["expected"]),
                bool(b["valid"]), Quality(b["quality"]),
                int(b.get("revision", 0)),  # bodies queued before revisions existed: the first emission
            )
        if kind == "alarm":
            return AlarmEvent(
                b["alarm"], b["node"], b["channel"], Severity(b["severity"]), EventState(b["state"]),
                float(b["value"]), float(b["limit"]), float(b["time"]), b["reason"],
            )
        if kind == "spray":
            return SprayCommand(
                b["node"], b["coil"], bool(b["on"]), float(b["time"]), SprayMode(b["mode"]), b["reason"],
                _float(b["value"]), float(b["level"]),
            )
        if kind == "actuation":
            return Actuation(
                b["node"], b["coil"], bool(b["on"]), float(b["time"]), SprayMode(b["mode"]), b["reason"],
                _float(b["value"]), float(b["level"]), b["result"], int(b["attempt"]), float(b["written"]),
            )
        if kind == "outage":
            return Outage(
                b["node"], b["kind"], float(b["start"]), float(b["end"]), b["reason"], int(b["missed"]),
                bool(b["closed"]),
            )
        if kind == "gap":
            last = b["last"]
            return Gap(
                b["node"], b["kind"], float(b["start"]), float(b["end"]), int(b["first"]),
                None if last is None else int(last), b["reason"],
            )
        if kind == "health":
            return health_from_body(b)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise RecordError(f"{kind} record {text[:200]!r}: {error}") from error
    raise RecordError(f"unknown record kind {kind!r}")


def health_body(report: HealthReport) -> dict[str, Any]:
    """A health report as a JSON-ready object (the queue's body, and the MQTT payload's ``record``)."""
    g = report.gateway
    return {
        "time": report.time,
        "gateway": {
            "uptime_s": g.uptime_s, "rss_bytes": g.rss_bytes, "cpu_s": g.cpu_s, "queue_depth": g.queue_depth,
            "queue_oldest_age_s": g.queue_oldest_age_s, "dropped_total": g.dropped_total,
            "nodes_online": g.nodes_online, "nodes_total": g.nodes_total, "clock_valid": g.clock_valid,
        },
        "sinks": [
            {"sink": s.sink, "backlog": s.backlog, "oldest_age_s": s.oldest_age_s,
             "delivered_total": s.delivered_total, "failed_total": s.failed_total, "connected": s.connected,
             "fatal": s.fatal}
            for s in report.sinks
        ],
        "nodes": [
            {"node": n.node, "kind": n.kind, "bus": n.bus, "online": n.online, "polls_ok_total": n.polls_ok_total,
             "polls_failed_total": n.polls_failed_total, "success_rate": _number(n.success_rate),
             "latency_ms": _number(n.latency_ms), "last_seen_age_s": _number(n.last_seen_age_s)}
            for n in report.nodes
        ],
    }


def _strict_bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{what}: expected true or false, got {value!r}")
    return value


def health_from_body(b: Mapping[str, Any]) -> HealthReport:
    g = b["gateway"]
    gateway = GatewayHealth(
        float(g["uptime_s"]), int(g["rss_bytes"]), float(g["cpu_s"]), int(g["queue_depth"]),
        float(g["queue_oldest_age_s"]), int(g["dropped_total"]), int(g["nodes_online"]), int(g["nodes_total"]),
        _strict_bool(g["clock_valid"], "gateway.clock_valid"),
    )
    sinks = tuple(
        SinkHealth(str(s["sink"]), int(s["backlog"]), float(s["oldest_age_s"]), int(s["delivered_total"]),
                   int(s["failed_total"]), _strict_bool(s["connected"], "sinks.connected"),
                   _strict_bool(s["fatal"], "sinks.fatal"))
        for s in b["sinks"]
    )
    nodes = tuple(
        NodePollHealth(str(n["node"]), str(n["kind"]), str(n["bus"]), _strict_bool(n["online"], "nodes.online"),
                       int(n["polls_ok_total"]), int(n["polls_failed_total"]), _float(n["success_rate"]),
                       _float(n["latency_ms"]), _float(n["last_seen_age_s"]))
        for n in b["nodes"]
    )
    return HealthReport(float(b["time"]), gateway, sinks, nodes)
