"""InfluxDB line protocol, sans-IO: escaping, field types, timestamps, and records -> lines.

One line is ``measurement,tag=v,tag=v field=v,field=v timestamp`` (the spec:
InfluxDB's "Line protocol" reference, the same for 1.x, 2.x, 3.x and
VictoriaMetrics). Escaping:

* measurement: comma and space are escaped with a backslash;
* tag keys, tag values, field keys: comma, equals sign and space;
* string field values: double quote and backslash (inside double quotes).

A backslash or a line break in a name or tag value cannot be written so that
every server reads it back the same (``a\\`` before a space is ambiguous), and
names come from the configuration and the register map, where neither makes
sense: they are refused with an error naming the value. A line break in a
string field (an alarm's reason) becomes a space: the 1.x parser ends a line
there. Empty tag values are left out (the protocol has no empty tag; InfluxQL
reads a missing tag as empty).

Tags are written sorted by key (what the servers index fastest, and one
series key per tag set). Floats are written with ``repr`` (the shortest text
that reads back as the same double), integers with the ``i`` suffix, so a
field's type never changes between points (a type conflict is a 400 for
good). NaN and infinities have no spelling in line protocol: a value field
that is not finite is left out of its point and counted (``Encoded.nonfinite``),
the quality field stays.

The schema (docs/influxdb-schema.md) is in :class:`RecordEncoder`: the
identity of a point is measurement + tag set + timestamp, and both are built
only from what identifies the record, so a record delivered twice (after a
crash between writing and confirming) is one point, and a revised aggregate
(same window start, higher ``revision``, a field) overwrites the point of
the earlier revision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.deliver.records import Actuation, HealthReport, Outage, Record
from gateway.model import Gap, Quality, Reading
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent
from gateway.process.spray import SprayCommand

FieldValue = float | int | bool | str

# Units per second of each precision, by the names the v2 API uses (the v1 API's names in V1_PRECISION).
PRECISIONS: dict[str, int] = {"ns": 1_000_000_000, "us": 1_000_000, "ms": 1_000, "s": 1}
V1_PRECISION: dict[str, str] = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}

# A float of seconds since the epoch carries about a microsecond (its ulp near 2026 is ~0.24 us):
# finer digits are noise, and rounding them in would make the same float land on different nanoseconds
# on different machines' float formatting. Nanoseconds are microseconds times 1000.
_FINEST = 1_000_000

# quality_code: the HJ 212 data flag as an integer, for servers that store string fields as 0
# (VictoriaMetrics). Index in Quality's order: N=0 F=1 M=2 S=3 D=4 C=5 T=6 B=7.
QUALITY_CODES: dict[Quality, int] = {quality: code for code, quality in enumerate(Quality)}

MEASUREMENTS = ("reading", "aggregate", "alarm", "actuation", "outage", "gap")
# One health report is several points: the gateway's, one per sink lane, one per node.
HEALTH_MEASUREMENTS = ("gateway_health", "sink_health", "node_health")

# ' quality="N",quality_code=0i,seq=': the start of a reading's field set, per quality.
_QUALITY_FIELDS = {quality: f' quality="{quality.value}",quality_code={code}i,seq=' for quality, code
                   in QUALITY_CODES.items()}

_MEASUREMENT_ESCAPES = str.maketrans({",": "\\,", " ": "\\ "})
_KEY_ESCAPES = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": " ", "\r": " "})
_FORBIDDEN = ("\\", "\n", "\r")


class LineProtocolError(ValueError):
    """A name, tag or field that line protocol cannot carry."""


def _check(what: str, text: str) -> None:
    if not text:
        raise LineProtocolError(f"{what} is empty")
    for bad in _FORBIDDEN:
        if bad in text:
            raise LineProtocolError(f"{what} {text!r} contains {bad!r}, which line protocol cannot carry")


def escape_measurement(name: str) -> str:
    _check("measurement", name)
    if name.startswith("#"):
        raise LineProtocolError(f"measurement {name!r} starts with '#' (a comment line)")
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_key(key: str, what: str = "key") -> str:
    """A tag key, tag value or field key."""
    _check(what, key)
    return key.translate(_KEY_ESCAPES)


def format_field(key: str, value: FieldValue) -> str:
    if isinstance(value, bool):  # before int: bool is an int
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = f"{value}i"
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise LineProtocolError(f"field {key!r}: {value!r} has no spelling in line protocol")
        text = repr(value)
    elif isinstance(value, str):
        text = '"' + value.translate(_STRING_ESCAPES) + '"'
    else:
        raise LineProtocolError(f"field {key!r}: {type(value).__name__} is not a field type")
    return escape_key(key, "field key") + "=" + text


def timestamp(seconds: float, precision: str) -> int:
    """Seconds since the epoch as an integer in `precision` units (ns, us, ms, s), rounded to the nearest."""
    try:
        scale = PRECISIONS[precision]
    except KeyError:
        raise LineProtocolError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}") from None
    if not math.isfinite(seconds):
        raise LineProtocolError(f"timestamp {seconds!r} is not a time")
    if scale > _FINEST:
        return round(seconds * _FINEST) * (scale // _FINEST)
    return round(seconds * scale)


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """``measurement,k=v,...`` with the tags sorted by key and empty values left out."""
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if value:
            parts.append(escape_key(key, "tag key") + "=" + escape_key(value, f"tag {key!r}"))
    return ",".join(parts)


def line(measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], stamp: int) -> str:
    return series_key(measurement, tags) + " " + _fields(fields) + " " + str(stamp)


def _fields(fields: Mapping[str, FieldValue]) -> str:
    if not fields:
        raise LineProtocolError("a point needs at least one field")
    return ",".join(format_field(key, value) for key, value in fields.items())


@dataclass
class Encoded:
    """Lines for a run of records, and what was not written (each counted)."""

    lines: list[str]
    written: int = 0  # records that became a line
    skipped: int = 0  # records of a kind this schema leaves out (spray commands: the actuation is written)
    nonfinite: int = 0  # value fields left out because they were NaN or infinite


class RecordEncoder:
    """Records -> lines in the schema of docs/influxdb-schema.md, tagged with the site and gateway.

    ``district``, when given, tags every point too: a bureau's dashboards select sites by district
    (dashboards/README.md); an empty one is left out, as every empty tag.
    """

    SERIES_CACHE = 4096  # series keys remembered (a site has a few hundred node x channel series)

    def __init__(self, site: str, gateway: str, precision: str = "ns", district: str = "") -> None:
        escape_key(site, "site")
        escape_key(gateway, "gateway")
        if district:
            escape_key(district, "district")
        timestamp(0.0, precision)  # checks the precision's name
        self.site = site
        self.gateway = gateway
        self.district = district
        self.precision = precision
        self._scale = PRECISIONS[precision]
        self._series: dict[tuple[str, ...], str] = {}

    def encode(self, records: Iterable[Record]) -> Encoded:
        out = Encoded([])
        for record in records:
            text = self.line(record, out)
            if text is None:
                out.skipped += 1
            else:
                out.lines.append(text)
                out.written += 1
        return out

    def line(self, record: Record, counts: Encoded | None = None) -> str | None:
        """The record's line, or None for a kind that is not written.

        A health report is several points: its lines joined by a line break (``health_lines`` gives them apart).
        """
        if isinstance(record, Reading):
            return self._reading(record, counts)
        if isinstance(record, Aggregate):
            return self._aggregate(record, counts)
        if isinstance(record, AlarmEvent):
            return self._alarm(record, counts)
        if isinstance(record, Actuation):
            return self._actuation(record, counts)
        if isinstance(record, Outage):
            return self._outage(record)
        if isinstance(record, Gap):
            return self._gap(record)
        if isinstance(record, SprayCommand):
            return None
        if isinstance(record, HealthReport):
            return "\n".join(self.health_lines(record, counts))
        raise LineProtocolError(f"not a record: {record!r}")  # pragma: no cover - Record is closed

    def _key(self, measurement: str, **tags: str) -> str:
        cache_key = (measurement, *tags.values())
        key = self._series.get(cache_key)
        if key is None:
            if len(self._series) >= self.SERIES_CACHE:
                self._series.clear()
            key = series_key(
                measurement, {"site": self.site, "gateway": self.gateway, "district": self.district, **tags}
            )
            self._series[cache_key] = key
        return key

    def _stamp(self, seconds: float) -> str:
        return str(timestamp(seconds, self.precision))

    @staticmethod
    def _value(fields: dict[str, FieldValue], key: str, value: float | None, counts: Encoded | None) -> None:
        if value is None:
            return
        if math.isfinite(value):
            fields[key] = float(value)
        elif counts is not None:
            counts.nonfinite += 1

    def _reading(self, r: Reading, counts: Encoded | None) -> str:
        # The hot path of a backlog drain (bench/drain.py): the same fields as _fields would write, in the same
        # order, formatted directly (test_line_protocol checks it against the general encoder).
        key = self._series.get((r.node, r.channel, r.kind, r.unit))
        if key is None:
            key = self._key("reading", node=r.node, kind=r.kind, channel=r.channel, unit=r.unit)
            self._series[(r.node, r.channel, r.kind, r.unit)] = key
        text = key + _QUALITY_FIELDS[r.quality] + str(r.sequence) + "i"
        value = r.value
        if value is not None:
            if value - value == 0.0:  # finite (NaN and infinities give NaN)
                text += ",value=" + repr(float(value))
            elif counts is not None:
                counts.nonfinite += 1
        seconds = r.timestamp
        if self._scale > _FINEST:
            return text + " " + str(round(seconds * _FINEST) * (self._scale // _FINEST))
        return text + " " + str(round(seconds * self._scale))

    def _aggregate(self, a: Aggregate, counts: Encoded | None) -> str:
        key = self._key("aggregate", node=a.node, kind=a.kind, channel=a.channel, source=a.source,
                        statistic=a.statistic, window=a.window, unit=a.unit)
        fields: dict[str, FieldValue] = {
            "quality": a.quality.value, "quality_code": QUALITY_CODES[a.quality], "count": a.count,
            "expected": a.expected, "valid": a.valid, "end_s": float(a.end),
            # Revisions are a field, not a tag: a revised window has the same identity and overwrites.
            "revision": int(getattr(a, "revision", 0)),
        }
        self._value(fields, "value", a.value, counts)
        return key + " " + _fields(fields) + " " + self._stamp(a.start)

    def _alarm(self, e: AlarmEvent, counts: Encoded | None) -> str:
        key = self._key("alarm", alarm=e.alarm, node=e.node, channel=e.channel, severity=e.severity.value,
                        state=e.state.value)
        fields: dict[str, FieldValue] = {"reason": e.reason}
        self._value(fields, "value", e.value, counts)
        self._value(fields, "limit", e.limit, counts)
        return key + " " + _fields(fields) + " " + self._stamp(e.time)

    def _actuation(self, a: Actuation, counts: Encoded | None) -> str:
        key = self._key("actuation", node=a.node, coil=a.coil, mode=a.mode.value)
        fields: dict[str, FieldValue] = {
            "on": a.on, "ok": a.ok, "result": a.result, "attempt": a.attempt, "reason": a.reason,
            "level": float(a.level), "command_s": float(a.time),
        }
        self._value(fields, "value", a.value, counts)
        # Stamped with the write's time: each attempt of one command is its own point.
        return key + " " + _fields(fields) + " " + self._stamp(a.written)

    def _outage(self, o: Outage) -> str:
        key = self._key("outage", node=o.node, kind=o.kind)
        fields: dict[str, FieldValue] = {
            "end_s": float(o.end), "duration_s": float(o.end - o.start), "reason": o.reason, "missed": o.missed,
            "closed": o.closed,
        }
        return key + " " + _fields(fields) + " " + self._stamp(o.start)

    def _gap(self, g: Gap) -> str:
        key = self._key("gap", node=g.node, kind=g.kind)
        fields: dict[str, FieldValue] = {"end_s": float(g.end), "first_sequence": g.first_sequence,
                                         "reason": g.reason}
        if g.last_sequence is not None:
            fields["last_sequence"] = g.last_sequence
            fields["missing"] = g.last_sequence - g.first_sequence + 1
        return key + " " + _fields(fields) + " " + self._stamp(g.start)

    def health_lines(self, report: HealthReport, counts: Encoded | None = None) -> list[str]:
        """gateway_health, then one sink_health per sink lane and one node_health per node, all at report.time.

        A point's identity is its series and the report's time: a report delivered twice is the same points.
        A node value that is unknown (no poll in the interval, never answered) is left out of its point.
        """
        stamp = self._stamp(report.time)
        g = report.gateway
        gateway: dict[str, FieldValue] = {
            "uptime_s": float(g.uptime_s), "rss_bytes": int(g.rss_bytes), "cpu_s": float(g.cpu_s),
            "queue_depth": int(g.queue_depth), "queue_oldest_age_s": float(g.queue_oldest_age_s),
            "dropped_total": int(g.dropped_total), "nodes_online": int(g.nodes_online),
            "nodes_total": int(g.nodes_total), "clock_valid": bool(g.clock_valid),
        }
        out = [self._key("gateway_health") + " " + _fields(gateway) + " " + stamp]
        for s in report.sinks:
            fields: dict[str, FieldValue] = {
                "backlog": int(s.backlog), "oldest_age_s": float(s.oldest_age_s),
                "delivered_total": int(s.delivered_total), "failed_total": int(s.failed_total),
                "connected": bool(s.connected), "fatal": bool(s.fatal),
            }
            out.append(self._key("sink_health", sink=s.sink) + " " + _fields(fields) + " " + stamp)
        for n in report.nodes:
            fields = {"online": bool(n.online), "polls_ok_total": int(n.polls_ok_total),
                      "polls_failed_total": int(n.polls_failed_total)}
            self._value(fields, "success_rate", n.success_rate, counts)
            self._value(fields, "latency_ms", n.latency_ms, counts)
            self._value(fields, "last_seen_age_s", n.last_seen_age_s, counts)
            out.append(self._key("node_health", node=n.node, kind=n.kind, bus=n.bus) + " " + _fields(fields)
                       + " " + stamp)
        return out
