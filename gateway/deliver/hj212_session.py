"""The HJ 212 uplink's logic, sans-IO: records to data packets, platform requests to replies.

``Uplink.records`` turns queued records into packets (unsplit; the sink
splits them on the way out):

* readings -> one 2011 real-time snapshot per RtdInterval: the latest value
  of each factor in the interval, stamped with the interval's start. A
  snapshot is sent when the first reading of a later interval arrives (the
  interval is then over). A reading without a value goes out as its flag
  (B, D ...) with no value: never a repeat of the last good one. A reading
  older than the snapshot being built is too late for real-time data; it is
  counted (``counts["late_realtime"]``) and reaches the platform in the
  minute / hour / day data.
* aggregates of the 1min / 1h / 24h windows -> 2051 / 2061 / 2031, one packet
  per window start with each factor's -Avg / -Min / -Max and -Flag. A revised
  window (an aggregate with a higher ``revision``) is simply sent again.
* everything else (other windows, alarms, tilt, outages, spray commands, the
  gateway's health reports: HJ 212 has no CN for them ...) has no HJ 212
  form here: counted in ``counts["not_sent"]`` and confirmed.

``Uplink.handle`` answers a packet from the platform (time, RtdInterval,
history requests) with the packets to write back. The system clock is never
set: a 1012 "set time" is acknowledged and the offset logged, because the
Pi's clock is kept by NTP (or the RTC) and the samples' timestamps, the
windows and the durable queue all depend on it; a platform clock that is
off must not move them.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from gateway.deliver.records import Record
from gateway.model import Quality, Reading
from gateway.process.aggregate import Aggregate
from gateway.profiles.kinds import KindProfile, kind_profiles
from gateway.protocols import hj212
from gateway.protocols.hj212 import CpGroup, FrameError, Packet

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class FactorTable:
    """The HJ 212 factor codes of the kinds (their profiles' [hj212] tables; domain.md section 6)."""

    realtime: Mapping[tuple[str, str], str]  # (node kind, channel) -> factor code
    # (node kind, source channel, statistic) -> (factor code, suffix): two kinds may share a channel's name
    aggregates: Mapping[tuple[str, str, str], tuple[str, str]]
    without: Mapping[str, str]  # kinds whose profile declares no factor code -> the profile's file

    @classmethod
    def of(cls, profiles: Iterable[KindProfile]) -> FactorTable:
        realtime: dict[tuple[str, str], str] = {}
        aggregates: dict[tuple[str, str, str], tuple[str, str]] = {}
        without: dict[str, str] = {}
        for profile in profiles:
            factors = profile.hj212
            if not factors.realtime and not factors.aggregates:
                without[profile.name] = str(profile.path)
            realtime.update({(profile.name, channel): code for channel, code in factors.realtime.items()})
            aggregates.update({(profile.name, *key): value for key, value in factors.aggregates.items()})
        return cls(MappingProxyType(realtime), MappingProxyType(aggregates), MappingProxyType(without))


_FACTORS: dict[tuple[str, ...], FactorTable] = {}


def factor_table() -> FactorTable:
    """The factor codes of every kind known now (a kind installed from a folder included)."""
    profiles = kind_profiles()
    key = tuple(profiles)
    table = _FACTORS.get(key)
    if table is None:
        _FACTORS.clear()
        table = _FACTORS[key] = FactorTable.of(profiles.values())
    return table


# Window label -> command code of its data.
WINDOW_CN = {"1min": hj212.CN_MINUTE, "1h": hj212.CN_HOURLY, "24h": hj212.CN_DAILY}
CN_WINDOW = {cn: label for label, cn in WINDOW_CN.items()}

PM_PREFIX = "a340"  # factors whose values the platform's PM unit factor scales
RTD_INTERVAL_RANGE = (1, 3600)  # seconds; the standard's own range is 30 ... 3600

History = Callable[[str, float, float], Sequence[Aggregate]]  # (window label, begin, end) -> latest revisions


class SettingsError(ValueError):
    """A setting of the HJ 212 sink that cannot work."""


@dataclass(frozen=True)
class Settings:
    mn: str
    pw: str = "123456"
    st: str = "22"
    rtd_interval: int = 30
    reply: bool = False
    pm_unit_factor: float = 1.0
    version: int = hj212.VERSION_2017
    utc_offset_s: int = 8 * 3600
    nodes: frozenset[str] = frozenset()  # empty: every node

    def check(self) -> Settings:
        for key in ("mn", "pw", "st"):
            value = getattr(self, key)
            if not value or any(c in value for c in ";,=&\r\n"):
                raise SettingsError(f"hj212 sink: {key}={value!r} must be non-empty without ; , = & or line breaks")
        low, high = RTD_INTERVAL_RANGE
        if not low <= self.rtd_interval <= high:
            raise SettingsError(f"hj212 sink: rtd_interval={self.rtd_interval} must be {low} ... {high} s")
        if not self.pm_unit_factor > 0:
            raise SettingsError(f"hj212 sink: pm_unit_factor={self.pm_unit_factor} must be positive")
        if not 0 <= self.version <= 15:
            raise SettingsError(f"hj212 sink: version={self.version} must fit the Flag's 4 version bits (0 ... 15)")
        return self


def format_value(value: float) -> str:
    return f"{value:.3f}"


@dataclass
class _Snapshot:
    slot: float | None = None
    values: dict[str, tuple[float | None, str]] | None = None  # factor -> (value, flag), latest in the slot


class Uplink:
    def __init__(self, settings: Settings, history: History | None = None, factors: FactorTable | None = None) -> None:
        """factors: the kinds' factor codes (default: those of the kind profiles known when a record comes)."""
        self.settings = settings.check()
        self._factors = factors
        self._refused: set[str] = set()  # kinds without factor codes, said once
        self.rtd_interval = settings.rtd_interval
        self.history = history
        self.counts: Counter[str] = Counter()
        self.clock_offset: float | None = None  # platform time minus ours, from the last 1012
        self._snapshot = _Snapshot()
        self._last_qn_ms = 0
        self._owners: dict[str, str] = {}  # factor -> the node that gave it last

    # -- state that a failed delivery rolls back -----------------------------------------
    def save(self) -> tuple[float | None, dict[str, tuple[float | None, str]] | None]:
        values = self._snapshot.values
        return self._snapshot.slot, None if values is None else dict(values)

    def restore(self, state: tuple[float | None, dict[str, tuple[float | None, str]] | None]) -> None:
        self._snapshot = _Snapshot(*state)

    # -- the snapshot across restarts (the sink keeps it in a file) ------------------------------
    def snapshot_state(self) -> dict[str, Any]:
        """The real-time snapshot being built, as a JSON-ready object (``load_snapshot`` takes it back)."""
        snap = self._snapshot
        values = {code: [value, flag] for code, (value, flag) in (snap.values or {}).items()}
        return {"mn": self.settings.mn, "slot": snap.slot, "values": values}

    def load_snapshot(self, state: Mapping[str, Any]) -> bool:
        """Take back a snapshot ``snapshot_state`` gave (saved before a restart). False when it belongs to another
        MN (the configuration changed: it is not this monitoring point's); ValueError naming what is malformed."""
        if not isinstance(state, Mapping):
            raise ValueError(f"expected an object, got {type(state).__name__}")
        if state.get("mn") != self.settings.mn:
            return False
        slot = state.get("slot")
        raw = state.get("values")
        if slot is not None and not (isinstance(slot, int | float) and math.isfinite(slot)):
            raise ValueError(f"slot {slot!r} is not a time")
        if not isinstance(raw, Mapping):
            raise ValueError(f"values {raw!r} is not an object")
        values: dict[str, tuple[float | None, str]] = {}
        for code, entry in raw.items():
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], str)
                    and (entry[0] is None or isinstance(entry[0], int | float))):
                raise ValueError(f"values.{code}: {entry!r} is not [value or null, flag]")
            values[str(code)] = (None if entry[0] is None else float(entry[0]), entry[1])
        self._snapshot = _Snapshot(None if slot is None else float(slot), values if slot is not None else None)
        return True

    # -- uplink ---------------------------------------------------------------------------
    def new_qn(self, now: float) -> str:
        """A QN for a packet of ours: now, but never equal to an earlier one (the platform's reply names it)."""
        ms = max(round(now * 1000), self._last_qn_ms + 1)
        self._last_qn_ms = ms
        return hj212.qn_of(ms / 1000, self.settings.utc_offset_s)

    def _packet(self, cn: str, groups: Sequence[CpGroup], now: float, qn: str | None = None) -> Packet:
        s = self.settings
        return Packet(
            cn=cn, mn=s.mn, st=s.st, pw=s.pw, qn=qn or self.new_qn(now),
            flag=hj212.flag_bits(s.reply, False, s.version), cp=tuple(groups),
        )

    @property
    def factors(self) -> FactorTable:
        return self._factors if self._factors is not None else factor_table()

    def _wanted(self, node: str) -> bool:
        return not self.settings.nodes or node in self.settings.nodes

    def _scaled(self, code: str, value: float) -> float:
        return value * self.settings.pm_unit_factor if code.startswith(PM_PREFIX) else value

    def records(self, records: Iterable[Record], now: float) -> list[Packet]:
        out: list[Packet] = []
        factors = self.factors
        # Per packet (CN, window start): one aggregate per (node, channel), the highest revision. A backlog can
        # hold a window's first emission and its revision; mixing them sent the revised value under the old flag.
        aggregates: dict[tuple[str, float], dict[tuple[str, str], Aggregate]] = {}
        for record in records:
            if isinstance(record, Reading) and self._wanted(record.node):
                out += self._reading(record, now)
            elif (
                isinstance(record, Aggregate)
                and self._wanted(record.node)
                and record.window in WINDOW_CN
                and (record.kind, record.source, record.statistic) in factors.aggregates
            ):
                group = aggregates.setdefault((WINDOW_CN[record.window], record.start), {})
                key = (record.node, record.channel)
                kept = group.get(key)
                if kept is None or getattr(kept, "revision", 0) <= getattr(record, "revision", 0):
                    group[key] = record
                if getattr(record, "revision", 0):
                    self.counts["revised"] += 1
            else:
                self._without_factors(record)
                self.counts["not_sent"] += 1
        for (cn, start), group in aggregates.items():
            out.append(self._packet(cn, self.aggregate_groups(start, group.values()), now))
        return out

    def _without_factors(self, record: Record) -> None:
        """A record of a kind whose profile declares no HJ 212 factor code: counted, and said once per kind."""
        kind = getattr(record, "kind", "")
        profile = self.factors.without.get(kind)
        if profile is None:
            return
        self.counts["kind_without_factors"] += 1
        if kind not in self._refused:
            self._refused.add(kind)
            log.info("hj212: kind %s has no HJ 212 factor codes (no [hj212] in its profile %s): its readings and "
                     "aggregates are not sent (docs/hj212.md, Factors)", kind, profile)

    def _reading(self, reading: Reading, now: float) -> list[Packet]:
        code = self.factors.realtime.get((reading.kind, reading.channel))
        if code is None:
            self._without_factors(reading)
            self.counts["not_sent"] += 1
            return []
        slot = reading.timestamp - reading.timestamp % self.rtd_interval
        snap = self._snapshot
        out = []
        if snap.slot is not None and slot < snap.slot:
            self.counts["late_realtime"] += 1
            return []
        if snap.slot is not None and slot > snap.slot:
            out = self.flush_realtime(now)
        if self._snapshot.slot is None:
            self._snapshot = _Snapshot(slot, {})
        values = self._snapshot.values
        assert values is not None
        owner = self._owners.setdefault(code, reading.node)
        if owner != reading.node:
            # Two nodes feeding one factor of one MN: the latest wins, and the operator is told (configure
            # one sink per monitoring point with `nodes`).
            if not self.counts["factor_from_two_nodes"]:
                log.warning("hj212: %s and %s both give %s for MN %s; set `nodes` per sink", owner, reading.node,
                            code, self.settings.mn)
            self.counts["factor_from_two_nodes"] += 1
            self._owners[code] = reading.node
        flag = reading.quality.value
        if reading.value is None and reading.quality is Quality.NORMAL:
            flag = Quality.COMMUNICATION_FAILURE.value  # no value is never "normal"
        values[code] = (None if reading.value is None else self._scaled(code, reading.value), flag)
        return out

    def flush_realtime(self, now: float) -> list[Packet]:
        """The snapshot being built, as a 2011 packet (none if it is empty)."""
        snap = self._snapshot
        self._snapshot = _Snapshot()
        if snap.slot is None or not snap.values:
            return []
        groups: list[CpGroup] = [(("DataTime", hj212.data_time(snap.slot, self.settings.utc_offset_s)),)]
        for code, (value, flag) in snap.values.items():
            fields = [] if value is None else [(f"{code}-Rtd", format_value(value))]
            groups.append((*fields, (f"{code}-Flag", flag)))
        self.counts["realtime_packets"] += 1
        return [self._packet(hj212.CN_REALTIME, groups, now)]

    def aggregate_groups(self, start: float, aggregates: Iterable[Aggregate]) -> list[CpGroup]:
        per_code: dict[str, dict[str, str]] = {}
        for agg in aggregates:
            code, suffix = self.factors.aggregates[(agg.kind, agg.source, agg.statistic)]
            fields = per_code.setdefault(code, {})
            if agg.value is not None:
                fields[suffix] = format_value(self._scaled(code, agg.value))
            flag = agg.quality.value
            if agg.value is None and agg.quality is Quality.NORMAL:
                flag = Quality.COMMUNICATION_FAILURE.value
            # A factor's flag is the worst of its statistics': one that is not N wins.
            if fields.get("Flag", "N") == "N":
                fields["Flag"] = flag
        groups: list[CpGroup] = [(("DataTime", hj212.data_time(start, self.settings.utc_offset_s)),)]
        for code, fields in per_code.items():
            ordered = [suffix for suffix in ("Avg", "Min", "Max") if suffix in fields]
            groups.append((*((f"{code}-{s}", fields[s]) for s in ordered), (f"{code}-Flag", fields["Flag"])))
        return groups

    # -- downlink -------------------------------------------------------------------------
    def history_span(self, request: Packet) -> tuple[str, float, float] | None:
        """(window, begin, end) of a well-formed history request, else None (``handle`` says what is wrong).

        Lets the I/O side run the store query off the event loop and pass the rows to ``handle``.
        """
        if request.cn not in CN_WINDOW:
            return None
        try:
            return (CN_WINDOW[request.cn], *self._span(request))
        except FrameError:
            return None

    def _span(self, request: Packet) -> tuple[float, float]:
        offset = self.settings.utc_offset_s
        begin = hj212.parse_time(self._field(request, "BeginTime"), offset, "BeginTime")
        end = hj212.parse_time(self._field(request, "EndTime"), offset, "EndTime")
        if end < begin:
            raise FrameError("bad_field", "EndTime is before BeginTime")
        return begin, end

    def handle(self, request: Packet, now: float, history: History | None = None) -> list[Packet]:
        """What to write back for a packet from the platform (replies to our uploads are not handled here).

        `history` answers a history request instead of the session's own (rows fetched beforehand).
        """
        s = self.settings
        self.counts[f"request_{request.cn}"] += 1
        if request.mn != s.mn:
            return self._refuse(request, hj212.QN_BAD_MN, f"MN {request.mn!r} is not ours ({s.mn!r})")
        if request.pw != s.pw:  # a missing PW is no PW: the decoder is tolerant, authorisation is not
            return self._refuse(request, hj212.QN_BAD_PW, "no password" if request.pw is None else "wrong password")
        try:
            if request.cn == hj212.CN_SET_RTD_INTERVAL:
                return self._set_rtd_interval(request)
            if request.cn == hj212.CN_GET_RTD_INTERVAL:
                data = self._packet(hj212.CN_GET_RTD_INTERVAL, [(("RtdInterval", str(self.rtd_interval)),)], now,
                                    request.qn)
                return self._done(request, [data])
            if request.cn == hj212.CN_SET_TIME:
                return self._set_time(request, now)
            if request.cn in (hj212.CN_GET_TIME, hj212.CN_TIME_REQUEST):
                system_time = hj212.data_time(now, s.utc_offset_s)
                data = self._packet(hj212.CN_GET_TIME, [(("SystemTime", system_time),)], now, request.qn)
                return self._done(request, [data])
            if request.cn in CN_WINDOW:
                return self._history(request, history or self.history)
        except FrameError as error:
            return self._refuse(request, hj212.QN_REJECTED, str(error))
        return self._refuse(request, hj212.QN_BAD_CN, f"CN {request.cn} is not served here")

    def _refuse(self, request: Packet, qn_rtn: int, why: str) -> list[Packet]:
        self.counts["requests_refused"] += 1
        log.warning("hj212: refused CN %s QN %s from the platform: %s", request.cn, request.qn, why)
        return [hj212.request_reply(request, qn_rtn)] if request.wants_reply else []

    def _done(self, request: Packet, data: list[Packet], exe_rtn: int = hj212.EXE_OK) -> list[Packet]:
        ready = [hj212.request_reply(request, hj212.QN_READY)] if request.wants_reply else []
        return [*ready, *data, hj212.execution_result(request, exe_rtn)]

    def _field(self, request: Packet, key: str) -> str:
        value = request.cp_fields().get(key)
        if value is None:
            raise FrameError("missing_field", f"CN {request.cn}: no {key} in CP")
        return value

    def _set_rtd_interval(self, request: Packet) -> list[Packet]:
        text = self._field(request, "RtdInterval")
        low, high = RTD_INTERVAL_RANGE
        if not text.isdigit() or not low <= int(text) <= high:
            raise FrameError("bad_field", f"RtdInterval={text!r}: expected {low} ... {high} seconds")
        log.info("hj212: the platform set RtdInterval from %d to %s s", self.rtd_interval, text)
        self.rtd_interval = int(text)
        return self._done(request, [])

    def _set_time(self, request: Packet, now: float) -> list[Packet]:
        platform = hj212.parse_time(self._field(request, "SystemTime"), self.settings.utc_offset_s, "SystemTime")
        self.clock_offset = platform - now
        # Acknowledged but not applied: see the module's docstring.
        log.warning(
            "hj212: the platform asks to set the clock to %s: %+.1f s from ours; not applied (NTP keeps the clock)",
            request.cp_fields()["SystemTime"], self.clock_offset,
        )
        return self._done(request, [])

    def _history(self, request: Packet, history: History | None) -> list[Packet]:
        begin, end = self._span(request)
        found = [a for a in (history(CN_WINDOW[request.cn], begin, end) if history else ())
                 if self._wanted(a.node) and (a.kind, a.source, a.statistic) in self.factors.aggregates]
        by_start: dict[float, list[Aggregate]] = {}
        for agg in found:
            by_start.setdefault(agg.start, []).append(agg)
        data = [
            # History answers carry the request's QN: the platform matches them to its request.
            Packet(cn=request.cn, mn=self.settings.mn, st=self.settings.st, pw=self.settings.pw, qn=request.qn,
                   flag=hj212.flag_bits(False, False, self.settings.version),
                   cp=tuple(self.aggregate_groups(start, by_start[start])))
            for start in sorted(by_start)
        ]
        self.counts["history_packets"] += len(data)
        return self._done(request, data, hj212.EXE_OK if data else hj212.EXE_NO_DATA)
