"""`sitewatch simulate`: run a simulated site on pseudo-terminals until stopped."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from simulator.site import DEMO_SITE, Site

DEFAULT_BUS_DIR = Path("/tmp/sitewatch")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "simulate",
        help="run a simulated site: firmware nodes answering Modbus RTU on pseudo-terminals",
        description=(
            "Run simulated nodes (the real firmware code on simulated sensors) on pseudo-terminal buses. "
            "Each bus gets a stable path (a symlink in --bus-dir) that a Modbus master such as the gateway "
            "or mbpoll opens at 9600 baud 8N1."
        ),
    )
    parser.add_argument("--bus-dir", type=Path, default=DEFAULT_BUS_DIR, help=f"where bus links go ({DEFAULT_BUS_DIR})")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second (default: 1)")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many real seconds")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.speed <= 0:
        raise SystemExit("sitewatch simulate: --speed must be positive")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    site = Site(DEMO_SITE, args.bus_dir, seed=args.seed, speed=args.speed)
    paths = site.start()
    try:
        for spec in DEMO_SITE:
            units = ", ".join(f"{n.kind} unit {n.unit_id}" for n in spec.nodes)
            print(f"{spec.name}: {paths[spec.name]} ({spec.baud} baud 8N1; {units})", flush=True)
        stop.wait(args.duration)
    finally:
        site.stop()
    return 0
