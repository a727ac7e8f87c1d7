"""Processors: a reading in, readings out, with the quality flag adjusted.

Rules every processor keeps:

* A reading is never mutated; a changed one is a new Reading.
* A missing value stays missing: nothing here fills a gap with the last good
  value (domain.md section 6).
* A processor only downgrades a reading whose flag is still N (the stuck
  check also T: a value frozen at saturation): a reading the acquire stage
  already flagged B or D keeps that flag.
* The value of a flagged reading is kept, so sinks can still send it with
  its flag; aggregators leave every reading flagged other than N or T out
  of their statistics (T, over range, is information: docs/data-quality.md).

Each processor here takes a whole poll at once (``process_poll``: the readings
of one node's sample, as the pipeline gets them) and looks the node's limits
up once per poll, through a per-node plan (``NodePlans``), not once per reading
(issue 13: four processors each asking for the node's limits per reading were
a fifth of the processing stage). ``process(reading)`` is ``process_poll([reading])``:
every reading meets the same checks in the same order either way. The default
chain (these four, default options) runs as one pass over a poll: ``DefaultChecks``.

Registered names: ``range``, ``hampel``, ``stuck``, ``humidity``, ``units``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from firmware import humidity as firmware_humidity
from gateway.model import Quality, Reading
from gateway.process.aggregate import USABLE, is_valid, str_tuple
from gateway.process.limits import HumidityLimits, LimitsError, LimitsResolver, NodePlans
from gateway.process.registry import PROCESSORS, Processor

# Scale of the median absolute deviation to a standard deviation for normal data.
MAD_TO_SIGMA = 1.4826


def median(values: Sequence[float]) -> float:
    """statistics.median, without its generality (it is called twice per judged PM reading)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def chain(processors: Sequence[Processor], reading: Reading) -> list[Reading]:
    """Run a reading through processors in order; each output of one feeds the next."""
    batch = [reading]
    for processor in processors:
        batch = [out for item in batch for out in processor.process(item)]
    return batch


def _quality(value: str, what: str) -> Quality:
    try:
        return Quality(value)
    except ValueError:
        raise LimitsError(f"{what}: {value!r} is not an HJ 212 flag ({', '.join(q.value for q in Quality)})") from None


def _channels(value: Iterable[str] | None, what: str) -> frozenset[str] | None:
    return None if value is None else frozenset(str_tuple(value, what))


@PROCESSORS.register("range")
class RangeCheck:
    """Flag T (over range) outside the channel's measuring range (limits.quality.ranges).

    NaN and infinities are flagged T on every channel: no sensor measures them.
    """

    def __init__(self, limits: LimitsResolver, channels: Sequence[str] | None = None) -> None:
        self.plans = NodePlans(limits, lambda site: dict(site.quality.ranges))  # a dict: faster than the proxy
        self._channels = _channels(channels, "range.channels")

    def process(self, reading: Reading) -> list[Reading]:
        return self.process_poll([reading])

    def process_poll(self, readings: list[Reading]) -> list[Reading]:
        out = readings  # copied only when a flag changes
        only = self._channels
        node: str | None = None
        ranges: Mapping[str, tuple[float, float]] = {}
        for i, r in enumerate(readings):
            value = r.value
            if value is None or r.quality is not Quality.NORMAL or (only is not None and r.channel not in only):
                continue
            if r.node != node:
                node = r.node
                ranges = self.plans(node)
            bounds = ranges.get(r.channel)
            if math.isfinite(value) and (bounds is None or bounds[0] <= value <= bounds[1]):
                continue
            if out is readings:
                out = readings.copy()
            out[i] = r.with_quality(Quality.OVER_RANGE)
        return out


@PROCESSORS.register("hampel")
class HampelFilter:
    """Spike rejection: a Hampel filter over a trailing window.

    The window is the `hampel_window` normal values of the channel taken just
    before the sample (spikes included, so that a real step in the level is
    accepted once it fills half the window). A value further than ``max(n_sigmas
    * 1.4826 * MAD, floor)`` from the window's median is a spike and is flagged
    (default D). The floor keeps quantised, nearly constant data (MAD = 0)
    from turning every small change into a spike; channels without a floor
    in limits.quality.hampel_floor are not filtered. The window is trailing,
    not centred: a centred window would delay every reading by half its
    length. It is trailing in sample time, not in arrival order: a backfilled
    sample is judged against its own neighbours, not against the live samples
    that arrived before it (the level may have changed in between), so it
    gets the flag it would have had live.
    """

    # Judged values kept per channel, in sample time: a backfill reaches back a node's history ring (600
    # samples) while live samples keep arriving.
    KEPT = 1024

    def __init__(self, limits: LimitsResolver, flag: str = "D") -> None:
        # Per node: (floors by channel, window size, n_sigmas * MAD_TO_SIGMA).
        self.plans = NodePlans(limits, lambda site: (
            dict(site.quality.hampel_floor), site.quality.hampel_window, site.quality.hampel_sigmas * MAD_TO_SIGMA
        ))
        self._flag = _quality(flag, "hampel.flag")
        self._kept: dict[tuple[str, str], tuple[list[float], list[float]]] = {}  # (times, values), by time

    def process(self, reading: Reading) -> list[Reading]:
        return self.process_poll([reading])

    def process_poll(self, readings: list[Reading]) -> list[Reading]:
        out = readings  # copied only when a flag changes
        node: str | None = None  # not "": a node may be called that, and would then never be filtered
        floors: Mapping[str, float] = {}
        size, scale = 0, 0.0
        for i, r in enumerate(readings):
            if r.node != node:
                node = r.node
                floors, size, scale = self.plans(node)
            floor = floors.get(r.channel)
            value = r.value
            if floor is None or value is None or r.quality is not Quality.NORMAL:
                continue
            if self._judge(r, value, floor, size, scale):
                if out is readings:
                    out = readings.copy()
                out[i] = r.with_quality(self._flag)
        return out

    def _judge(self, r: Reading, value: float, floor: float, size: int, scale: float) -> bool:
        """Whether r's value is a spike against the window of values before it; it joins the window either way.

        One place for the judgment, for this filter and for the default processors' one pass (DefaultChecks)."""
        # _series, _position and _keep's append, inlined for a live sample (the latest): issue 13
        t = r.timestamp
        series = self._kept.get((r.node, r.channel))
        times, values = self._series(r) if series is None else series
        live = not times or t >= times[-1]
        at = len(times) if live else bisect.bisect_right(times, t)
        spike = False
        if at >= size:
            window = values[at - size : at]
            middle = median(window)
            deviation = abs(value - middle)
            # The threshold is max(scale * MAD, floor), never below the floor: a value within the floor
            # of the median is no spike whatever the MAD, which is then not worked out (nearly every
            # judged reading; the MAD was a second sort and a list per reading, issue 13). NaN compares
            # false here and takes the full test, as before.
            if deviation > floor:
                mad = median([abs(x - middle) for x in window])
                spike = deviation > max(scale * mad, floor)
        if live and len(times) < self.KEPT + 64:
            times.append(t)
            values.append(value)
        else:
            self._keep(times, values, at, t, value)
        return spike

    def _series(self, reading: Reading) -> tuple[list[float], list[float]]:
        key = (reading.node, reading.channel)
        series = self._kept.get(key)
        if series is None:
            series = self._kept[key] = ([], [])
        return series

    def _keep(self, times: list[float], values: list[float], at: int, t: float, value: float) -> None:
        if at == len(times):
            times.append(t)
            values.append(value)
        else:
            times.insert(at, t)
            values.insert(at, value)
        if len(times) > self.KEPT + 64:  # trimmed in steps: one list shift per 64 samples
            del times[:-self.KEPT], values[:-self.KEPT]

    def warm(self, reading: Reading) -> None:
        """At a restart: take in a queued (already processed) reading as the window took it in then.

        The window held every N value it judged, spikes included: queued, those are N, or the
        filter's flag with the value kept (the decoder's D readings carry none). A value the stuck
        check flagged later looks the same and is taken in too (what it judged was N, or a T frozen
        at saturation: the one case this gets wrong).
        """
        floor = self.plans(reading.node)[0].get(reading.channel)
        if floor is None or reading.value is None or reading.quality not in (Quality.NORMAL, self._flag):
            return
        times, values = self._series(reading)
        self._keep(times, values, _position(times, reading.timestamp), reading.timestamp, reading.value)


def _position(times: list[float], t: float) -> int:
    """Where a sample taken at t goes among samples sorted by time (after equal times); live ones go last."""
    return len(times) if not times or t >= times[-1] else bisect.bisect_right(times, t)


@PROCESSORS.register("stuck")
class StuckCheck:
    """Flag D when a channel has held the same value (within a tolerance) for too long.

    The run starts at the first sample of the value; once it is older than
    limits.quality.stuck_s[channel], every further sample of the run is
    flagged until the value changes. Missing samples neither extend nor
    break a run.
    """

    def __init__(self, limits: LimitsResolver, flag: str = "D") -> None:
        # Per node: (stuck times by channel, tolerance).
        self.plans = NodePlans(limits, lambda site: (dict(site.quality.stuck_s), site.quality.stuck_tolerance))
        self._flag = _quality(flag, "stuck.flag")
        self._runs: dict[tuple[str, str], tuple[float, float]] = {}  # (node, channel) -> (value, since)

    def process(self, reading: Reading) -> list[Reading]:
        return self.process_poll([reading])

    def process_poll(self, readings: list[Reading]) -> list[Reading]:
        out = readings  # copied only when a flag changes
        runs = self._runs
        node: str | None = None
        durations: Mapping[str, float] = {}
        tolerance = 0.0
        for i, r in enumerate(readings):
            if r.node != node:
                node = r.node
                durations, tolerance = self.plans(node)
            duration = durations.get(r.channel)
            value = r.value
            if not duration or value is None:
                continue
            key = (node, r.channel)
            run = runs.get(key)
            if run is None or abs(value - run[0]) > tolerance or r.timestamp < run[1]:
                runs[key] = (value, r.timestamp)
                continue
            # Over-range values count in statistics and alarms: one frozen at saturation is flagged as well.
            if r.timestamp - run[1] >= duration and r.quality in USABLE:
                if out is readings:
                    out = readings.copy()
                out[i] = r.with_quality(self._flag)
        return out

    def warm(self, reading: Reading) -> None:
        """At a restart: follow the run of equal values through the queued readings (their values are kept)."""
        self.process(reading)


def humidity_growth_factor(rh_percent: float, kappa: float) -> float:
    """kappa-Koehler growth factor: the node's own implementation (firmware/humidity.py), not a second one.

    One formula and one cap (RH held at firmware.humidity.RH_MAX, 95 %) wherever
    the correction runs, so a node-corrected and a gateway-corrected value agree.
    """
    return float(firmware_humidity.growth_factor(rh_percent, kappa))


@PROCESSORS.register("humidity")
class HumidityFlag:
    """Flag optical PM samples taken in humid air, and optionally correct them.

    Reading has no field for such a flag, and high humidity does not make a
    measurement invalid (the HJ 212 flags do not fit), so the flag is a
    reading of its own: every humidity reading of a node is followed by a
    `flag_channel` reading (default ``pm_humid``) that is 1.0 when RH >
    limits.humidity.rh_flag_threshold, 0.0 otherwise, and has no value
    (with the humidity reading's failure flag) when RH is unknown.

    With limits.humidity.correction on, every PM reading is followed by a
    ``<channel><dry_suffix>`` reading (default ``pm10_dry``) corrected with
    the node's latest humidity taken at or before the PM sample (by sample
    time, so a backfilled sample gets the humidity of its own time), if that
    is at most max_age_s older; the raw
    reading passes unchanged. Without a recent humidity the corrected
    reading has no value and flag B.
    """

    def __init__(
        self,
        limits: LimitsResolver,
        pm_channels: Sequence[str] = ("pm25", "pm10", "pm1"),
        humidity_channel: str = "humidity",
        flag_channel: str = "pm_humid",
        dry_suffix: str = "_dry",
    ) -> None:
        self.plans = NodePlans(limits, lambda site: site.humidity)
        self._pm = frozenset(str_tuple(pm_channels, "humidity.pm_channels"))
        self._humidity = humidity_channel
        self._flag = flag_channel
        if not dry_suffix:
            raise LimitsError("humidity.dry_suffix must not be empty: the raw reading is never replaced")
        self._suffix = dry_suffix
        # Per node, the humidity of its recent samples by sample time (None: unknown then): a PM sample is
        # corrected with the humidity measured at or just before it, also when a backfill brings it late.
        self._humidity_at: dict[str, tuple[list[float], list[float | None]]] = {}

    def process(self, reading: Reading) -> list[Reading]:
        return self.process_poll([reading])

    def process_poll(self, readings: list[Reading]) -> list[Reading]:
        out: list[Reading] = []
        humidity, pm = self._humidity, self._pm
        node: str | None = None
        settings: HumidityLimits | None = None
        for r in readings:
            out.append(r)
            channel = r.channel
            if channel != humidity and channel not in pm:
                continue
            if r.node != node or settings is None:
                node = r.node
                settings = self.plans(node)
            if channel == humidity:
                out.append(self._flag_reading(r, settings.rh_flag_threshold))
            elif settings.correction:
                out.append(self._dry_reading(r, settings.kappa, settings.max_age_s))
        return out

    def _remember(self, reading: Reading, rh: float | None) -> None:
        times, values = self._humidity_at.setdefault(reading.node, ([], []))
        at = _position(times, reading.timestamp)
        times.insert(at, reading.timestamp)
        values.insert(at, rh)
        if len(times) > HampelFilter.KEPT + 64:  # as far back as a backfill reaches, trimmed in steps
            del times[: -HampelFilter.KEPT], values[: -HampelFilter.KEPT]

    def _humidity_before(self, node: str, t: float) -> tuple[float | None, float] | None:
        """(RH %, its time) of the node's latest humidity reading at or before t, if any."""
        series = self._humidity_at.get(node)
        at = 0 if series is None else _position(series[0], t)
        if series is None or at == 0:
            return None
        return series[1][at - 1], series[0][at - 1]

    def _flag_reading(self, reading: Reading, threshold: float) -> Reading:
        if is_valid(reading):
            assert reading.value is not None
            self._remember(reading, reading.value)
            value: float | None = 1.0 if reading.value > threshold else 0.0
            quality = Quality.NORMAL
        else:
            self._remember(reading, None)
            value = None
            quality = Quality.COMMUNICATION_FAILURE if reading.quality is Quality.NORMAL else reading.quality
        r = reading  # the constructor, not dataclasses.replace: once per humidity reading
        return Reading(r.node, r.kind, self._flag, value, "", quality, r.timestamp, r.sequence)

    def _dry_reading(self, reading: Reading, kappa: float, max_age_s: float) -> Reading:
        channel = reading.channel + self._suffix
        latest = self._humidity_before(reading.node, reading.timestamp)
        r = reading  # the constructor, not dataclasses.replace: once per PM reading with the correction on
        if latest is None or latest[0] is None or r.timestamp - latest[1] > max_age_s:
            return Reading(r.node, r.kind, channel, None, r.unit, Quality.COMMUNICATION_FAILURE, r.timestamp,
                           r.sequence)
        value = None if r.value is None else r.value / humidity_growth_factor(latest[0], kappa)
        return Reading(r.node, r.kind, channel, value, r.unit, r.quality, r.timestamp, r.sequence)


class DefaultChecks:
    """The default processors (range, hampel, stuck, humidity, each with its default options) in one pass.

    The four in turn loop over a poll four times, mostly to find a reading is not their channel (issue
    13). This takes each reading through the four steps before the next, with the processors' own plans
    and memory (the spike windows, the runs, the humidity by time), so ``warm`` and anything else that
    reads the processors see what the four in turn would have left. ``process_poll`` gives the same list.

    Why reading by reading is the same as processor by processor: the range check keeps no state; the
    spike filter and the stuck check keep theirs per (node, channel), and each reading of a channel meets
    the same earlier readings of that channel either way; the humidity step keeps, per node, what the
    humidity readings said after the first three steps, and a PM reading reads what the humidity readings
    before it in the poll left, either way. No step reads another step's state. The plans are asked for
    under the same conditions as each processor asks for them, so the same nodes' plans exist afterwards.

    Only for exactly these four classes in this order with their defaults (``of``): another option (the
    range check on some channels only) or a subclass goes through the processors in turn.
    """

    def __init__(
        self, range_check: RangeCheck, hampel: HampelFilter, stuck: StuckCheck, humidity: HumidityFlag
    ) -> None:
        self._range, self._hampel, self._stuck, self._humidity = range_check, hampel, stuck, humidity
        # One set test per reading instead of two to find the readings the humidity step acts on.
        self._humidity_or_pm = humidity._pm | {humidity._humidity}

    @property
    def processors(self) -> tuple[RangeCheck, HampelFilter, StuckCheck, HumidityFlag]:
        """The four processors whose state the one pass keeps, in their order."""
        return self._range, self._hampel, self._stuck, self._humidity

    @classmethod
    def of(cls, processors: Sequence[object]) -> DefaultChecks | None:
        """The one pass over these processors if they are the default four with their default options, else None."""
        if len(processors) != 4:
            return None
        range_check, hampel, stuck, humidity = processors
        if not (type(range_check) is RangeCheck and type(hampel) is HampelFilter and type(stuck) is StuckCheck
                and type(humidity) is HumidityFlag):
            return None  # a subclass may judge otherwise
        given = cls(range_check, hampel, stuck, humidity)
        limits = range_check.plans.limits
        defaults = cls(RangeCheck(limits), HampelFilter(limits), StuckCheck(limits), HumidityFlag(limits))
        return given if given._options() == defaults._options() else None

    def _options(self) -> tuple[object, ...]:
        """What the four were built with (beyond the limits)."""
        humidity = self._humidity
        return (self._range._channels, self._hampel._flag, self._stuck._flag, humidity._pm, humidity._humidity,
                humidity._flag, humidity._suffix)

    def process_poll(self, readings: list[Reading]) -> list[Reading]:
        """range, hampel, stuck and humidity's ``process_poll`` in turn, reading by reading (see the class)."""
        # Everything a reading needs is a local: this runs for every reading the gateway gets.
        normal, over_range, usable, isfinite = Quality.NORMAL, Quality.OVER_RANGE, USABLE, math.isfinite
        range_plans = self._range.plans
        hampel = self._hampel
        hampel_plans, judge, spike_flag = hampel.plans, hampel._judge, hampel._flag
        stuck = self._stuck
        stuck_plans, runs, stuck_flag = stuck.plans, stuck._runs, stuck._flag
        humidity = self._humidity
        humidity_plans, humidity_channel, humidity_or_pm = humidity.plans, humidity._humidity, self._humidity_or_pm
        out: list[Reading] = []
        append = out.append
        node: str | None = None
        ranges: Mapping[str, tuple[float, float]] | None = None
        floors: Mapping[str, float] = {}
        size, scale = 0, 0.0
        durations: Mapping[str, float] = {}
        tolerance = 0.0
        settings: HumidityLimits | None = None
        for r in readings:
            if r.node != node:
                node = r.node
                # The spike filter and the stuck check ask for every reading's node; the range check only
                # for a reading it judges, the humidity step for a humidity or PM reading: asked for then.
                floors, size, scale = hampel_plans(node)
                durations, tolerance = stuck_plans(node)
                ranges = settings = None
            channel = r.channel
            value = r.value
            if value is not None:
                quality = r.quality
                if quality is normal:
                    # Range check.
                    if ranges is None:
                        ranges = range_plans(r.node)
                    bounds = ranges.get(channel)
                    if isfinite(value) and (bounds is None or bounds[0] <= value <= bounds[1]):
                        # Spike filter: only what the range check left N (HampelFilter._judge, as its process_poll).
                        floor = floors.get(channel)
                        if floor is not None and judge(r, value, floor, size, scale):
                            r = r.with_quality(spike_flag)
                            quality = spike_flag
                    else:
                        r = r.with_quality(over_range)
                        quality = over_range
                # Stuck check: every reading with a value makes or follows a run, whatever its flag; it judges
                # N and T (after the two steps above).
                duration = durations.get(channel)
                if duration:
                    key = (r.node, channel)
                    run = runs.get(key)
                    t = r.timestamp
                    if run is None or abs(value - run[0]) > tolerance or t < run[1]:
                        runs[key] = (value, t)
                    elif t - run[1] >= duration and quality in usable:
                        r = r.with_quality(stuck_flag)
            # Humidity: the reading, then its flag reading (humidity) or its dry reading (PM, correction on).
            append(r)
            if channel in humidity_or_pm:
                if settings is None:
                    settings = humidity_plans(r.node)
                if channel == humidity_channel:
                    append(humidity._flag_reading(r, settings.rh_flag_threshold))
                elif settings.correction:
                    append(humidity._dry_reading(r, settings.kappa, settings.max_age_s))
        return out


# The unit conversion hook: (from unit, to unit) -> function. Add a pair with
# register_conversion(); the "units" processor looks pairs up here.
CONVERSIONS: dict[tuple[str, str], Callable[[float], float]] = {
    ("ug/m3", "mg/m3"): lambda v: v / 1000.0,  # HJ 212 platforms differ on PM units (domain.md section 6)
    ("mg/m3", "ug/m3"): lambda v: v * 1000.0,
    ("mdeg", "deg"): lambda v: v / 1000.0,
    ("deg", "mdeg"): lambda v: v * 1000.0,
    ("kPa", "hPa"): lambda v: v * 10.0,
    ("hPa", "kPa"): lambda v: v / 10.0,
    ("degC", "K"): lambda v: v + 273.15,
    ("m/s", "km/h"): lambda v: v * 3.6,
    ("permille", "deg"): lambda v: math.degrees(math.atan(v / 1000.0)),  # slope = 1000 * tan(angle)
    ("deg", "permille"): lambda v: 1000.0 * math.tan(math.radians(v)),
}


class UnitError(LookupError):
    """No conversion between two units is registered."""


def register_conversion(from_unit: str, to_unit: str, function: Callable[[float], float]) -> None:
    CONVERSIONS[(from_unit, to_unit)] = function


@PROCESSORS.register("units")
class UnitConversion:
    """Convert channels to the units a sink wants: ``to = {pm10 = "mg/m3"}``.

    A reading already in the target unit passes unchanged. A reading whose
    unit has no registered conversion to the target raises UnitError: that
    is a config mistake, and converting nothing while relabelling the unit
    would be worse.
    """

    def __init__(self, limits: LimitsResolver, to: Mapping[str, str]) -> None:
        del limits  # units are not site-dependent
        if not isinstance(to, Mapping) or not all(isinstance(v, str) for v in to.values()):
            raise LimitsError(f"units.to: expected a table of channel = unit, got {to!r}")
        targets = {pair[1] for pair in CONVERSIONS}
        for channel, unit in to.items():
            if unit not in targets:
                raise UnitError(f"units.to.{channel}: nothing converts to {unit!r}")
        self._to = dict(to)

    def process(self, reading: Reading) -> list[Reading]:
        target = self._to.get(reading.channel)
        if target is None or target == reading.unit:
            return [reading]
        function = CONVERSIONS.get((reading.unit, target))
        if function is None:
            raise UnitError(f"{reading.node}/{reading.channel}: no conversion from {reading.unit!r} to {target!r}")
        value = None if reading.value is None else function(reading.value)
        return [replace(reading, value=value, unit=target)]
