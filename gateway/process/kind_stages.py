"""The processing a kind profile declares (gateway/profiles/kinds.py): limits defaults, mean windows, alarms.

A shipped kind's aggregators and alarms are code (pm, noise, wind, tilt);
a kind added as a profile gets generic ones instead, registered here under
names the config can use like any other stage:

- its measuring ranges, stuck times and spike floors join the limits'
  defaults (gateway/process/limits.py DEFAULT_RANGES ...);
- ``[stages] mean_channels / mean_windows``: an aggregator named after the
  kind, the mean/min/max/count of each channel per window (the PM
  aggregator's statistics, gateway/process/pm.py);
- ``[[alarm]]``: an alarm per entry, raising when a watched channel reaches
  its limit, with the entry's pre-warning, hysteresis margin and hold time as
  defaults that the config's ``[[processing.alarm]]`` table may override.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.process.alarms import AlarmDefinition, Levels, _definition
from gateway.process.limits import DEFAULT_HAMPEL_FLOOR, DEFAULT_RANGES, DEFAULT_STUCK_S, LimitsResolver, SiteLimits
from gateway.process.pm import PmAggregator
from gateway.process.registry import AGGREGATORS, ALARMS, AggregatorFactory, AlarmFactory
from gateway.profiles.kinds import KindProfile, ThresholdAlarm


class KindStageError(ValueError):
    """A profile's settings clash with a kind already installed (a shared channel with another range)."""


def install_limits(profile: KindProfile) -> None:
    for table, values in ((DEFAULT_RANGES, profile.ranges), (DEFAULT_STUCK_S, profile.stuck_s),
                          (DEFAULT_HAMPEL_FLOOR, profile.hampel_floor)):
        for channel, value in values.items():
            if table.get(channel, value) != value:
                raise KindStageError(f"{profile.path}: {channel}: {value} differs from the {table.get(channel)} "
                                     "another kind gives this channel")
            table[channel] = value  # type: ignore[assignment]


def mean_aggregator(profile: KindProfile) -> AggregatorFactory:
    def make(
        limits: LimitsResolver,
        channels: Sequence[str] = profile.mean_channels,
        windows: Sequence[str] = profile.mean_windows,
    ) -> PmAggregator:
        return PmAggregator(limits, channels, windows)

    return make


def threshold_alarm(spec: ThresholdAlarm) -> AlarmFactory:
    def make(
        limits: LimitsResolver,
        name: str = spec.name,
        channels: Sequence[str] = spec.channels,
        nodes: Sequence[str] = (),
        alarm: float = spec.alarm,
        prewarning: float | None = spec.prewarning,
        margin: float = spec.margin,
        hold_s: float = spec.hold_s,
    ) -> list[AlarmDefinition]:
        levels_now = Levels(float(alarm), None if prewarning is None else float(prewarning), float(margin),
                            float(hold_s))

        def levels(site: SiteLimits, t: float) -> Levels:
            return levels_now

        return _definition(name, channels, nodes, levels, spec.source, spec.unit, spec.description, timeless=True)

    return make


def install_stages(profile: KindProfile) -> None:
    """Make the profile's limits defaults, mean aggregator and alarms known (once per process)."""
    install_limits(profile)
    if profile.mean_channels and profile.name not in AGGREGATORS:
        AGGREGATORS.register(profile.name)(mean_aggregator(profile))
    for spec in profile.alarms:
        if spec.name not in ALARMS:
            ALARMS.register(spec.name)(threshold_alarm(spec))
