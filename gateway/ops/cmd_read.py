"""`sitewatch read`: one decoded reading of one device, the "does this sensor work" check on site.

With ``--profile NAME`` the device is a vendor transmitter read through its
profile (gateway/profiles: its merged requests, decoded with sentinels and
ranges); without it, a sitewatch node: its kind comes from ``--kind`` or
from its own ``node_kind`` register, then one poll of its input block is
decoded through the register map. ``--list-profiles`` lists the profiles
this machine knows (shipped, /etc/sitewatch/profiles, --profile-dir).

The line speed defaults to the profile's (else 9600 8N1); over Modbus TCP
(``--tcp HOST[:PORT]``) there is none. Exit status: 0 a reading was
printed, 1 the device did not deliver one (no answer, an exception, a reply
that does not decode; the reason on stderr), 2 bad arguments or profiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from firmware import regmap
from gateway.acquire.decode import KIND_BY_NAME, DecodeError, decode_inputs
from gateway.acquire.link import Link, NoReply, RtuLink, TcpLink
from gateway.model import Quality
from gateway.profiles.vendor import DecodeError as ProfileDecodeError
from gateway.profiles.vendor import ProfileError, VendorProfile, load_profile, load_vendor_profiles
from gateway.protocols import modbus_rtu_master as rtu

DEFAULT_BAUD = 9600
DEFAULT_PARITY = "N"
DEFAULT_TIMEOUT = 1.0  # s: a person waits for one reading; slow transmitters take a few hundred ms


class ReadFailed(Exception):
    """The device did not deliver a reading; the message says why."""


@dataclass(frozen=True)
class Value:
    name: str
    value: float | None
    unit: str
    quality: Quality


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "read",
        help="print one decoded reading of a sitewatch node or a vendor device (--profile)",
        description="Read one device once and print its decoded values: the on-site check that a sensor works.",
    )
    parser.add_argument("--port", help="serial port, e.g. /dev/ttyUSB0")
    parser.add_argument("--tcp", metavar="HOST[:PORT]", help="Modbus TCP endpoint instead of a serial port")
    parser.add_argument("--unit", type=int, help="Modbus unit id, 1 ... 247")
    parser.add_argument("--profile", help="vendor profile name (or path of a .toml profile); none: a sitewatch node")
    parser.add_argument("--kind", choices=sorted(KIND_BY_NAME), help="sitewatch node kind (default: ask the node)")
    parser.add_argument("--baud", type=int, help=f"line speed (default: the profile's, else {DEFAULT_BAUD})")
    parser.add_argument("--parity", choices=["N", "E", "O"], help="parity (default: the profile's, else N)")
    parser.add_argument("--stopbits", type=int, choices=[1, 2], default=1)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="reply timeout per request, s")
    parser.add_argument("--profile-dir", type=Path, action="append", default=[], metavar="DIR",
                        help="a further folder of profiles (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the reading as JSON")
    parser.add_argument("--list-profiles", action="store_true", help="list the known profiles and exit")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        profiles = load_vendor_profiles(args.profile_dir)
    except ProfileError as error:
        print(f"sitewatch read: {error}", file=sys.stderr)
        return 2
    if args.list_profiles:
        for name, p in sorted(profiles.items()):
            line = f"{p.baud or '?'} {p.parity or '?'}"
            print(f"{name:34} {p.kind:6} {line:9} {p.description}")
        return 0
    problem = _check_arguments(args)
    if problem:
        print(f"sitewatch read: {problem}", file=sys.stderr)
        return 2
    profile: VendorProfile | None = None
    if args.profile is not None:
        try:
            profile = _find(args.profile, profiles)
        except ProfileError as error:
            print(f"sitewatch read: {error}", file=sys.stderr)
            return 2
    baud = args.baud or (profile.baud if profile and profile.baud else DEFAULT_BAUD)
    parity = args.parity or (profile.parity if profile and profile.parity else DEFAULT_PARITY)
    link: Link
    if args.tcp:
        host, _, port = args.tcp.partition(":")
        link = TcpLink(host, int(port or 502), ceiling=args.timeout)
        where = args.tcp
    else:
        link = RtuLink(args.port, baud, parity, args.stopbits)
        where = f"{args.port} {baud} 8{parity}{args.stopbits}"
    try:
        kind, values = asyncio.run(_read(link, args.unit, profile, args.kind, args.timeout))
    except ReadFailed as error:
        print(f"sitewatch read: unit {args.unit} on {where}: {error}", file=sys.stderr)
        return 1
    what = f"profile {profile.name}" if profile else "sitewatch node"
    if args.json:
        print(json.dumps({"unit": args.unit, "kind": kind, "source": what,
                          "values": {v.name: {"value": v.value, "unit": v.unit, "quality": v.quality.value}
                                     for v in values}}))
        return 0
    print(f"unit {args.unit} on {where}: {kind} ({what})")
    for v in values:
        shown = "-" if v.value is None else f"{v.value:.6g}"
        flag = "" if v.quality is Quality.NORMAL else f"  flag {v.quality.value} ({v.quality.name.lower()})"
        print(f"  {v.name:14} {shown:>12} {v.unit}{flag}".rstrip())
    return 0


def _check_arguments(args: argparse.Namespace) -> str | None:
    if bool(args.port) == bool(args.tcp):
        return "give either --port or --tcp"
    if args.unit is None or not 1 <= args.unit <= 247:
        return "--unit: a unit id 1 ... 247 is required"
    if args.profile is not None and args.kind is not None:
        return "--kind is for sitewatch nodes; a vendor device's kind comes from its --profile"
    if args.tcp and (args.baud or args.parity):
        return "--baud and --parity apply to a serial port only"
    if not 0.01 <= args.timeout <= 30:
        return f"--timeout: {args.timeout} s is outside 0.01 .. 30 s"
    return None


def _find(name: str, profiles: dict[str, VendorProfile]) -> VendorProfile:
    if name.endswith(".toml"):
        return load_profile(Path(name))
    if name not in profiles:
        raise ProfileError(f"no profile {name!r} (known: {', '.join(sorted(profiles))})")
    return profiles[name]


async def _read(
    link: Link, unit: int, profile: VendorProfile | None, kind: str | None, timeout: float
) -> tuple[str, list[Value]]:
    try:
        await link.open()
    except OSError as error:
        raise ReadFailed(f"cannot open: {error}") from error
    try:
        if profile is not None:
            return profile.kind, await _read_device(link, unit, profile, timeout)
        return await _read_node(link, unit, kind, timeout)
    finally:
        link.close()


async def _registers(link: Link, request: rtu.Request, timeout: float, what: str) -> list[int]:
    exchange = await link.transact(request, timeout)
    outcome = exchange.outcome
    if isinstance(outcome, rtu.Registers):
        return list(outcome.values)
    if isinstance(outcome, rtu.ExceptionReply):
        raise ReadFailed(f"{what}: exception {outcome.code} ({outcome.name})")
    if isinstance(outcome, NoReply):
        raise ReadFailed(f"{what}: no reply ({outcome.reason}: {outcome.detail})" if outcome.detail
                         else f"{what}: no reply ({outcome.reason})")
    if isinstance(outcome, rtu.FrameError):
        raise ReadFailed(f"{what}: bad reply ({outcome.problem}: {outcome.detail})")
    raise ReadFailed(f"{what}: unexpected reply {outcome!r}")


async def _read_device(link: Link, unit: int, profile: VendorProfile, timeout: float) -> list[Value]:
    replies = {}
    for read in profile.reads():
        request = rtu.read_registers(unit, read.function, read.address, read.count)
        replies[read] = await _registers(link, request, timeout, f"FC {read.function} {read.address}+{read.count}")
    try:
        decoded = profile.decode_quality(replies)
    except ProfileDecodeError as error:
        raise ReadFailed(str(error)) from error
    return [Value(name, value, profile.unit(name), quality) for name, (value, quality) in decoded.items()]


async def _read_node(link: Link, unit: int, kind: str | None, timeout: float) -> tuple[str, list[Value]]:
    if kind is None:
        node_kind = regmap.find(regmap.DIAGNOSTICS, "node_kind")[1]
        words = await _registers(link, rtu.read_registers(unit, rtu.READ_INPUT_REGISTERS, node_kind, 1), timeout,
                                 "node_kind")
        kind = regmap.KIND_NAMES.get(words[0])
        if kind is None:
            raise ReadFailed(f"node_kind {words[0]} is no sitewatch kind: a vendor device? try --profile "
                             "(sitewatch read --list-profiles)")
    count = regmap.input_count(KIND_BY_NAME[kind])
    words = await _registers(link, rtu.read_registers(unit, rtu.READ_INPUT_REGISTERS, 0, count), timeout,
                             "input registers")
    try:
        sample = decode_inputs(kind, words)
    except DecodeError as error:
        raise ReadFailed(str(error)) from error
    values = [
        Value(name, None if sample.quality[name] is Quality.DEVICE_FAULT else value, sample.units[name],
              sample.quality[name])
        for name, value in sample.values.items()
    ]
    values.append(Value("sample_seq", float(sample.sequence), "", Quality.NORMAL))
    return kind, values

