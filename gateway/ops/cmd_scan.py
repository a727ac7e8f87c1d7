"""`sitewatch scan`: what answers on an RS-485 bus, at which line setting, and what it is.

The installer's first tool. At a known setting (--baud, --parity) it probes
unit ids 1-247 (or --ids) with timeouts from the baud rate's character time,
stopping after --stop-after-silence silent ids in a row. With --auto it first
finds the line setting of a lone device (gateway/scan/plan.py SettingsSearch).
Every unit that answers is identified (a sitewatch node by its node_kind, any
other device by the vendor profiles). The output is for a person, or with
--toml a [[bus]] fragment for the gateway's configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gateway.ops.config import toml_value
from gateway.profiles.vendor import ProfileError, VendorProfile, load_vendor_profiles
from gateway.scan.plan import (
    DEFAULT_LATENCY,
    DEFAULT_PROBE_IDS,
    SCAN_BAUDS,
    SerialSettings,
    SettingsSearch,
    UnitSweep,
    candidate_settings,
)
from gateway.scan.run import Identity, SerialLine, identify, search_settings, sweep_units


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "scan",
        help="find the Modbus devices on a bus: unit ids, line setting, what each one is",
        description=(
            "Probe unit ids on an RS-485 bus (a read of holding register 0: any reply, even an exception, "
            "means a device is there) and identify each device: sitewatch nodes by their node_kind, others by "
            "the vendor profiles. --auto finds the baud rate and parity of a lone device first."
        ),
    )
    parser.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
    parser.add_argument("--baud", type=int, default=9600, help="baud rate (default 9600)")
    parser.add_argument("--parity", choices=["N", "E", "O"], default="N", help="parity (default N: 8N1)")
    parser.add_argument(
        "--auto", action="store_true", help="find the baud rate and parity first (a lone device on the bus)"
    )
    parser.add_argument("--ids", default="1-247", metavar="A-B", help="unit ids to probe (default 1-247)")
    parser.add_argument(
        "--stop-after-silence",
        type=int,
        default=0,
        metavar="N",
        help="stop after N silent unit ids in a row (default 0: probe every id)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=DEFAULT_LATENCY * 1000,
        metavar="MS",
        help=f"least wait for a reply to start, for the adapter and the device (default {DEFAULT_LATENCY * 1000:g})",
    )
    parser.add_argument("--no-identify", action="store_true", help="only list the unit ids that answer")
    parser.add_argument("--profiles", type=Path, action="append", default=[], metavar="DIR",
                        help="another folder of vendor profiles (*.toml); may be repeated")
    parser.add_argument("--toml", action="store_true", help="print a [[bus]] configuration fragment to paste")
    parser.set_defaults(func=run)
    return parser


def parse_ids(text: str) -> list[int]:
    """ "1-247", "5", "1-10,20" -> unit ids; SystemExit naming the problem."""
    ids: list[int] = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise SystemExit(f"sitewatch scan: --ids {text!r}: {part!r} is not a unit id or a range A-B") from None
        if not 1 <= first <= last <= 247:
            raise SystemExit(f"sitewatch scan: --ids {text!r}: unit ids are 1 to 247, low to high")
        ids += [u for u in range(first, last + 1) if u not in ids]
    return ids


def vendor_profiles(extra: Sequence[Path]) -> list[VendorProfile]:
    """The vendor profiles: shipped, /etc/sitewatch/profiles and --profiles folders."""
    try:
        return list(load_vendor_profiles(tuple(extra)).values())
    except ProfileError as error:
        raise SystemExit(f"sitewatch scan: {error}") from None


def run(args: argparse.Namespace) -> int:
    ids = parse_ids(args.ids)
    if args.stop_after_silence < 0:
        raise SystemExit("sitewatch scan: --stop-after-silence must be 0 or more")
    if not args.latency_ms > 0:
        raise SystemExit("sitewatch scan: --latency-ms must be a positive number")
    err = Console(stderr=True)
    try:
        settings = SerialSettings(args.baud, args.parity)
    except ValueError as error:
        raise SystemExit(f"sitewatch scan: {error}") from None
    profiles = [] if args.no_identify else vendor_profiles(args.profiles)
    found = None
    try:
        with SerialLine(args.port, args.latency_ms / 1000) as line, _progress(err) as bar:
            if args.auto:
                first = [SerialSettings(p.baud, p.parity or "N") for p in profiles if p.baud in SCAN_BAUDS]
                search = SettingsSearch(candidate_settings(first=first), DEFAULT_PROBE_IDS, ids, line.latency)
                task = bar.add_task("finding the line setting", total=len(search.candidates) * len(ids))
                found = search_settings(line, search, lambda n, what: bar.update(task, completed=n, description=what))
                bar.update(task, completed=search.requests, total=search.requests)
                if found is None:
                    bar.stop()
                    err.print(f"no device answered at any setting ({search.requests} requests, "
                              f"{search.line_time:.1f} s of line time)")
                    return 1
                err.print(f"found: unit {found.unit} answers at {found.settings} ({search.requests} requests)")
                settings = found.settings
            sweep = UnitSweep(ids, args.stop_after_silence, known=[found.unit] if found is not None else [])
            task = bar.add_task(f"scanning at {settings}", total=len(ids))
            sweep_units(line, settings, sweep, lambda n, what: bar.update(task, completed=len(sweep.results),
                                                                           description=what))
            bar.update(task, completed=len(ids), description=f"scanned at {settings}")
            found_units = [
                Identity(u, settings, identified=False) if args.no_identify else identify(line, u, profiles)
                for u in sweep.answered
            ]
    except OSError as error:
        raise SystemExit(f"sitewatch scan: {args.port}: {error.strerror or error}") from None
    if args.toml:
        print(toml_fragment(args.port, settings, found_units))
    else:
        print(report(args.port, settings, sweep, found_units, line.requests))
    return 0 if found_units else 1


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=not console.is_terminal,
    )


def report(port: str, settings: SerialSettings, sweep: UnitSweep, units: Sequence[Identity], requests: int) -> str:
    probed = len(sweep.results)
    lines = [f"{port} at {settings}: {len(units)} device(s) answered, {probed} unit ids probed, {requests} requests"]
    for identity in units:
        lines.append(f"  unit {identity.unit:3d}: {identity.label}")
        for other in identity.matches[1:3]:
            lines.append(f"            or {other.profile} ({other.kind}), {other.confidence:.0%}")
    for unit in sweep.garbled:
        lines.append(f"  unit {unit:3d}: garbage only (a device at another baud rate or parity, or two on one id?)")
    if sweep.garbled and not units:
        lines.append("  nothing answered properly: try --auto, or the baud rate and parity the devices are set to")
    if sweep.stop_after_silence and probed < len(sweep.ids):
        lines.append(f"  stopped after {sweep.stop_after_silence} silent ids in a row (at unit {max(sweep.results)})")
    return "\n".join(lines)


def toml_fragment(port: str, settings: SerialSettings, units: Sequence[Identity]) -> str:
    """A [[bus]] with a [[bus.node]] per sitewatch node and a [[bus.device]] per vendor device that a profile fits."""
    out = [
        "# sitewatch scan: paste into the gateway's configuration; rename the nodes and devices as you like",
        "[[bus]]",
        'name = "bus0"',
        f"port = {toml_value(port)}",
        f"baud = {settings.baud}",
        f"parity = {toml_value(settings.parity)}",
    ]
    for identity in units:
        if identity.sitewatch is not None:
            name = f"{identity.sitewatch}-{identity.unit}"
            out += ["", "[[bus.node]]", f"name = {toml_value(name)}", f"kind = {toml_value(identity.sitewatch)}"]
        elif identity.matches:
            best = identity.matches[0]
            others = "".join(f"; or {m.profile} ({m.confidence:.0%})" for m in identity.matches[1:3])
            out += [
                "",
                f"[[bus.device]]  # {best.profile}: {best.confidence:.0%} sure{others}",
                f"name = {toml_value(f'{best.kind}-{identity.unit}')}",
                f"profile = {toml_value(best.profile)}",
            ]
            # The gateway refuses a device whose profile default differs from its bus: say what the line runs at.
            profile = best.profile_settings
            if profile[0] is not None and profile[0] != settings.baud:
                out.append(f"baud = {settings.baud}  # found on the line (the profile's default: {profile[0]})")
            if profile[1] is not None and profile[1] != settings.parity:
                out.append(f"parity = {toml_value(settings.parity)}  # found on the line (the profile's default: "
                           f"{profile[1]})")
        else:
            out += ["", f"# unit {identity.unit} answered, but no profile fits it: write one (docs/profiles.md)"]
            continue
        out.append(f"unit_id = {identity.unit}")
    return "\n".join(out)


if __name__ == "__main__":
    from gateway.ops.cli import main

    sys.exit(main(["scan", *sys.argv[1:]]))
