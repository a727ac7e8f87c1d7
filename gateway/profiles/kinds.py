"""sitewatch's own node kinds as profiles: one firmware data module plus one gateway-side TOML file each.

A kind is described once, in two parts that travel together:

- ``kind_<name>.py``: what the node needs, as MicroPython plain data (its
  measurement rows, holding registers, coils, second-sensor channels, the
  adapter module); ``firmware/regmap.py`` assembles these tables.
- ``<name>.toml``: what only the gateway needs (format: docs/profiles.md,
  "Adding a sitewatch kind"): what each register means, measuring ranges,
  stuck and spike settings, which aggregators take its readings (or plain
  means over windows), threshold alarms with their default limits, the
  firmware build's driver settings, the simulator's model and the
  register-map document's examples.

Shipped kinds live in ``firmware/kind_*.py`` and ``gateway/profiles/kinds/*.toml``;
more come from ``/etc/sitewatch/profiles/kinds/`` or the folders given to
:func:`install_kinds` (the config's ``[profiles] kind_dirs``), each folder
holding both parts and the kind's firmware adapter. Installing a kind adds it
to the register map, the limits defaults, the stage registries and the
simulator, so the rest of the code reads it like a shipped one.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import firmware
from firmware import regmap

SYSTEM_KIND_DIR = Path("/etc/sitewatch/profiles/kinds")
FIRMWARE_DIR = Path(regmap.__file__).parent
SIMULATOR_MODELS = ("physics", "walk")  # the kind's own code in simulator/physics, or the generic walk
_TOP_KEYS = frozenset({"kind", "description", "registers", "ranges", "stuck_s", "hampel_floor", "stages", "alarm",
                       "firmware", "simulator", "doc", "label", "report", "hj212", "alarm_text"})
LANGUAGES = ("zh", "en")  # the languages of the words people read (status page, report, notifications)
HJ212_SUFFIXES = ("Avg", "Min", "Max", "Cou")  # an aggregate statistic's suffix in HJ 212 (domain.md section 6)


class KindProfileError(ValueError):
    """A kind profile that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class ThresholdAlarm:
    """A profile-declared alarm: one channel against a limit (generic AlarmMachine levels)."""

    name: str
    channels: tuple[str, ...]
    alarm: float
    prewarning: float | None = None
    margin: float = 0.0
    hold_s: float = 0.0
    unit: str = ""
    description: str = ""
    source: str = ""


@dataclass(frozen=True)
class WalkChannel:
    """The generic simulator model of one channel: a diurnal curve plus a bounded random walk.

    value(t) = mean + diurnal * sin(2 pi (hour - peak_hour + 6) / 24) + walk(t), clipped to [low, high];
    the walk moves by a normal step of `step` per sqrt(second) and is pulled back towards 0.
    """

    mean: float
    low: float
    high: float
    diurnal: float = 0.0
    peak_hour: float = 14.0
    step: float = 0.0


@dataclass(frozen=True)
class AlarmText:
    """One alarm as people read it: the notification's phrase in each language and the report's short name."""

    zh: str
    en: str
    short: str  # "<zh> <en>", short enough for the report's alarm table

    def phrase(self, language: str) -> str:
        return self.zh if language == "zh" else self.en


@dataclass(frozen=True)
class Hj212Factors:
    """A kind's HJ 212 factor codes (domain.md section 6): what its readings and aggregates are called uplink."""

    realtime: Mapping[str, str] = field(default_factory=dict)  # channel -> factor code (sent as <code>-Rtd)
    aggregates: Mapping[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # (source, statistic)
    # -> (factor code, suffix)


@dataclass(frozen=True)
class KindProfile:
    name: str
    code: int
    description: str
    path: Path  # the TOML file
    firmware: ModuleType  # the kind_<name> data module
    descriptions: Mapping[str, str]  # register or coil name -> what it means
    ranges: Mapping[str, tuple[float, float]]
    stuck_s: Mapping[str, float]
    hampel_floor: Mapping[str, float]
    aggregators: tuple[str, ...]  # registered aggregator types that take its readings
    mean_windows: tuple[str, ...]  # windows of the kind's own mean aggregator ("" when none)
    mean_channels: tuple[str, ...]
    alarms: tuple[ThresholdAlarm, ...]
    sensor: Mapping[str, Any]  # node.json's "sensor" for the firmware build
    relay: Mapping[str, Any] | None
    simulator: str  # "physics" or "walk"
    walk: Mapping[str, WalkChannel] = field(default_factory=dict)
    doc_unit_id: int = 1
    doc_write: tuple[str, float, str] | None = None
    label: Mapping[str, str] = field(default_factory=dict)  # language -> what people call the kind
    report_title: str = ""  # the daily report's section heading
    report_channels: tuple[str, ...] = ()  # the channels the report reads (empty: all of them)
    hj212: Hj212Factors = field(default_factory=Hj212Factors)  # empty: the kind has no HJ 212 form
    alarm_texts: Mapping[str, AlarmText] = field(default_factory=dict)  # alarm name -> its words

    @property
    def measurement_names(self) -> tuple[str, ...]:
        return tuple(str(row[0]) for row in self.firmware.MEASUREMENTS)

    def unit(self, channel: str) -> str:
        for row in self.firmware.MEASUREMENTS:
            if row[0] == channel:
                return str(row[4])
        raise KeyError(channel)

    @property
    def register_names(self) -> tuple[str, ...]:
        f = self.firmware
        return tuple(str(row[0]) for rows in (f.MEASUREMENTS, f.HOLDING, f.COILS) for row in rows)


class _Reader:
    """Typed access to a TOML table, every error naming the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> KindProfileError:
        return KindProfileError(f"{self.path}: {key}: {problem}")

    def get(self, table: Mapping[str, Any], key: str, where: str, kinds: tuple[type, ...], default: Any = None,
            required: bool = False) -> Any:
        path = f"{where}.{key}" if where else key
        if key not in table:
            if required:
                raise self.fail(path, "required")
            return default
        value = table[key]
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.fail(path, f"expected {names}, got {type(value).__name__} {value!r}")
        return value

    def number(self, table: Mapping[str, Any], key: str, where: str, default: float | None = None,
               required: bool = False) -> float | None:
        value = self.get(table, key, where, (int, float), default, required)
        if value is not None and not math.isfinite(float(value)):
            raise self.fail(f"{where}.{key}" if where else key, f"not a finite number: {value!r}")
        return None if value is None else float(value)

    def table(self, table: Mapping[str, Any], key: str, where: str = "") -> dict[str, Any]:
        return dict(self.get(table, key, where, (dict,), {}))

    def only(self, table: Mapping[str, Any], known: Iterable[str], where: str) -> None:
        allowed = set(known)
        for key in table:
            if key not in allowed:
                path = f"{where}.{key}" if where else key
                raise self.fail(path, f"unknown key (known: {', '.join(sorted(allowed))})")

    def channel(self, name: str, known: Sequence[str], where: str) -> None:
        if name not in known:
            raise self.fail(where, f"{name!r} is not a measurement of this kind ({', '.join(known)})")


def load_firmware_module(path: Path) -> ModuleType:
    """Import a kind_<name>.py data module from a file (an added kind's, outside the firmware package).

    It is not registered in sys.modules: loading a profile to check it changes nothing; install_kinds
    registers the modules of the kinds it installs.
    """
    name = f"firmware.{path.stem}"
    known = sys.modules.get(name)
    if known is not None and Path(getattr(known, "__file__", "") or "").resolve() == path.resolve():
        return known
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise KindProfileError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # a syntax error or a failing statement in a profile someone wrote
        raise KindProfileError(f"{path}: {error}") from error
    return module


def _check_firmware(module: ModuleType, path: Path, name: str) -> None:
    for key, kinds in (("CODE", (int,)), ("NAME", (str,)), ("ADAPTER", (str,)), ("MEASUREMENTS", (tuple,)),
                       ("HOLDING", (tuple,)), ("COILS", (tuple,)), ("AUX_CHANNELS", (tuple,))):
        value = getattr(module, key, None)
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise KindProfileError(f"{path}: {key}: missing or not a {kinds[0].__name__}")
    if name != module.NAME:
        raise KindProfileError(f"{path}: NAME: {module.NAME!r}, but the profile is {name!r}")
    if not 1 <= module.CODE <= 0xFFFF:
        raise KindProfileError(f"{path}: CODE: {module.CODE} is not a u16 above 0")
    # Rows go on the wire as they are: refuse one the node would serve wrongly, before it is flashed.
    end = regmap.MEASUREMENT_BASE
    for i, row in enumerate(module.MEASUREMENTS):
        where = f"{path}: MEASUREMENTS[{i}]"
        if not (isinstance(row, tuple) and len(row) == 5 and isinstance(row[0], str) and row[2] in (0, 1, 2, 3)):
            raise KindProfileError(f"{where}: expected (name, address, format 0-3, scale, unit), got {row!r}")
        if row[1] != end:
            raise KindProfileError(f"{where}: address {row[1]}, expected {end} (measurements are contiguous)")
        end += regmap.FORMAT_WORDS[row[2]]
    for i, row in enumerate(module.HOLDING):
        if not (isinstance(row, tuple) and len(row) == 8 and row[1] >= regmap.MEASUREMENT_BASE):
            raise KindProfileError(f"{path}: HOLDING[{i}]: expected (name, address >= 16, format, scale, unit, "
                                   f"min, max, default), got {row!r}")
    if end > regmap.HISTORY_BASE:
        raise KindProfileError(f"{path}: MEASUREMENTS: end at register {end}, past HISTORY_BASE {regmap.HISTORY_BASE}")


def load_kind_profile(path: Path, firmware_module: ModuleType | None = None) -> KindProfile:
    """Read one kind profile (the TOML file; its kind_<name>.py beside it or in firmware/)."""
    r = _Reader(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise KindProfileError(f"{path}: {error}") from error
    r.only(doc, _TOP_KEYS, "")
    name = r.get(doc, "kind", "", (str,), required=True)
    if name != path.stem:
        raise r.fail("kind", f"{name!r}, but the file is named {path.name} (expected {name}.toml)")
    if firmware_module is None:
        beside = path.with_name(f"{regmap.KIND_PREFIX}{name}.py")
        if beside.is_file():
            firmware_module = load_firmware_module(beside)
        elif (FIRMWARE_DIR / beside.name).is_file():
            firmware_module = importlib.import_module(f"firmware.{beside.stem}")
        else:
            raise r.fail("kind", f"no firmware data module {beside.name} beside it or in {FIRMWARE_DIR}")
    _check_firmware(firmware_module, Path(getattr(firmware_module, "__file__", "") or path), name)
    channels = tuple(str(row[0]) for row in firmware_module.MEASUREMENTS)
    registers = tuple(str(row[0]) for rows in (firmware_module.MEASUREMENTS, firmware_module.HOLDING,
                                               firmware_module.COILS) for row in rows)

    descriptions = r.table(doc, "registers")
    for key, text in descriptions.items():
        if key not in registers:
            raise r.fail(f"registers.{key}", f"not a register or coil of this kind ({', '.join(registers)})")
        if not isinstance(text, str) or not text:
            raise r.fail(f"registers.{key}", "expected a non-empty description")
    for register in registers:
        if register not in descriptions:
            raise r.fail(f"registers.{register}", "required: every register says what it means")

    ranges: dict[str, tuple[float, float]] = {}
    for key, pair in r.table(doc, "ranges").items():
        r.channel(key, channels, f"ranges.{key}")
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, int | float) for v in pair)
                and not any(isinstance(v, bool) for v in pair) and pair[0] < pair[1]):
            raise r.fail(f"ranges.{key}", f"expected [low, high] with low < high, got {pair!r}")
        ranges[key] = (float(pair[0]), float(pair[1]))
    per_channel: dict[str, dict[str, float]] = {}
    for table in ("stuck_s", "hampel_floor"):
        values = r.table(doc, table)
        for key in values:
            r.channel(key, channels, f"{table}.{key}")
            number = r.number(values, key, table, required=True)
            assert number is not None
            if number < 0:
                raise r.fail(f"{table}.{key}", "must not be negative")
            per_channel.setdefault(table, {})[key] = number

    stages = r.table(doc, "stages")
    r.only(stages, ("aggregators", "mean_channels", "mean_windows"), "stages")
    aggregators = _strings(r, stages, "aggregators", "stages")
    mean_channels = _strings(r, stages, "mean_channels", "stages")
    mean_windows = _strings(r, stages, "mean_windows", "stages")
    for i, channel in enumerate(mean_channels):
        r.channel(channel, channels, f"stages.mean_channels[{i}]")
    if bool(mean_channels) != bool(mean_windows):
        raise r.fail("stages", "mean_channels and mean_windows go together")

    alarms = tuple(_alarm(r, entry, f"alarm[{i}]") for i, entry in enumerate(_tables(r, doc, "alarm")))

    fw = r.table(doc, "firmware")
    r.only(fw, ("sensor", "relay"), "firmware")
    sensor = r.table(fw, "sensor", "firmware")
    if not isinstance(sensor.get("module"), str):
        raise r.fail("firmware.sensor.module", "required: the driver module node.json names")
    relay = r.get(fw, "relay", "firmware", (dict,))

    sim = r.table(doc, "simulator")
    model = r.get(sim, "model", "simulator", (str,), required=True)
    if model not in SIMULATOR_MODELS:
        raise r.fail("simulator.model", f"{model!r} is not one of {', '.join(SIMULATOR_MODELS)}")
    walk: dict[str, WalkChannel] = {}
    if model == "walk":
        r.only(sim, ("model", "channels"), "simulator")
        specs = r.table(sim, "channels", "simulator")
        for channel in channels:
            if channel not in specs:
                raise r.fail(f"simulator.channels.{channel}", "required: the walk model needs every measurement")
        for key, spec in specs.items():
            where = f"simulator.channels.{key}"
            r.channel(key, channels, where)
            walk[key] = _walk(r, spec, where)
    else:
        r.only(sim, ("model",), "simulator")

    docs = r.table(doc, "doc")
    r.only(docs, ("unit_id", "write"), "doc")
    unit_id = int(r.get(docs, "unit_id", "doc", (int,), 1))
    write = r.get(docs, "write", "doc", (dict,))
    doc_write = None
    if write is not None:
        register = r.get(write, "register", "doc.write", (str,), required=True)
        if register not in (str(row[0]) for row in firmware_module.HOLDING):
            raise r.fail("doc.write.register", f"{register!r} is not a holding register of this kind")
        value = r.number(write, "value", "doc.write", required=True)
        assert value is not None
        doc_write = (register, value, str(r.get(write, "why", "doc.write", (str,), "")))
    label = _label(r, doc, name)
    report = r.table(doc, "report")
    r.only(report, ("title", "channels"), "report")
    report_title = str(r.get(report, "title", "report", (str,), "") or f"{label['zh']} {label['en']}".strip())
    report_channels = _strings(r, report, "channels", "report")
    for i, channel in enumerate(report_channels):
        r.channel(channel, channels, f"report.channels[{i}]")
    hj212 = _hj212(r, doc, channels)
    alarm_texts = _alarm_texts(r, doc, alarms)
    return KindProfile(
        name=name, code=int(firmware_module.CODE), description=str(r.get(doc, "description", "", (str,), "")),
        path=path, firmware=firmware_module, descriptions=MappingProxyType(descriptions),
        ranges=MappingProxyType(ranges), stuck_s=MappingProxyType(per_channel.get("stuck_s", {})),
        hampel_floor=MappingProxyType(per_channel.get("hampel_floor", {})), aggregators=aggregators,
        mean_windows=mean_windows, mean_channels=mean_channels, alarms=alarms, sensor=MappingProxyType(sensor),
        relay=None if relay is None else MappingProxyType(relay), simulator=model, walk=MappingProxyType(walk),
        doc_unit_id=unit_id, doc_write=doc_write, label=MappingProxyType(label), report_title=report_title,
        report_channels=report_channels, hj212=hj212, alarm_texts=MappingProxyType(alarm_texts),
    )


def _text(r: _Reader, table: Mapping[str, Any], key: str, where: str, default: str) -> str:
    value = r.get(table, key, where, (str,), default)
    if not value.strip():
        raise r.fail(f"{where}.{key}", "expected non-empty text")
    return str(value)


def _label(r: _Reader, doc: Mapping[str, Any], name: str) -> dict[str, str]:
    """[label] zh / en: the kind's name on the status page and in the report; English defaults to the kind's
    name, Chinese to the English."""
    table = r.table(doc, "label")
    r.only(table, LANGUAGES, "label")
    en = _text(r, table, "en", "label", name)
    return {"zh": _text(r, table, "zh", "label", en), "en": en}


def _factor_code(r: _Reader, value: object, where: str) -> str:
    if not (isinstance(value, str) and value and value.isascii() and value.isalnum()):
        raise r.fail(where, f"expected an HJ 212 factor code (letters and digits, e.g. a34002), got {value!r}")
    return value


def _hj212(r: _Reader, doc: Mapping[str, Any], channels: Sequence[str]) -> Hj212Factors:
    """[hj212] realtime = {channel = code}, aggregates = {"<channel>.<statistic>" = "<code>-<suffix>"}.

    Without ``aggregates``, each real-time channel's mean / min / max (the generic means' and the PM
    aggregator's statistics) go out as <code>-Avg / -Min / -Max.
    """
    table = r.table(doc, "hj212")
    r.only(table, ("realtime", "aggregates"), "hj212")
    realtime: dict[str, str] = {}
    for channel, code in r.table(table, "realtime", "hj212").items():
        r.channel(channel, channels, f"hj212.realtime.{channel}")
        realtime[channel] = _factor_code(r, code, f"hj212.realtime.{channel}")
    aggregates: dict[tuple[str, str], tuple[str, str]] = {}
    if "aggregates" in table:
        for key, value in r.table(table, "aggregates", "hj212").items():
            where = f'hj212.aggregates."{key}"'
            source, dot, statistic = key.partition(".")
            if not dot or not statistic:
                raise r.fail(where, "expected \"<channel>.<statistic>\" as the key")
            r.channel(source, channels, where)
            code, dash, suffix = str(value).rpartition("-")
            if not dash or suffix not in HJ212_SUFFIXES:
                raise r.fail(where, f"expected \"<code>-<{'|'.join(HJ212_SUFFIXES)}>\", got {value!r}")
            aggregates[(source, statistic)] = (_factor_code(r, code, where), suffix)
    else:
        aggregates = {(channel, statistic): (code, suffix) for channel, code in realtime.items()
                      for statistic, suffix in (("mean", "Avg"), ("min", "Min"), ("max", "Max"))}
    return Hj212Factors(MappingProxyType(realtime), MappingProxyType(aggregates))


def _alarm_texts(r: _Reader, doc: Mapping[str, Any], alarms: Sequence[ThresholdAlarm]) -> dict[str, AlarmText]:
    """[alarm_text.<alarm>] zh / en / short: the words of the kind's alarms (those in code and its [[alarm]]s).

    An [[alarm]] without one reads as its description (English), or its name.
    """
    texts: dict[str, AlarmText] = {}
    for spec in alarms:
        en = spec.description or spec.name
        texts[spec.name] = AlarmText(en, en, spec.name)
    for alarm, table in r.table(doc, "alarm_text").items():
        where = f"alarm_text.{alarm}"
        if not isinstance(table, dict):
            raise r.fail(where, f"expected a table with zh, en and short, got {table!r}")
        r.only(table, (*LANGUAGES, "short"), where)
        en = _text(r, table, "en", where, texts[alarm].en if alarm in texts else "")
        zh = _text(r, table, "zh", where, en)
        texts[alarm] = AlarmText(zh, en, _text(r, table, "short", where, f"{zh} {en}" if zh != en else en))
    return texts


def _strings(r: _Reader, table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = r.get(table, key, where, (list,), [])
    if not all(isinstance(v, str) and v for v in value):
        raise r.fail(f"{where}.{key}", f"expected a list of names, got {value!r}")
    return tuple(value)


def _tables(r: _Reader, doc: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = r.get(doc, key, "", (list,), [])
    if not all(isinstance(v, dict) for v in value):
        raise r.fail(key, "expected [[" + key + "]] tables")
    return list(value)


def _alarm(r: _Reader, entry: Mapping[str, Any], where: str) -> ThresholdAlarm:
    r.only(entry, ("name", "channels", "alarm", "prewarning", "margin", "hold_s", "unit", "description", "source"),
           where)
    alarm = r.number(entry, "alarm", where, required=True)
    prewarning = r.number(entry, "prewarning", where)
    assert alarm is not None
    if prewarning is not None and prewarning >= alarm:
        raise r.fail(f"{where}.prewarning", f"{prewarning} must be below the alarm limit {alarm}")
    margin = r.number(entry, "margin", where, 0.0)
    hold_s = r.number(entry, "hold_s", where, 0.0)
    assert margin is not None and hold_s is not None
    if margin < 0 or hold_s < 0:
        raise r.fail(where, "margin and hold_s must not be negative")
    channels = _strings(r, entry, "channels", where)
    if not channels:
        raise r.fail(f"{where}.channels", "required: the readings or aggregates it watches")
    return ThresholdAlarm(
        name=r.get(entry, "name", where, (str,), required=True), channels=channels, alarm=alarm,
        prewarning=prewarning, margin=margin, hold_s=hold_s, unit=r.get(entry, "unit", where, (str,), ""),
        description=r.get(entry, "description", where, (str,), ""), source=r.get(entry, "source", where, (str,), ""),
    )


def _walk(r: _Reader, spec: object, where: str) -> WalkChannel:
    if not isinstance(spec, dict):
        raise r.fail(where, f"expected a table, got {spec!r}")
    r.only(spec, ("mean", "low", "high", "diurnal", "peak_hour", "step"), where)
    numbers = {key: r.number(spec, key, where, required=key in ("mean", "low", "high"))
               for key in ("mean", "low", "high", "diurnal", "peak_hour", "step")}
    given = {k: v for k, v in numbers.items() if v is not None}
    channel = WalkChannel(**given)
    if not channel.low <= channel.mean <= channel.high:
        raise r.fail(where, f"mean {channel.mean} must lie within low {channel.low} .. high {channel.high}")
    if channel.step < 0:
        raise r.fail(f"{where}.step", "must not be negative")
    return channel


# -- the kinds known to this process ------------------------------------------------------

_KINDS: dict[str, KindProfile] = {}


def shipped_profile_paths() -> list[Path]:
    folder = resources.files("gateway.profiles") / "kinds"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml"))


def kind_profiles() -> Mapping[str, KindProfile]:
    """Every kind known to this process (shipped ones first, then those installed), by name."""
    if not _KINDS:
        for path in shipped_profile_paths():
            profile = load_kind_profile(path)
            _KINDS[profile.name] = profile
        missing = sorted(set(regmap.KIND_CODES) - set(_KINDS))
        if missing:
            raise KindProfileError(f"firmware kinds without a gateway profile: {', '.join(missing)}")
    return MappingProxyType(_KINDS)


def kind_profile(name: str) -> KindProfile:
    try:
        return kind_profiles()[name]
    except KeyError:
        raise KindProfileError(f"unknown node kind {name!r} (known: {', '.join(sorted(_KINDS))})") from None


def kind_label(kind: str, language: str = "en") -> str:
    """What people call a kind in `language` (its profile's [label]); an unknown kind is shown by its name."""
    profile = kind_profiles().get(kind)
    return profile.label.get(language, kind) if profile is not None else kind


def alarm_texts() -> dict[str, AlarmText]:
    """Every known alarm's words (the kinds' [alarm_text] tables and [[alarm]] descriptions), by alarm name."""
    return {name: text for profile in kind_profiles().values() for name, text in profile.alarm_texts.items()}


def find_kind_profiles(dirs: Sequence[Path]) -> list[Path]:
    """The *.toml kind profiles in the given folders, in folder then name order."""
    found: list[Path] = []
    for folder in dirs:
        if not folder.is_dir():
            raise KindProfileError(f"{folder}: kind profile folder does not exist")
        found += sorted(folder.glob("*.toml"))
    return found


def install_kinds(dirs: Sequence[Path]) -> list[KindProfile]:
    """Load the kind profiles of these folders and make every room know them; returns the new kinds.

    Each folder holds <name>.toml, kind_<name>.py and the kind's firmware
    adapter (kind_<name>.ADAPTER, "firmware.<module>"): the folder joins the
    firmware package's path, so the adapter imports as it will on the board.
    Installing a kind twice from the same file is a no-op; a name or node_kind
    code that clashes with another kind is refused.
    """
    known = kind_profiles()
    new: list[KindProfile] = []
    for path in find_kind_profiles(dirs):
        profile = load_kind_profile(path)
        existing = known.get(profile.name)
        if existing is not None:
            if existing.path.resolve() == path.resolve():
                continue
            raise KindProfileError(f"{path}: kind: {profile.name!r} is already defined by {existing.path}")
        try:
            regmap.add_kind(profile.firmware)
        except ValueError as error:
            raise KindProfileError(f"{path}: {error}") from error
        sys.modules.setdefault(f"firmware.{regmap.KIND_PREFIX}{profile.name}", profile.firmware)
        folder = str(path.parent)
        if folder not in firmware.__path__:
            # Its adapter becomes firmware.<adapter> for main.load_sensor and the firmware build, as on a board.
            firmware.__path__.append(folder)
        _KINDS[profile.name] = profile
        new.append(profile)
    if new:
        from gateway.process.kind_stages import install_stages  # the stage registries import this module

        for profile in new:
            install_stages(profile)
    return new
