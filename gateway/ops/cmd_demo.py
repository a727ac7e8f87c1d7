"""`sitewatch demo`: a simulated site and the gateway together, with a live table."""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from gateway.acquire.poller import BusConfig, NodeConfig
from gateway.deliver.queue import DurableQueue
from gateway.ops.config import GatewayConfig, SinkSpec, SiteConfig
from gateway.ops.demo_services import DemoServices, where_the_data_went
from gateway.ops.live_view import LatestReadings, sinks_line
from gateway.ops.service import Gateway
from simulator.scenario import load_builtin
from simulator.site import DEMO_SCENARIO, DEMO_SITE, Site

DEFAULT_STORE = Path("var/demo.sqlite3")
BACKLOG_EVERY_S = 2.0  # how often the live table's footer counts each sink's backlog in the queue


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="run a simulated site and the gateway together, showing live readings",
        description=(
            "Start a simulated construction site (dust, wind, noise and tilt nodes running the real firmware "
            "code on a pseudo-terminal RS-485 bus) and the gateway polling it over Modbus RTU into the embedded "
            "SQLite store; when influxd is installed, also into an InfluxDB it starts on a free loopback port "
            "(data under var/), and through an HJ 212 sink to a receiver in its process. Shows a live table and "
            "says where the data went; stops on Ctrl-C or after --duration, and stops what it started."
        ),
    )
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    parser.add_argument(
        "--store", type=Path, default=DEFAULT_STORE, help=f"SQLite store to write (default: {DEFAULT_STORE})"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the simulated site (default: 1)")
    parser.add_argument(
        "--influxd", metavar="PATH",
        help="influxd to start (a path, or a name on PATH; default: influxd on PATH or in /usr/bin)",
    )
    parser.add_argument("--no-influx", action="store_true", help="do not start InfluxDB even when it is installed")
    parser.add_argument("--no-hj212", action="store_true", help="do not start the in-process HJ 212 receiver")
    parser.add_argument("--mqtt", action="store_true",
                        help="also start a mosquitto (when installed) on a free loopback port and an MQTT sink to it")
    parser.add_argument("--mosquitto", metavar="PATH", help="mosquitto to start with --mqtt (default: on PATH or in "
                        "/usr/sbin)")
    parser.set_defaults(func=run)
    return parser


def demo_config(bus_paths: dict[str, str], store: Path, sinks: tuple[SinkSpec, ...] = ()) -> GatewayConfig:
    buses = []
    for spec in DEMO_SITE:
        nodes = tuple(NodeConfig(f"{n.kind}-{n.unit_id}", n.kind, n.unit_id, 1.0) for n in spec.nodes)
        buses.append(BusConfig(spec.name, bus_paths[spec.name], nodes, baud=spec.baud))
    return GatewayConfig(tuple(buses), store, sinks=sinks)


def demo_site_name() -> str:
    return SiteConfig().name


def run(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        raise SystemExit("sitewatch demo: --duration must be a positive number of seconds")
    options = DemoOptions(args.influxd, args.no_influx, not args.no_hj212, args.mqtt, args.mosquitto)
    return asyncio.run(_demo(args.duration, args.store, args.seed, options))


@dataclass(frozen=True)
class DemoOptions:
    influxd: str | None = None
    no_influx: bool = False
    hj212: bool = True
    mqtt: bool = False
    mosquitto: str | None = None


async def _demo(duration: float | None, store: Path, seed: int, options: DemoOptions = DemoOptions()) -> int:
    console = Console()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    latest = LatestReadings()
    store.parent.mkdir(parents=True, exist_ok=True)
    services = DemoServices(store)
    try:
        # soft_wrap: a long path or command must stay on one line, copyable.
        if options.influxd is None and not options.no_influx:
            console.print("starting InfluxDB if installed ...")
        for line in await services.start(options.influxd, options.no_influx, options.hj212, options.mosquitto,
                                         no_mqtt=not options.mqtt):
            console.print(line, soft_wrap=True, markup=False)
        gateway = await _run_site(console, stop, latest, store, seed, duration, services)
    finally:
        for line in await services.stop():
            console.print(line, soft_wrap=True, markup=False)
    console.print(f"stored {gateway.stored} readings in {store.resolve()}", soft_wrap=True, markup=False)
    for node, count in gateway.store_counts().items():
        console.print(f"  {node}: {count} readings in the store")
    console.print(sinks_line(*_sink_counts(gateway, await _backlog_after(gateway))), soft_wrap=True, markup=False)
    for line in where_the_data_went(store, services):
        console.print(line, soft_wrap=True, markup=False)
    return 0


async def _run_site(console: Console, stop: asyncio.Event, latest: LatestReadings, store: Path, seed: int,
                    duration: float | None, services: DemoServices) -> Gateway:
    with tempfile.TemporaryDirectory(prefix="sitewatch-demo-") as bus_dir:
        # The demo scenario's site (simulator/scenarios/demo.toml): its physics, from its start time.
        site = Site(load_builtin(DEMO_SCENARIO), Path(bus_dir), seed=seed)
        paths = site.start()
        try:
            for name, path in paths.items():
                console.print(f"simulated {name}: {path} (9600 baud 8N1)")
            config = demo_config(paths, store, services.sinks(demo_site_name()))
            gateway = Gateway(config, on_readings=latest.update)
            task = asyncio.create_task(gateway.run(stop))
            started = time.monotonic()
            health = {name: h for p in gateway.pollers for name, h in p.health.items()}
            title = "sitewatch demo - Ctrl-C to stop"
            backlog: dict[str, int] = {}
            backlog_at = 0.0

            async def footer() -> str:
                nonlocal backlog, backlog_at
                if time.monotonic() - backlog_at >= BACKLOG_EVERY_S:  # a queue query: not at every refresh
                    backlog, backlog_at = await gateway.sink_backlog(), time.monotonic()
                return sinks_line(*_sink_counts(gateway, backlog)) + "\n" + services.running()

            def view(below: str) -> Group:  # the footer under the table, as wide as the terminal
                return Group(latest.table(health, title), Text(below, no_wrap=False))

            if console.is_terminal:
                with Live(view(await footer()), console=console, refresh_per_second=4) as live:
                    while not await _stopped(stop, started, duration, 0.25):
                        live.update(view(await footer()))
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
    return gateway


def _sink_counts(gateway: Gateway, backlog: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    return {d.name: d.stats.delivered for d in gateway.deliveries}, backlog


async def _backlog_after(gateway: Gateway) -> dict[str, int]:
    """After the run: what each sink left in the queue (the queue is closed: read it again)."""
    queue = DurableQueue(gateway.config.queue_path, [d.name for d in gateway.deliveries])
    try:
        return {d.name: queue.pending(d.name) for d in gateway.deliveries}
    finally:
        queue.close()


async def _stopped(stop: asyncio.Event, started: float, duration: float | None, tick: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), tick)
        return True
    except TimeoutError:
        return duration is not None and time.monotonic() - started >= duration
