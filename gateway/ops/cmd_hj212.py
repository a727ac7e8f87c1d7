"""`sitewatch hj212 decode|listen`: look inside HJ 212-2017 packets, or receive them from monitors.

decode: a packet as argument, or packets on stdin (one per line): its fields,
the Flag's bits, the factors and the CRC verdict. A packet that fails its CRC
or length is an error (exit status 1) naming what is wrong.

listen: a TCP receiver that validates, acknowledges (9014 for data, 9011 for
requests, when the packet asks) and prints what arrives, one line per
packet, and with ``--jsonl FILE`` appends it as JSON, with ``--influx-url``
writes it to InfluxDB (gateway/deliver/hj212_influx.py). Writers of received
packets are built by ``packet_writers``: each is a callable taking a ``Received``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from gateway.deliver import hj212_influx
from gateway.deliver.hj212_influx import InfluxPacketWriter
from gateway.deliver.hj212_listen import Received, Receiver
from gateway.deliver.influx import make_writer, read_credentials
from gateway.deliver.sinks import SinkConfigError
from gateway.protocols import hj212
from gateway.protocols.hj212 import FrameError, Packet

DEFAULT_PORT = 9212  # no port is standard; platforms each give their own
INFLUX_FLUSH_TIMEOUT_S = 15.0  # at a stop, the time InfluxDB gets to take what is still buffered


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "hj212",
        help="decode HJ 212-2017 packets, or listen for them from monitors",
        description="HJ 212-2017 tools: decode a packet, or run a receiver that validates and acknowledges them.",
    )
    commands = parser.add_subparsers(dest="hj212_command", metavar="COMMAND", required=True)
    decode = commands.add_parser(
        "decode",
        help="show a packet's fields, flags and CRC verdict (a wrong CRC is an error)",
        description=(
            "Decode HJ 212-2017 packets: the packet as an argument, or one packet per line on stdin. "
            "Prints the header fields, the Flag's bits, the CP fields and the CRC verdict. "
            "Exit status 1 when a packet fails its CRC, length or format."
        ),
    )
    decode.add_argument("packet", nargs="?", help="the packet, e.g. '##0101QN=...&&1C80' (default: read stdin)")
    decode.add_argument("--json", action="store_true", help="print each packet as one JSON object")
    decode.set_defaults(func=run_decode)
    listen = commands.add_parser(
        "listen",
        help="receive packets over TCP: validate, acknowledge, print (and --jsonl FILE)",
        description=(
            "A TCP receiver for HJ 212-2017 packets from monitors and gateways: checks CRC and length, "
            "replies 9014 / 9011 when a packet asks for it, joins split packets, prints one line per packet."
        ),
    )
    listen.add_argument("--host", default="0.0.0.0", help="address to listen on (default: every interface)")
    listen.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    listen.add_argument("--jsonl", type=Path, metavar="FILE", help="also append each packet to FILE as JSON")
    listen.add_argument("--no-ack", action="store_true", help="never reply (observe without answering)")
    listen.add_argument("--count", type=int, metavar="N", help="stop after N packets (default: run until stopped)")
    influx = listen.add_argument_group(
        "InfluxDB", "also write each data packet's factors to InfluxDB (measurement hj212, docs/influxdb-schema.md)")
    influx.add_argument("--influx-url", metavar="URL", help="InfluxDB's URL, e.g. http://127.0.0.1:8086")
    influx.add_argument("--influx-db", metavar="DATABASE", help="InfluxDB 1.x database (/write, the v1 API)")
    influx.add_argument("--influx-bucket", metavar="BUCKET", help="bucket (the v2 API: InfluxDB 2.x/3.x, 1.8+)")
    influx.add_argument("--influx-org", default="", metavar="ORG", help="organisation (v2 API, InfluxDB 2.x)")
    influx.add_argument("--credentials-file", default="", metavar="FILE",
                        help="file holding the v2 token, or username:password for v1 (never logged)")
    influx.add_argument("--utc-offset-h", type=float, default=8.0, metavar="HOURS",
                        help="the monitors' DataTime is local time this many hours ahead of UTC (default 8: China)")
    listen.set_defaults(func=run_listen)
    return parser


def _flag_text(flag: int | None) -> str:
    if flag is None:
        return "absent"
    bits = [f"version {flag >> 2}"]
    bits.append("split (PNUM/PNO)" if flag & hj212.FLAG_SPLIT else "not split")
    bits.append("reply wanted" if flag & hj212.FLAG_REPLY else "no reply wanted")
    return f"{flag}: " + ", ".join(bits)


def describe(packet: Packet) -> str:
    lines = [
        f"QN    {packet.qn or '(absent)'}",
        f"ST    {packet.st}",
        f"CN    {packet.cn}",
        f"PW    {packet.pw if packet.pw is not None else '(absent)'}",
        f"MN    {packet.mn}",
        f"Flag  {_flag_text(packet.flag)}",
    ]
    if packet.pnum is not None or packet.pno is not None:
        lines.append(f"part  {packet.pno} of {packet.pnum}")
    lines += [f"{key:<5} {value}  (not a standard header field)" for key, value in packet.extra]
    fields = {k: v for k, v in packet.cp_fields().items() if "-" not in k}
    lines += [f"CP    {key}={value}" for key, value in fields.items()]
    for code, values in packet.factors().items():
        flag = values.get("Flag")
        note = "" if flag is None or flag in hj212.STANDARD_FLAGS else " (not a standard data flag)"
        shown = ", ".join(f"{suffix}={value}" for suffix, value in values.items())
        lines.append(f"      {code}: {shown}{note}")
    lines.append("CRC   ok" + (" (lower-case hex)" if packet.crc_lowercase else ""))
    return "\n".join(lines)


def run_decode(args: argparse.Namespace) -> int:
    texts = [args.packet] if args.packet is not None else [line for line in sys.stdin.read().splitlines() if line]
    if not texts:
        print("hj212 decode: no packet given (argument or stdin)", file=sys.stderr)
        return 2
    status = 0
    for number, text in enumerate(texts, start=1):
        where = "packet" if args.packet is not None else f"line {number}"
        try:
            packet = hj212.decode(text.strip().encode("utf-8"))
        except FrameError as error:
            print(f"hj212 decode: {where}: {error}", file=sys.stderr)
            status = 1
            continue
        if args.json:
            print(json.dumps(_packet_dict(packet), ensure_ascii=False))
        else:
            if len(texts) > 1:
                print(f"-- {where}")
            print(describe(packet))
    return status


def _packet_dict(packet: Packet) -> dict[str, object]:
    return {
        "qn": packet.qn, "st": packet.st, "cn": packet.cn, "pw": packet.pw, "mn": packet.mn, "flag": packet.flag,
        "pnum": packet.pnum, "pno": packet.pno, "extra": dict(packet.extra),
        "fields": {k: v for k, v in packet.cp_fields().items() if "-" not in k},
        "factors": packet.factors(), "crc": "ok", "crc_lowercase": packet.crc_lowercase,
    }


def summary(received: Received) -> str:
    parts = [received.peer, f"MN={received.mn}", f"CN={received.cn}"]
    if received.data_time:
        parts.append(f"DataTime={received.data_time}")
    for code, factor in received.factors.items():
        shown = "/".join(f"{s}={'?' if v is None else f'{v:g}'}" for s, v in factor.values.items()) or "-"
        parts.append(f"{code}[{shown} {factor.flag or ''}]".replace(" ]", "]"))
    others = {k: v for k, v in received.packet.cp_fields().items() if "-" not in k and k != "DataTime"}
    parts += [f"{k}={v}" for k, v in others.items()]
    return " ".join(parts)


PacketWriter = Callable[[Received], None]


def packet_writers(args: argparse.Namespace, out: TextIO, files: contextlib.ExitStack) -> list[PacketWriter]:
    """What is done with each received packet. The InfluxDB writer is one more entry here."""

    def show(received: Received) -> None:
        print(summary(received), file=out, flush=True)

    writers: list[PacketWriter] = [show]
    if args.jsonl is not None:
        args.jsonl.parent.mkdir(parents=True, exist_ok=True)
        jsonl = files.enter_context(args.jsonl.open("a", encoding="utf-8"))

        def append(received: Received) -> None:
            jsonl.write(json.dumps(received.as_dict(), ensure_ascii=False) + "\n")
            jsonl.flush()

        writers.append(append)
    influx = influx_writer(args, out)
    if influx is not None:
        writers.append(influx)
    return writers


def influx_writer(args: argparse.Namespace, out: TextIO) -> InfluxPacketWriter | None:
    """The InfluxDB writer --influx-url asks for (None without it); SystemExit naming a bad option."""
    url = getattr(args, "influx_url", None)
    if url is None:
        if args.influx_db or args.influx_bucket:
            raise SystemExit("hj212 listen: --influx-db / --influx-bucket need --influx-url")
        return None
    if bool(args.influx_db) == bool(args.influx_bucket):
        raise SystemExit("hj212 listen: --influx-url needs either --influx-db (InfluxDB 1.x) or --influx-bucket "
                         "(v2 API), not both")
    if not url.startswith(("http://", "https://")):
        raise SystemExit(f"hj212 listen: --influx-url {url!r} must start with http:// or https://")
    api = "v1" if args.influx_db else "v2"
    try:
        credentials = read_credentials(args.credentials_file, api)
    except SinkConfigError as error:
        raise SystemExit(f"hj212 listen: {error}") from None
    writer = make_writer(api, url, args.influx_db or "", args.influx_org, args.influx_bucket or "",
                         hj212_influx.PRECISION, True, 10.0, credentials)

    def report(message: str) -> None:
        print(f"influxdb: {message}", file=out, flush=True)

    return InfluxPacketWriter(writer, round(args.utc_offset_h * 3600), on_error=report)


async def listen(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    stop = asyncio.Event()
    received = 0

    with contextlib.ExitStack() as files:
        writers = packet_writers(args, out, files)

        def on_packet(packet: Received) -> None:
            nonlocal received
            for write in writers:
                write(packet)
            received += 1
            if args.count is not None and received >= args.count:
                stop.set()

        def on_error(peer: str, error: FrameError) -> None:
            print(f"{peer} error: {error}", file=out, flush=True)

        receiver = Receiver(on_packet, on_error, acknowledge=not args.no_ack)
        influx = next((w for w in writers if isinstance(w, InfluxPacketWriter)), None)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        try:
            host, port = await receiver.start(args.host, args.port)
        except OSError as error:
            print(f"hj212 listen: cannot listen on {args.host}:{args.port}: {error.strerror or error}",
                  file=sys.stderr)
            return 1
        print(f"listening on {host}:{port}", file=out, flush=True)
        posting = asyncio.create_task(influx.run(stop)) if influx is not None else None
        try:
            await stop.wait()
        finally:
            await receiver.close()
            if posting is not None and influx is not None:
                await posting
                await influx.close(INFLUX_FLUSH_TIMEOUT_S)
        errors = ", ".join(f"{k} {v}" for k, v in sorted(receiver.errors.items())) or "none"
        print(f"{received} packets, errors: {errors}", file=out, flush=True)
        if influx is not None:
            print(f"influxdb: {influx.summary()}", file=out, flush=True)
    return 0


def run_listen(args: argparse.Namespace) -> int:
    return asyncio.run(listen(args))
