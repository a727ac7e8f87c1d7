"""`sitewatch simulate`: run a scenario's simulated site until it ends, --duration passes or Ctrl-C."""

from __future__ import annotations

import argparse
import math
import signal
import textwrap
import time
from dataclasses import replace
from pathlib import Path

from firmware.rs485 import BAUD_RATES
from gateway.ops.sim_gateway_config import SimConfigError, gateway_config_text
from simulator.control import ControlServer
from simulator.scenario import Scenario, ScenarioError, builtin_names, load_builtin, parse_duration
from simulator.site import DEMO_SCENARIO, Site, find_scenario
from simulator.uart import STANDARD_BAUDS, LineSettings

DEFAULT_BUS_DIR = Path("/tmp/sitewatch")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "simulate",
        help="run a simulated site: firmware nodes answering Modbus on pseudo-terminals and TCP ports",
        description=(
            "Run a scenario's simulated site: the real firmware code on every node, fed by the scenario's "
            "physics, with its faults. Each RS-485 bus gets a stable path (a link in --bus-dir) that a Modbus "
            "master such as the gateway or mbpoll opens at the bus's baud rate and parity (8N1 unless set; see "
            "--line); each Modbus TCP bus a port "
            "on 127.0.0.1. One line per bus is printed, as 'NAME: PATH' or 'NAME: tcp://127.0.0.1:PORT'. "
            "Runs until the scenario's end (in simulated time), --duration real seconds, or Ctrl-C."
        ),
    )
    parser.add_argument(
        "--scenario",
        default=DEMO_SCENARIO,
        metavar="NAME|FILE",
        help=f"a shipped scenario (see --list) or a scenario file (default: {DEMO_SCENARIO})",
    )
    parser.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")
    parser.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per real second (default: 1; e.g. 60)"
    )
    parser.add_argument(
        "--skip",
        default="0",
        metavar="DURATION",
        help="start this far into the scenario, e.g. 3h or 90m (default: at its start)",
    )
    parser.add_argument("--bus-dir", type=Path, default=DEFAULT_BUS_DIR, help=f"where bus links go ({DEFAULT_BUS_DIR})")
    parser.add_argument("--truth", type=Path, metavar="FILE", help="write the ground truth of every sample (JSONL)")
    parser.add_argument(
        "--control-port",
        type=int,
        default=0,
        metavar="N",
        help="serve the fault-control HTTP API on 127.0.0.1:N (default 0: off)",
    )
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many real seconds")
    parser.add_argument(
        "--clock-file",
        type=Path,
        metavar="FILE",
        help="write the simulated clock for a gateway process to follow ([clock] simulated = FILE)",
    )
    parser.add_argument(
        "--line",
        action="append",
        default=[],
        metavar="BUS[:UNIT]=SETTINGS",
        help="line settings of a bus's nodes, or of one node, e.g. bus0=19200-8E1 or bus0:3=9600-8O1: the node "
        "answers only a master at those settings (may be repeated)",
    )
    parser.add_argument(
        "--tcp-port",
        type=int,
        default=0,
        metavar="N",
        help="serve the Modbus TCP buses on fixed ports 127.0.0.1:N, N+1, ... in the scenario's order "
        "(default 0: the scenario's ports, or any free one)",
    )
    parser.add_argument(
        "--print-gateway-config",
        nargs="?",
        const="-",
        metavar="FILE",
        help="a gateway configuration (TOML) that polls this site: alone, print it and exit (the TCP ports "
        "must be fixed: --tcp-port); with FILE, write it once the site runs, and keep running",
    )
    parser.set_defaults(func=run)
    return parser


def with_lines(scenario: Scenario, overrides: list[str]) -> Scenario:
    """The scenario with --line overrides applied; SystemExit naming a bad one."""
    buses = {bus.name: bus for bus in scenario.buses}
    for text in overrides:
        target, sep, value = text.partition("=")
        name, _, unit_text = target.partition(":")
        bus = buses.get(name)
        if not sep or bus is None or bus.transport != "rtu":
            rtu = ", ".join(b.name for b in scenario.buses if b.transport == "rtu") or "none"
            raise SystemExit(f"sitewatch simulate: --line {text!r}: expected BUS[:UNIT]=SETTINGS, BUS one of: {rtu}")
        if unit_text and not unit_text.isdigit():
            raise SystemExit(f"sitewatch simulate: --line {text!r}: unit {unit_text!r} is not a unit id")
        unit = int(unit_text) if unit_text else None
        try:
            line = LineSettings.parse(value)
        except ValueError as error:
            raise SystemExit(f"sitewatch simulate: --line {text!r}: {error}") from None
        if unit is not None and unit not in {n.unit_id for n in bus.nodes}:
            raise SystemExit(f"sitewatch simulate: --line {text!r}: bus {name} has no unit {unit}")
        vendor = unit is not None and any(n.profile for n in bus.nodes if n.unit_id == unit)
        rates = STANDARD_BAUDS if vendor else BAUD_RATES  # a vendor device may run slower than a sitewatch node
        if line.baud not in rates or line.stopbits != 1:
            what = "a vendor device" if vendor else "a sitewatch node"
            raise SystemExit(
                f"sitewatch simulate: --line {text!r}: {what} runs at {', '.join(map(str, rates))} baud, 8N1, 8E1 "
                "or 8O1"
            )
        if unit is None:
            buses[name] = replace(bus, baud=line.baud, parity=line.parity)
            continue
        nodes = tuple(replace(n, baud=line.baud, parity=line.parity) if n.unit_id == unit else n for n in bus.nodes)
        buses[name] = replace(bus, nodes=nodes)
    return replace(scenario, buses=tuple(buses[b.name] for b in scenario.buses))


def list_scenarios() -> int:
    for name in builtin_names():
        try:
            scenario = load_builtin(name)
        except ScenarioError as error:
            print(f"{name}: cannot be loaded: {error}")
            continue
        buses = ", ".join(f"{b.name} ({len(b.nodes)} nodes{', tcp' if b.transport == 'tcp' else ''})"
                          for b in scenario.buses)
        print(f"{name}: {_hours(scenario.duration)} from {scenario.start:%Y-%m-%d %H:%M}; buses {buses}")
        text = " ".join(scenario.description.split())
        print(textwrap.indent(textwrap.fill(text, 96), "    "))
    return 0


def _hours(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    minutes = rest // 60
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _seconds(text: str) -> float | None:
    """A plain number of seconds, or a duration text like "90s", "15m", "1h30m"."""
    try:
        value = float(text)
    except ValueError:
        return parse_duration(text)
    return value if math.isfinite(value) and value >= 0 else None


def _check(args: argparse.Namespace) -> tuple[Scenario, float]:
    if not args.speed > 0 or not math.isfinite(args.speed):
        raise SystemExit("sitewatch simulate: --speed must be a positive number")
    if args.duration is not None and not args.duration > 0:
        raise SystemExit("sitewatch simulate: --duration must be a positive number of seconds")
    if not 0 <= args.control_port <= 65535:
        raise SystemExit("sitewatch simulate: --control-port must be a port number (0: off)")
    skip = _seconds(args.skip)
    if skip is None:
        raise SystemExit(f"sitewatch simulate: --skip {args.skip!r} is not a duration like 90s, 15m, 3h")
    try:
        scenario = find_scenario(args.scenario)
    except ScenarioError as error:
        raise SystemExit(f"sitewatch simulate: {error}") from None
    if skip >= scenario.duration:
        raise SystemExit(f"sitewatch simulate: --skip {args.skip} is past the scenario's end")
    return with_tcp_ports(with_lines(scenario, args.line), args.tcp_port), skip


def with_tcp_ports(scenario: Scenario, first: int) -> Scenario:
    """The scenario with its TCP buses on first, first + 1, ... (0: as the scenario says)."""
    if first == 0:
        return scenario
    tcp = [bus.name for bus in scenario.buses if bus.transport == "tcp"]
    if not tcp:
        raise SystemExit(f"sitewatch simulate: --tcp-port: scenario {scenario.name!r} has no Modbus TCP bus")
    if not 1 <= first <= 65536 - len(tcp):
        raise SystemExit(f"sitewatch simulate: --tcp-port {first}: the {len(tcp)} TCP bus(es) need ports "
                         f"{first} ... {first + len(tcp) - 1}, within 1 ... 65535")
    ports = {name: first + i for i, name in enumerate(tcp)}
    buses = tuple(replace(bus, port=ports[bus.name]) if bus.name in ports else bus for bus in scenario.buses)
    return replace(scenario, buses=buses)


def _planned_addresses(scenario: Scenario, bus_dir: Path) -> dict[str, str]:
    """Where the buses will be served, before they start: needs every TCP port fixed."""
    addresses = {}
    for bus in scenario.buses:
        if bus.transport == "tcp":
            if not bus.port:
                raise SystemExit(f"sitewatch simulate: --print-gateway-config: bus {bus.name!r} gets a free TCP port "
                                 f"at each start: fix it with --tcp-port N (and give the same to the simulator)")
            addresses[bus.name] = f"tcp://127.0.0.1:{bus.port}"
        else:
            addresses[bus.name] = str(bus_dir.absolute() / bus.name)  # the stable link Site makes
    return addresses


def _gateway_config(args: argparse.Namespace, scenario: Scenario, addresses: dict[str, str]) -> str:
    try:
        return gateway_config_text(scenario, addresses, args.bus_dir.absolute() / "gateway",
                                   args.clock_file.absolute() if args.clock_file else None, args.speed)
    except SimConfigError as error:
        raise SystemExit(f"sitewatch simulate: --print-gateway-config: {error}") from None


def _absolute(paths: dict[str, str]) -> dict[str, str]:
    return {bus: a if a.startswith("tcp://") else str(Path(a).absolute()) for bus, a in paths.items()}


def _write_whole(path: Path, text: str) -> None:
    """Whole or not at all: a gateway started on seeing the file never reads half of it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


class StopRequest:
    """Set by SIGINT/SIGTERM, polled by the main loop.

    Not a threading.Event: Event.set() takes the Event's lock, and a signal that lands while the main thread
    holds that lock inside Event.wait() runs the handler in that same thread, which then waits for itself
    forever (stress run s5b: a simulator that ignored SIGTERM for a minute). Here the handler only stores a bool.
    """

    def __init__(self) -> None:
        self.requested = False

    def set(self, *_: object) -> None:
        self.requested = True

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` (a signal cuts it short); True once a stop was asked for."""
        if not self.requested:
            time.sleep(timeout)
        return self.requested


def run(args: argparse.Namespace) -> int:
    if args.list:
        return list_scenarios()
    scenario, skip = _check(args)
    if args.print_gateway_config == "-":
        print(_gateway_config(args, scenario, _planned_addresses(scenario, args.bus_dir)), end="", flush=True)
        return 0
    stop = StopRequest()
    signal.signal(signal.SIGINT, stop.set)
    signal.signal(signal.SIGTERM, stop.set)
    site = Site(scenario, args.bus_dir, seed=args.seed, speed=args.speed, skip=skip, truth=args.truth)
    control = ControlServer(site, args.control_port) if args.control_port else None
    started = time.monotonic()
    site.start()
    try:
        start = scenario.local_time(skip)
        print(
            f"simulating scenario {scenario.name!r} (seed {site.seed}) from {start:%Y-%m-%d %H:%M:%S %z} "
            f"at {args.speed:g}x speed",
            flush=True,
        )
        for line in site.describe():
            print(line, flush=True)
        if args.clock_file is not None:
            site.write_clock(args.clock_file)
            print(f"clock: {args.clock_file}", flush=True)
        if args.truth is not None:
            print(f"truth: {args.truth}", flush=True)
        if args.print_gateway_config is not None:
            _write_whole(Path(args.print_gateway_config), _gateway_config(args, scenario, _absolute(site.paths)))
            print(f"gateway config: {args.print_gateway_config}", flush=True)
        if control is not None:
            print(f"control: {control.start()}/faults", flush=True)
        while not stop.requested:
            if site.finished:
                print("the scenario has ended", flush=True)
                break
            if args.duration is not None and time.monotonic() - started >= args.duration:
                break
            stop.wait(0.05)
    finally:
        end = scenario.local_time(site.scenario_time())
        counts = [(bus.name, bus.stats) for bus in site.running]
        if control is not None:
            control.stop()
        site.stop()
    print(f"stopped at simulated {end:%Y-%m-%d %H:%M:%S}", flush=True)
    for name, stats in counts:
        print(f"  {name}: {stats.frames_in} requests, {stats.replies} replies, {stats.samples} samples", flush=True)
    return 0
