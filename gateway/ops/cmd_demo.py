"""`sitewatch demo`: a simulated site and the gateway together, with a live table."""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live

from gateway.acquire.poller import BusConfig, NodeConfig
from gateway.ops.config import GatewayConfig
from gateway.ops.live_view import LatestReadings
from gateway.ops.service import Gateway
from simulator.scenario import load_builtin
from simulator.site import DEMO_SCENARIO, DEMO_SITE, Site

DEFAULT_STORE = Path("var/demo.sqlite3")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="run a simulated site and the gateway together, showing live readings",
        description=(
            "Start a simulated construction site (dust, wind, noise and tilt nodes running the real firmware "
            "code on a pseudo-terminal RS-485 bus) and the gateway polling it over Modbus RTU into the embedded "
            "SQLite store. Shows a live table; stops on Ctrl-C or after --duration."
        ),
    )
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    parser.add_argument(
        "--store", type=Path, default=DEFAULT_STORE, help=f"SQLite store to write (default: {DEFAULT_STORE})"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the simulated site (default: 1)")
    parser.set_defaults(func=run)
    return parser


def demo_config(bus_paths: dict[str, str], store: Path) -> GatewayConfig:
    buses = []
    for spec in DEMO_SITE:
        nodes = tuple(NodeConfig(f"{n.kind}-{n.unit_id}", n.kind, n.unit_id, 1.0) for n in spec.nodes)
        buses.append(BusConfig(spec.name, bus_paths[spec.name], nodes, baud=spec.baud))
    return GatewayConfig(tuple(buses), store)


def run(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        raise SystemExit("sitewatch demo: --duration must be a positive number of seconds")
    return asyncio.run(_demo(args.duration, args.store, args.seed))


async def _demo(duration: float | None, store: Path, seed: int) -> int:
    console = Console()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    latest = LatestReadings()
    with tempfile.TemporaryDirectory(prefix="sitewatch-demo-") as bus_dir:
        # The demo scenario's site (simulator/scenarios/demo.toml): its physics, from its start time.
        site = Site(load_builtin(DEMO_SCENARIO), Path(bus_dir), seed=seed)
        paths = site.start()
        try:
            for name, path in paths.items():
                console.print(f"simulated {name}: {path} (9600 baud 8N1)")
            gateway = Gateway(demo_config(paths, store), on_readings=latest.update)
            task = asyncio.create_task(gateway.run(stop))
            started = time.monotonic()
            health = {name: h for p in gateway.pollers for name, h in p.health.items()}
            title = "sitewatch demo - Ctrl-C to stop"
            if console.is_terminal:
                with Live(latest.table(health, title), console=console, refresh_per_second=4) as live:
                    while not await _stopped(stop, started, duration, 0.25):
                        live.update(latest.table(health, title))
            else:
                next_line = 0.0
                while not await _stopped(stop, started, duration, 0.5):
                    if time.monotonic() - started >= next_line and latest.latest:
                        console.print(f"[{time.monotonic() - started:5.1f}s] {latest.line()}", soft_wrap=True)
                        next_line += 2.0
            stop.set()
            await task
        finally:
            site.stop()
    # soft_wrap: a long path must stay on one line, copyable.
    console.print(f"stored {gateway.stored} readings in {store.resolve()}", soft_wrap=True)
    for node, count in gateway.store_counts().items():
        console.print(f"  {node}: {count} readings in the store")
    return 0


async def _stopped(stop: asyncio.Event, started: float, duration: float | None, tick: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), tick)
        return True
    except TimeoutError:
        return duration is not None and time.monotonic() - started >= duration
