"""Scenarios: what a simulated site looks like and what happens on it, from TOML files.

A scenario file (shipped ones live in simulator/scenarios/, see the README
there) has these parts::

    name = "night_work"                    # required, text
    description = "A concrete pour ..."     # optional, text
    seed = 7                                # required, integer: same seed, same run
    duration = "8h"                         # required: seconds, or "90s", "15m", "2h", "1h30m", "1d"
    start = 2025-04-15T20:00:00+08:00       # required: TOML date-time; a local date-time
                                            # (no offset) is Asia/Shanghai (+08:00)
    kind_dirs = ["kinds"]                   # optional: folders of kinds added as profiles (docs/profiles.md)

    [conditions]                            # optional: initial site conditions
    humidity_mean = 80.0                    # any field of simulator.physics.Conditions

    [[buses]]                               # one or more buses
    name = "boundary"                       # letters, digits, "-", "_"
    baud = 9600                             # 9600, 19200, 38400, 57600 or 115200 (default 9600)
    transport = "rtu"                       # "rtu" (default): RS-485 on a pseudo-terminal;
                                            # "tcp": nodes on Wi-Fi, served over Modbus TCP
    port = 0                                # tcp only: TCP port on 127.0.0.1 (0: any free port)
    parity = "N"                            # rtu only: the nodes' parity, N, E or O (default N: 8N1)

    [[buses.nodes]]                         # one or more nodes on that bus
    kind = "dust"                           # dust, noise, tilt or wind
    unit_id = 1                             # 1..247, unique on the bus
    name = "dust-east"                      # optional; default "<kind>-<unit_id>", unique in the site
    params = { bearing = 90.0 }             # optional per-node physics parameters
    turnaround_ms = 2.0                     # optional: request end to reply start (0 .. 1000, default 2)
    baud = 19200                            # optional, rtu: this node's own baud rate (default: the bus's)
    parity = "E"                            # optional, rtu: this node's own parity (default: the bus's)

    [[timeline]]                            # zero or more entries; each either sets conditions ...
    at = "1h"                               # offset from start, a clock time 22:00:00 / "22:00"
                                            # (its first occurrence at or after start) or a date-time
    label = "work starts"                   # optional
    ramp = "30m"                            # optional: reach the values linearly over this time
    set = { excavators = 2, trucks = 8 }

    [[timeline]]                            # ... or injects a fault
    at = "3h"
    fault = "late_reply"                    # a simulator.faults.FaultKind value
    bus = "boundary"
    unit_id = 1                             # required for node faults, absent for bus faults
    duration = "5m"                         # optional: default until the end (reboot: 2 s boot)
    delay_ms = 300                          # parameters the fault kind takes (see faults.py)

Node parameters by kind (simulator.physics): dust: bearing, exposure; noise:
distance, barrier; tilt: sensitivity, azimuth, creep, creep_time, thermal,
noise; wind: height, roughness.

:func:`load_scenario` validates everything and raises :class:`ScenarioError`
naming the file, the key (``buses[0].nodes[2].unit_id``) and the problem.
The result is a frozen :class:`Scenario` that builds the pieces a run needs:
:meth:`Scenario.timeline` (conditions over time), :meth:`Scenario.fault_plan`
and :meth:`Scenario.physics`.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from firmware import regmap
from gateway.profiles.kinds import install_kinds
from simulator.faults import (
    BUS_ONLY,
    DEFAULT_BOOT_TIME,
    NODE_ONLY,
    PARAMETERS,
    Fault,
    FaultKind,
    FaultPlan,
)
from simulator.physics import (
    CONDITION_NAMES,
    Change,
    Conditions,
    NodeParams,
    NodeSetup,
    SitePhysics,
    Timeline,
    check_condition,
    make_params,
)
from simulator.uart import STANDARD_BAUDS

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")  # China has kept +08:00 without DST since 1991
SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
BAUD_RATES = (9600, 19200, 38400, 57600, 115200)
TRANSPORTS = ("rtu", "tcp")
DEFAULT_TURNAROUND_MS = 2.0
KIND_CODES: dict[str, int] = regmap.KIND_CODES  # live: kinds installed later (gateway/profiles/kinds.py) count

_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|d|h|min|m|s)\s*")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")
_BUS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

_TOP_KEYS = ("name", "description", "seed", "duration", "start", "conditions", "buses", "timeline", "kind_dirs")
_BUS_KEYS = ("name", "baud", "transport", "port", "nodes", "parity")
_NODE_KEYS = ("kind", "unit_id", "name", "params", "turnaround_ms", "profile", "baud", "parity")
_PARITIES = ("N", "E", "O")
_SET_KEYS = ("at", "label", "ramp", "set")
_FAULT_KEYS = ("at", "label", "fault", "bus", "unit_id", "duration", *sorted(set().union(*PARAMETERS.values())))


def measurement_names(kind: str) -> tuple[str, ...]:
    """Register names of a kind's measurements (firmware/regmap.py)."""
    return tuple(str(row[0]) for row in regmap.MEASUREMENTS[KIND_CODES[kind]])


class ScenarioError(ValueError):
    """A scenario that cannot be used: which file, which key, what is wrong."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ScenarioNode:
    kind: str  # dust, noise, tilt, wind
    unit_id: int
    name: str
    params: NodeParams
    turnaround_ms: float = DEFAULT_TURNAROUND_MS  # end of a request to the start of the reply
    # A vendor device laid out by this profile (name or .toml path; simulator/vendor_device.py) instead of a
    # sitewatch node; its physics are those of its kind.
    profile: str = ""
    baud: int | None = None  # the node's own line settings (None: the bus's)
    parity: str | None = None

    @property
    def kind_code(self) -> int:
        """The register map's node kind number."""
        return KIND_CODES[self.kind]


@dataclass(frozen=True, slots=True)
class ScenarioBus:
    name: str
    baud: int
    nodes: tuple[ScenarioNode, ...]
    transport: str = "rtu"  # "rtu": RS-485 on a pseudo-terminal; "tcp": Modbus TCP (nodes on Wi-Fi)
    port: int = 0  # tcp: the TCP port on 127.0.0.1, 0 for any free one
    parity: str = "N"  # rtu: the nodes' parity unless a node has its own


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    seed: int
    duration: float  # s
    start: datetime  # aware, Asia/Shanghai
    conditions: Conditions  # at the start
    buses: tuple[ScenarioBus, ...]
    changes: tuple[Change, ...] = ()
    faults: tuple[Fault, ...] = ()
    source: str = "<scenario>"
    kind_dirs: tuple[Path, ...] = ()  # folders of kinds added as profiles, installed when it was read

    @property
    def start_epoch(self) -> float:
        return self.start.timestamp()

    @property
    def start_local_seconds(self) -> float:
        """Seconds since local midnight at the start (drives the diurnal cycles)."""
        local = self.start.astimezone(SHANGHAI)
        return local.hour * 3600.0 + local.minute * 60.0 + local.second + local.microsecond / 1e6

    def local_time(self, t: float) -> datetime:
        """The local (Asia/Shanghai) date-time of simulated second t."""
        return self.start.astimezone(SHANGHAI) + timedelta(seconds=t)

    @cached_property
    def _timeline(self) -> Timeline:
        return Timeline(self.conditions, self.changes)

    def timeline(self) -> Timeline:
        """Conditions as a function of simulated time (one shared, cached instance)."""
        return self._timeline

    def conditions_at(self, t: float) -> Conditions:
        return self._timeline(t)

    def fault_plan(self) -> FaultPlan:
        """A fresh, modifiable plan holding the scenario's faults."""
        return FaultPlan(self.faults)

    def physics(self) -> SitePhysics:
        """Fresh weather and node models for one run."""
        setups = [NodeSetup(bus.name, node.unit_id, node.kind, node.params) for bus, node in self.nodes()]
        return SitePhysics(self.seed, Timeline(self.conditions, self.changes), setups, self.start_local_seconds)

    def nodes(self) -> Iterator[tuple[ScenarioBus, ScenarioNode]]:
        for bus in self.buses:
            for node in bus.nodes:
                yield bus, node

    def node(self, bus: str, unit_id: int) -> ScenarioNode:
        for b, node in self.nodes():
            if b.name == bus and node.unit_id == unit_id:
                return node
        raise KeyError(f"{self.source}: no node {unit_id} on bus {bus!r}")


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def builtin_names() -> list[str]:
    """Names of the scenarios shipped in simulator/scenarios/."""
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.toml"))


def builtin_path(name: str) -> Path:
    path = SCENARIO_DIR / f"{name}.toml"
    if not path.is_file():
        raise ScenarioError(name, "name", f"no shipped scenario of that name (known: {', '.join(builtin_names())})")
    return path


def load_builtin(name: str) -> Scenario:
    return load_scenario(builtin_path(name))


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(source, "(file)", f"cannot read: {error.strerror or error}") from None
    return loads_scenario(text, source)


def loads_scenario(text: str, source: str = "<string>") -> Scenario:
    """Parse and validate scenario TOML text; `source` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(source, "(toml)", f"not valid TOML: {error}") from None
    return _Parser(source).scenario(data)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.start: datetime | None = None
        self.duration = math.inf

    def fail(self, key: str, problem: str) -> ScenarioError:
        return ScenarioError(self.source, key, problem)

    def install_kinds(self, dirs: Any) -> tuple[Path, ...]:
        """Kinds added as profiles (gateway/profiles/kinds.py), folders relative to the scenario file."""
        if not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs):
            raise self.fail("kind_dirs", f"expected a list of folder names, got {_describe(dirs)}")
        base = Path(self.source).parent if Path(self.source).is_file() else Path.cwd()
        folders = tuple((base / d).resolve() for d in dirs)
        try:
            install_kinds(folders)
        except ValueError as error:
            raise self.fail("kind_dirs", str(error)) from None
        return folders

    # -- small typed readers ---------------------------------------------------

    def keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(_join(where, key), f"unknown key (allowed here: {', '.join(allowed)})")

    def required(self, table: Mapping[str, Any], key: str, where: str) -> Any:
        if key not in table:
            raise self.fail(_join(where, key), "missing")
        return table[key]

    def text(self, value: Any, key: str, *, empty: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {_describe(value)}")
        if not empty and not value.strip():
            raise self.fail(key, "must not be empty")
        return value

    def integer(self, value: Any, key: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {_describe(value)}")
        if not low <= value <= high:
            raise self.fail(key, f"{value} is outside {low} .. {high}")
        return value

    def number(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"expected a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise self.fail(key, f"{value} is not a finite number")
        return float(value)

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {_describe(value)}")
        return value

    def tables(self, value: Any, key: str, *, empty: bool = False) -> list[Mapping[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.fail(key, f"expected an array of tables ([[{key}]]), got {_describe(value)}")
        if not empty and not value:
            raise self.fail(key, "needs at least one entry")
        return value

    def seconds(self, value: Any, key: str) -> float:
        """A duration: a number of seconds or a text like "90s", "15m", "1h30m"."""
        if isinstance(value, bool):
            raise self.fail(key, f"expected a duration, got {_describe(value)}")
        if isinstance(value, int | float):
            if not math.isfinite(value) or value < 0:
                raise self.fail(key, f"{value} is not a duration >= 0")
            return float(value)
        if isinstance(value, str):
            total = parse_duration(value)
            if total is None:
                raise self.fail(key, f"{value!r} is not a duration like 90, '90s', '15m', '2h', '1h30m', '1d'")
            return total
        raise self.fail(key, f"expected a duration, got {_describe(value)}")

    def moment(self, value: Any, key: str) -> float:
        """Seconds after the start of an `at` value, checked to lie within the run."""
        assert self.start is not None
        local_start = self.start.astimezone(SHANGHAI)
        clock: time | None = None
        if isinstance(value, time):
            clock = value
        elif isinstance(value, str) and _CLOCK.match(value):
            match = _CLOCK.match(value)
            assert match is not None
            hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
            if hour > 23 or minute > 59 or second > 59:
                raise self.fail(key, f"{value!r} is not a time of day")
            clock = time(hour, minute, second)
        if clock is not None:
            when = datetime.combine(local_start.date(), clock.replace(tzinfo=None), tzinfo=SHANGHAI)
            if when < local_start:
                when += timedelta(days=1)
            at = (when - local_start).total_seconds()
        elif isinstance(value, datetime):
            at = (_aware(value) - self.start).total_seconds()
        elif isinstance(value, date):
            raise self.fail(key, "a date alone is not a moment; give a date-time, a time of day or an offset")
        else:
            at = self.seconds(value, key)
        if not 0.0 <= at <= self.duration:
            raise self.fail(key, f"falls {at:g} s after the start, outside the run (0 .. {self.duration:g} s)")
        return at

    # -- the parts -------------------------------------------------------------

    def scenario(self, data: Mapping[str, Any]) -> Scenario:
        self.keys(data, _TOP_KEYS, "")
        name = self.text(self.required(data, "name", ""), "name")
        description = self.text(data.get("description", ""), "description", empty=True)
        seed = self.integer(self.required(data, "seed", ""), "seed", 0, 2**63 - 1)
        self.duration = self.seconds(self.required(data, "duration", ""), "duration")
        if self.duration <= 0:
            raise self.fail("duration", "must be longer than 0 s")
        start = self.required(data, "start", "")
        if not isinstance(start, datetime):
            raise self.fail(
                "start", f"expected a TOML date-time such as 2025-04-15T06:00:00+08:00, got {_describe(start)}"
            )
        self.start = _aware(start)
        kind_dirs = self.install_kinds(data.get("kind_dirs", []))
        conditions = self.conditions(data.get("conditions", {}))
        buses = self.buses(self.required(data, "buses", ""))
        changes: list[Change] = []
        faults: list[Fault] = []
        for index, entry in enumerate(self.tables(data.get("timeline", []), "timeline", empty=True)):
            where = f"timeline[{index}]"
            if ("set" in entry) == ("fault" in entry):
                raise self.fail(where, "an entry needs exactly one of 'set' (change conditions) or 'fault'")
            if "set" in entry:
                changes.append(self.change(entry, where))
            else:
                faults.append(self.fault(entry, where, buses))
        return Scenario(
            name=name,
            description=description,
            seed=seed,
            duration=self.duration,
            start=self.start,
            conditions=conditions,
            buses=buses,
            changes=tuple(changes),
            faults=tuple(faults),
            source=self.source,
            kind_dirs=kind_dirs,
        )

    def conditions(self, value: Any) -> Conditions:
        table = self.table(value, "conditions")
        values: dict[str, float] = {}
        for key, item in table.items():
            values[key] = self.condition(key, item, f"conditions.{key}")
        return Conditions(**values)

    def condition(self, name: str, value: Any, key: str) -> float:
        if name not in CONDITION_NAMES:
            raise self.fail(key, f"unknown condition (known: {', '.join(CONDITION_NAMES)})")
        try:
            return check_condition(name, value)
        except ValueError as error:
            raise self.fail(key, str(error)) from None

    def buses(self, value: Any) -> tuple[ScenarioBus, ...]:
        buses: list[ScenarioBus] = []
        names: set[str] = set()
        ports: set[int] = set()
        node_names: dict[str, str] = {}
        for index, table in enumerate(self.tables(value, "buses")):
            where = f"buses[{index}]"
            self.keys(table, _BUS_KEYS, where)
            name = self.text(self.required(table, "name", where), f"{where}.name")
            if not _BUS_NAME.match(name):
                raise self.fail(f"{where}.name", f"{name!r}: use 1-32 letters, digits, '-' or '_'")
            if name in names:
                raise self.fail(f"{where}.name", f"a second bus named {name!r}")
            names.add(name)
            baud = table.get("baud", 9600)
            if isinstance(baud, bool) or baud not in BAUD_RATES:
                raise self.fail(f"{where}.baud", f"{baud!r} is not one of {', '.join(map(str, BAUD_RATES))}")
            transport = self.text(table.get("transport", "rtu"), f"{where}.transport")
            if transport not in TRANSPORTS:
                raise self.fail(f"{where}.transport", f"{transport!r} is not one of {', '.join(TRANSPORTS)}")
            port = 0
            if "port" in table:
                if transport != "tcp":
                    raise self.fail(f"{where}.port", "only a tcp bus has a TCP port (set transport = \"tcp\")")
                port = self.integer(table["port"], f"{where}.port", 0, 65535)
                if port and port in ports:
                    raise self.fail(f"{where}.port", f"TCP port {port} is already used by another bus")
                ports.add(port)
            nodes: list[ScenarioNode] = []
            units: set[int] = set()
            for n, node_table in enumerate(self.tables(self.required(table, "nodes", where), f"{where}.nodes")):
                node_where = f"{where}.nodes[{n}]"
                node = self.node(node_table, node_where)
                if node.unit_id in units:
                    raise self.fail(f"{node_where}.unit_id", f"unit id {node.unit_id} is already used on bus {name!r}")
                units.add(node.unit_id)
                if node.name in node_names:
                    raise self.fail(
                        f"{node_where}.name",
                        f"node name {node.name!r} is already used by {node_names[node.name]}; give each a 'name'",
                    )
                node_names[node.name] = node_where
                nodes.append(node)
            parity = self.parity(table.get("parity", "N"), f"{where}.parity")
            buses.append(ScenarioBus(name, int(baud), tuple(nodes), transport, port, parity))
        return tuple(buses)

    def node(self, table: Mapping[str, Any], where: str) -> ScenarioNode:
        self.keys(table, _NODE_KEYS, where)
        profile = ""
        if "profile" in table:
            profile = self.text(table["profile"], f"{where}.profile")
            try:
                device_kind = _profile_kind(profile)
            except (KeyError, ValueError) as error:
                raise self.fail(f"{where}.profile", str(error).strip("\"'")) from None
            kind = self.text(table.get("kind", device_kind), f"{where}.kind")
            if kind != device_kind:
                raise self.fail(f"{where}.kind", f"{kind!r}, but profile {profile} is a {device_kind} device")
        else:
            kind = self.text(self.required(table, "kind", where), f"{where}.kind")
        if kind not in KIND_CODES:
            raise self.fail(f"{where}.kind", f"unknown node kind {kind!r} (expected one of {', '.join(KIND_CODES)})")
        unit_id = self.integer(self.required(table, "unit_id", where), f"{where}.unit_id", 1, 247)
        name = self.text(table.get("name", f"{kind}-{unit_id}"), f"{where}.name")
        params_table = self.table(table.get("params", {}), f"{where}.params")
        try:
            params = make_params(kind, params_table)
        except (ValueError, TypeError) as error:
            key, problem = _split_field(str(error))
            raise self.fail(_join(f"{where}.params", key), problem) from None
        turnaround = DEFAULT_TURNAROUND_MS
        if "turnaround_ms" in table:
            turnaround = self.number(table["turnaround_ms"], f"{where}.turnaround_ms")
            if not 0.0 <= turnaround <= 1000.0:
                raise self.fail(f"{where}.turnaround_ms", f"{turnaround:g} is outside 0 .. 1000 ms")
        baud = table.get("baud")
        rates = STANDARD_BAUDS if profile else BAUD_RATES  # a vendor device may run slower than a sitewatch node
        if baud is not None and (isinstance(baud, bool) or baud not in rates):
            raise self.fail(f"{where}.baud", f"{baud!r} is not one of {', '.join(map(str, rates))}")
        parity = self.parity(table["parity"], f"{where}.parity") if "parity" in table else None
        return ScenarioNode(kind, unit_id, name, params, turnaround, profile, baud, parity)

    def parity(self, value: Any, key: str) -> str:
        parity = self.text(value, key).upper()
        if parity not in _PARITIES:
            raise self.fail(key, f"{value!r} is not one of N, E, O")
        return parity

    def change(self, entry: Mapping[str, Any], where: str) -> Change:
        self.keys(entry, _SET_KEYS, where)
        at = self.moment(self.required(entry, "at", where), f"{where}.at")
        ramp = self.seconds(entry.get("ramp", 0), f"{where}.ramp")
        label = self.text(entry.get("label", ""), f"{where}.label", empty=True)
        values_table = self.table(entry["set"], f"{where}.set")
        if not values_table:
            raise self.fail(f"{where}.set", "sets nothing")
        values = {key: self.condition(key, item, f"{where}.set.{key}") for key, item in values_table.items()}
        return Change(at, values, ramp, label)

    def fault(self, entry: Mapping[str, Any], where: str, buses: tuple[ScenarioBus, ...]) -> Fault:
        self.keys(entry, _FAULT_KEYS, where)
        kind_text = self.text(entry["fault"], f"{where}.fault")
        try:
            kind = FaultKind(kind_text)
        except ValueError:
            known = ", ".join(k.value for k in FaultKind)
            raise self.fail(f"{where}.fault", f"unknown fault {kind_text!r} (known: {known})") from None
        at = self.moment(self.required(entry, "at", where), f"{where}.at")
        self.text(entry.get("label", ""), f"{where}.label", empty=True)
        bus_name = self.text(self.required(entry, "bus", where), f"{where}.bus")
        bus = next((b for b in buses if b.name == bus_name), None)
        if bus is None:
            raise self.fail(f"{where}.bus", f"no bus named {bus_name!r} (buses: {', '.join(b.name for b in buses)})")
        unit_id: int | None = None
        node: ScenarioNode | None = None
        if "unit_id" in entry:
            if kind in BUS_ONLY:
                raise self.fail(f"{where}.unit_id", f"{kind} affects the whole bus; remove the unit id")
            unit_id = self.integer(entry["unit_id"], f"{where}.unit_id", 1, 247)
            node = next((n for n in bus.nodes if n.unit_id == unit_id), None)
            if node is None:
                raise self.fail(f"{where}.unit_id", f"no node {unit_id} on bus {bus_name!r}")
        elif kind in NODE_ONLY:
            raise self.fail(f"{where}.unit_id", f"missing: {kind} affects one node")
        extra: dict[str, Any] = {}
        for key in ("delay_ms", "probability", "channel", "magnitude", "length"):
            if key not in entry:
                continue
            if key not in PARAMETERS[kind]:
                raise self.fail(f"{where}.{key}", f"{kind} takes no {key}")
            if key == "channel":
                channel = self.text(entry[key], f"{where}.channel")
                assert node is not None  # channel faults are node faults
                if channel not in measurement_names(node.kind):
                    raise self.fail(
                        f"{where}.channel",
                        f"{channel!r} is not a {node.kind} measurement ({', '.join(measurement_names(node.kind))})",
                    )
                extra[key] = channel
            elif key == "length":
                extra[key] = self.integer(entry[key], f"{where}.length", 1, 256)
            else:
                extra[key] = self.number(entry[key], f"{where}.{key}")
        default = DEFAULT_BOOT_TIME if kind == FaultKind.REBOOT else math.inf
        length = self.seconds(entry["duration"], f"{where}.duration") if "duration" in entry else default
        try:
            return Fault(kind, bus_name, at, at + length, unit_id, **extra)
        except ValueError as error:
            key, problem = _split_field(str(error))
            key = {"start": "at", "end": "duration"}.get(key, key)
            raise self.fail(_join(where, key), problem) from None


def _join(where: str, key: str) -> str:
    if not where:
        return key
    return f"{where}.{key}" if key else where


def _split_field(message: str) -> tuple[str, str]:
    """'height: 0.5 m is ...' -> ('height', '0.5 m is ...'); no field -> ('', message)."""
    head, sep, rest = message.partition(": ")
    if sep and re.fullmatch(r"[a-z_][a-z0-9_]*", head):
        return head, rest
    return "", message


def _describe(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array"}
    kind = names.get(type(value), "a table" if isinstance(value, dict) else type(value).__name__)
    shown = repr(value)
    return f"{kind} {shown if len(shown) <= 40 else shown[:37] + '...'}"


def _aware(moment: datetime) -> datetime:
    """A TOML date-time with its offset, or a local one read as Asia/Shanghai."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=SHANGHAI)
    return moment.astimezone(SHANGHAI)


def parse_duration(text: str) -> float | None:
    """Seconds in a text like "90s", "15m", "1h30m", "1d", "500ms"; None if it is not one."""
    position = 0
    total = 0.0
    stripped = text.strip()
    if not stripped:
        return None
    while position < len(stripped):
        match = _DURATION_PART.match(stripped, position)
        if match is None or match.end() == position:
            return None
        total += float(match[1]) * _DURATION_UNITS[match[2]]
        position = match.end()
    return total


def _profile_kind(profile: str) -> str:
    """The kind of a vendor profile (by name or path); KeyError or ValueError (ProfileError) when unusable."""
    from simulator.vendor_device import find_profile  # the profiles load only for scenarios that use them

    return find_profile(profile).kind
