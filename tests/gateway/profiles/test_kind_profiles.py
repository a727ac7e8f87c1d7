"""Kind profiles (gateway/profiles/kinds.py): the shipped four, what a broken one is told, the generic pieces.

Nothing here installs a kind into the process (that changes process-wide registries): the loader is
exercised on its own, the walk model and the generic stages are built directly. The end-to-end proof
is tests/gateway/profiles/test_new_kind.py.
"""

from __future__ import annotations

import random
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import regmap
from gateway.model import Quality, Reading
from gateway.ops.config import ConfigError, parse_config
from gateway.process.alarms import AlarmSet, Severity
from gateway.process.kind_stages import mean_aggregator, threshold_alarm
from gateway.process.limits import DEFAULT_RANGES, LimitsResolver
from gateway.profiles.kinds import (
    AlarmText,
    Hj212Factors,
    KindProfileError,
    ThresholdAlarm,
    WalkChannel,
    alarm_texts,
    kind_profiles,
    load_kind_profile,
    shipped_profile_paths,
)
from simulator.physics.walk import WalkModel, WalkParams

KIND_MODULE = """U16 = 0
CODE = 202
NAME = "pit"
ADAPTER = "firmware.pit_sensor"
MEASUREMENTS = (("depth", 16, U16, 1000, "m"),)
HOLDING = ()
COILS = ()
AUX_CHANNELS = ()
"""

PROFILE = """kind = "pit"
[registers]
depth = "water depth"
[ranges]
depth = [0.0, 10.0]
[stages]
mean_channels = ["depth"]
mean_windows = ["1min"]
[[alarm]]
name = "pit_high"
channels = ["depth_1min_mean"]
alarm = 2.0
[firmware]
sensor = { module = "firmware.pit_sensor" }
[simulator]
model = "walk"
[simulator.channels.depth]
mean = 1.0
low = 0.0
high = 10.0
"""


def write(folder: Path, profile: str = PROFILE, module: str = KIND_MODULE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kind_pit.py").write_text(module)
    path = folder / "pit.toml"
    path.write_text(profile)
    return path


def test_the_shipped_kinds_are_the_register_maps_and_their_profiles_describe_every_register() -> None:
    profiles = kind_profiles()
    assert sorted(profiles) == sorted(str(n) for n in regmap.KIND_NAMES.values()) == ["dust", "noise", "tilt", "wind"]
    assert [p.stem for p in shipped_profile_paths()] == ["dust", "noise", "tilt", "wind"]
    for name, profile in profiles.items():
        assert profile.code == regmap.KIND_CODES[name]
        assert set(profile.descriptions) == set(profile.register_names)
        assert profile.simulator == "physics" and profile.aggregators
    assert profiles["dust"].relay is not None and profiles["wind"].relay is None
    assert DEFAULT_RANGES["wind_dir"] == (0.0, 360.0)  # the limits' defaults come from the profiles


def test_a_well_formed_folder_kind_loads_with_its_generic_stages_and_walk(tmp_path: Path) -> None:
    profile = load_kind_profile(write(tmp_path))
    assert (profile.name, profile.code, profile.mean_channels, profile.mean_windows) == ("pit", 202, ("depth",),
                                                                                         ("1min",))
    assert profile.alarms == (ThresholdAlarm("pit_high", ("depth_1min_mean",), 2.0),)
    assert profile.walk["depth"] == WalkChannel(mean=1.0, low=0.0, high=10.0)
    assert "pit" not in regmap.KIND_CODES and "firmware.kind_pit" not in sys.modules  # loading is not installing


def test_the_words_and_hj212_codes_of_a_profile_and_their_defaults(tmp_path: Path) -> None:
    bare = load_kind_profile(write(tmp_path / "bare"))
    assert dict(bare.label) == {"zh": "pit", "en": "pit"} and bare.report_title == "pit pit"
    assert bare.hj212 == Hj212Factors() and bare.report_channels == ()
    assert bare.alarm_texts["pit_high"] == AlarmText("pit_high", "pit_high", "pit_high")  # no description: its name
    worded = load_kind_profile(write(tmp_path / "worded", PROFILE + (
        '[label]\nzh = "基坑"\nen = "pit"\n[hj212]\nrealtime = { depth = "w01" }\n'
        '[alarm_text.pit_high]\nzh = "基坑水位高"\n')))
    assert worded.report_title == "基坑 pit"
    # Without an aggregates table, the real-time channels' mean / min / max go out as -Avg / -Min / -Max.
    assert dict(worded.hj212.aggregates) == {("depth", "mean"): ("w01", "Avg"), ("depth", "min"): ("w01", "Min"),
                                             ("depth", "max"): ("w01", "Max")}
    assert worded.alarm_texts["pit_high"] == AlarmText("基坑水位高", "pit_high", "基坑水位高 pit_high")
    explicit = load_kind_profile(write(tmp_path / "explicit", PROFILE + (
        '[hj212]\nrealtime = { depth = "w01" }\naggregates = { "depth.p90" = "w01-Max" }\n')))
    assert dict(explicit.hj212.aggregates) == {("depth", "p90"): ("w01", "Max")}


def test_the_shipped_kinds_words_cover_every_shipped_alarm() -> None:
    """Every alarm the code registers has its words in a kind profile (the notifications, page and report)."""
    from gateway.process.registry import ALARMS

    assert set(ALARMS.names()) <= set(alarm_texts())


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda p: p.replace('kind = "pit"', 'kind = "pond"'), "kind"),
        (lambda p: p.replace('depth = "water depth"', 'dept = "water depth"'), "registers.dept"),
        (lambda p: p.replace('depth = "water depth"\n', ""), "registers.depth"),
        (lambda p: p.replace("depth = [0.0, 10.0]", "depth = [10.0, 0.0]"), "ranges.depth"),
        (lambda p: p.replace('mean_channels = ["depth"]', 'mean_channels = ["level"]'), "stages.mean_channels[0]"),
        (lambda p: p.replace("alarm = 2.0", 'alarm = "high"'), "alarm[0].alarm"),
        (lambda p: p.replace("alarm = 2.0", "alarm = 2.0\nprewarning = 3.0"), "alarm[0].prewarning"),
        (lambda p: p.replace('model = "walk"', 'model = "tides"'), "simulator.model"),
        (lambda p: p.replace("mean = 1.0", "mean = 11.0"), "simulator.channels.depth"),
        (lambda p: p.replace("[stages]", "[stage]"), "stage"),
        (lambda p: p.replace('sensor = { module = "firmware.pit_sensor" }', "sensor = {}"), "firmware.sensor.module"),
        (lambda p: p + '[hj212]\nrealtime = { level = "a01001" }\n', "hj212.realtime.level"),
        (lambda p: p + '[hj212]\nrealtime = { depth = "a01;001" }\n', "hj212.realtime.depth"),
        (lambda p: p + '[hj212]\naggregates = { "depth.mean" = "w01-Rtd" }\n', 'hj212.aggregates."depth.mean"'),
        (lambda p: p + '[hj212]\naggregates = { "depth" = "w01-Avg" }\n', 'hj212.aggregates."depth"'),
        (lambda p: p + '[label]\nzh = ""\n', "label.zh"),
        (lambda p: p + '[label]\nfr = "fosse"\n', "label.fr"),
        (lambda p: p + '[report]\nchannels = ["level"]\n', "report.channels[0]"),
        (lambda p: p + '[alarm_text.pit_high]\nde = "Grube"\n', "alarm_text.pit_high.de"),
    ],
)
def test_a_broken_profile_is_refused_naming_its_file_and_key(tmp_path: Path, change: object, key: str) -> None:
    assert callable(change)
    path = write(tmp_path, change(PROFILE))
    with pytest.raises(KindProfileError) as raised:
        load_kind_profile(path)
    assert str(raised.value).startswith(f"{path}: {key}:"), raised.value


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda m: m.replace('NAME = "pit"', 'NAME = "well"'), "NAME"),
        (lambda m: m.replace("(\"depth\", 16,", "(\"depth\", 17,"), "MEASUREMENTS[0]: address 17, expected 16"),
        (lambda m: m.replace("COILS = ()\n", ""), "COILS: missing"),
        (lambda m: m + "1 / 0\n", "division by zero"),
    ],
)
def test_a_broken_firmware_module_is_refused_naming_its_file(tmp_path: Path, change: object, problem: str) -> None:
    assert callable(change)
    path = write(tmp_path / "k", module=change(KIND_MODULE))
    with pytest.raises(KindProfileError) as raised:
        load_kind_profile(path)
    assert problem in str(raised.value) and str(tmp_path / "k" / "kind_pit.py") in str(raised.value)


def test_a_config_naming_a_broken_kind_folder_says_which_file_and_key(tmp_path: Path) -> None:
    write(tmp_path / "kinds", PROFILE.replace("depth = [0.0, 10.0]", "depth = [0.0]"))
    config = tmp_path / "gateway.toml"
    text = '[kinds]\ndirs = ["kinds"]\n[clock]\nrequire_sync = "never"\n'
    with pytest.raises(ConfigError) as raised:
        parse_config(tomllib.loads(text), str(config))
    message = str(raised.value)
    assert "kinds.dirs" in message and f"{tmp_path / 'kinds' / 'pit.toml'}: ranges.depth" in message
    with pytest.raises(ConfigError, match=r"kinds\.dirs.*missing.*does not exist"):
        parse_config(tomllib.loads('[kinds]\ndirs = ["missing"]\n'), str(config))


def test_a_kind_clashing_with_a_shipped_code_is_refused_by_the_register_map(tmp_path: Path) -> None:
    class Clash:
        CODE = regmap.KIND_DUST
        NAME = "pit"
        ADAPTER = "firmware.pit_sensor"
        MEASUREMENTS = (("depth", 16, 0, 1000, "m"),)
        HOLDING = ()
        COILS = ()
        AUX_CHANNELS = ()

    with pytest.raises(ValueError, match="kind pit \\(1\\) clashes with kind dust"):
        regmap.add_kind(Clash)
    assert "pit" not in regmap.KIND_CODES and regmap.KIND_NAMES[regmap.KIND_DUST] == "dust"


# -- the generic stages ------------------------------------------------------------------------------------------


def reading(channel: str, value: float, t: float) -> Reading:
    return Reading("pit-1", "pit", channel, value, "m", Quality.NORMAL, t, int(t))


def test_the_threshold_alarm_raises_at_its_default_limit_and_clears_below_the_margin() -> None:
    limits = LimitsResolver()
    spec = ThresholdAlarm("pit_high", ("depth",), alarm=2.0, prewarning=1.5, margin=0.2, unit="m")
    alarms = AlarmSet(threshold_alarm(spec)(limits), limits)
    levels = [(1.4, None), (1.6, Severity.PREWARNING), (2.1, Severity.ALARM), (1.9, Severity.ALARM),
              (1.7, Severity.PREWARNING), (1.2, None)]
    state = None
    for t, (value, expected) in enumerate(levels):
        for event in alarms.feed(reading("depth", value, 1000.0 + t)):
            state = event.severity if event.state.value == "raised" else None
        active = alarms.active()
        assert (active[0].severity if active else None) == expected, (value, state, active)
    overridden = AlarmSet(threshold_alarm(spec)(limits, alarm=5.0, prewarning=None), limits)
    assert overridden.feed(reading("depth", 4.0, 2000.0)) == []


def test_the_mean_aggregator_of_a_profile_makes_its_windows() -> None:
    class Profile:
        mean_channels = ("depth",)
        mean_windows = ("1min",)

    aggregator = mean_aggregator(Profile())  # type: ignore[arg-type]
    made = aggregator(LimitsResolver())
    out = []
    for t in range(0, 121):
        out += made.feed(reading("depth", 1.0 + (t % 2), 1_800_000_000.0 + t))
    means = [a for a in out if a.channel == "depth_1min_mean"]
    assert len(means) == 2 and all(a.value == pytest.approx(1.5, abs=0.02) for a in means)


# -- the walk model ----------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32), dt=st.floats(0.1, 600.0), steps=st.integers(1, 50))
def test_the_walk_stays_within_its_bounds_and_is_a_function_of_its_seed(seed: int, dt: float, steps: int) -> None:
    channels = {"depth": WalkChannel(mean=9.5, low=0.0, high=10.0, diurnal=2.0, step=0.05)}

    def run() -> list[float]:
        model = WalkModel("pit", channels, None, random.Random(seed), start_local_seconds=3600.0)
        return [model.step(i * dt, dt)["depth"] for i in range(1, steps + 1)]

    values = run()
    assert values == run()
    assert all(0.0 <= v <= 10.0 for v in values)


def test_the_walk_follows_its_diurnal_curve_and_a_scenarios_mean() -> None:
    channels = {"depth": WalkChannel(mean=3.0, low=0.0, high=10.0, diurnal=1.0, peak_hour=14.0)}
    model = WalkModel("pit", channels, WalkParams({"depth": 5.0}), random.Random(1), start_local_seconds=0.0)
    assert model.step(14 * 3600.0, 1.0)["depth"] == pytest.approx(6.0)  # no step: the curve alone, at its peak
    assert model.step(2 * 3600.0 + 86400.0, 1.0)["depth"] == pytest.approx(4.0)  # its trough, 12 h later
