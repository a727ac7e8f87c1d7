"""`sitewatch run`: the gateway service (what the systemd unit starts).

Start: the configuration (refused with exit status 78 and one line naming the key),
the store's and queue's folders (78 when they cannot be written), one instance per
queue and store (75 while another gateway holds them, naming its PID), then the
gateway with its supervisor (sd_notify READY, WATCHDOG, STATUS). SIGHUP reloads what
can be reloaded (gateway/ops/reload.py); SIGINT / SIGTERM stop after the shutdown flush.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sqlite3
from pathlib import Path

from gateway.deliver.credentials import CredentialError
from gateway.deliver.queue import QueueError
from gateway.deliver.sinks import SinkConfigError
from gateway.ops import logs, startup
from gateway.ops.cmd_config import check_config
from gateway.ops.config import ConfigError, GatewayConfig, load_config
from gateway.ops.instance_lock import InstanceLockError, InstanceLocks
from gateway.ops.live_state import LatestReadings, seed_from_queue
from gateway.ops.reload import Reloader
from gateway.ops.sdnotify import Notifier
from gateway.ops.service import Gateway
from gateway.ops.sim_clock import SimClockError
from gateway.ops.startup import EXIT_CONFIG, EXIT_IN_USE, EXIT_IO, EXIT_OK, StartupError
from gateway.ops.supervisor import Supervisor

log = logging.getLogger("sitewatch")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "run",
        help="run the gateway: poll the configured buses and store every reading",
        description="Run the gateway service with a TOML configuration file until SIGINT or SIGTERM.",
    )
    parser.add_argument("--config", "-c", type=Path, required=True, help="gateway configuration (TOML)")
    parser.add_argument("--log-level", default=None, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log level (default: [service] log_level of the configuration, INFO)")
    parser.add_argument("--log-modbus", action="store_true",
                        help="also log pymodbus' own lines (frame dumps, retries): off by default, they are noise")
    parser.set_defaults(func=run)
    check = subparsers.add_parser(
        "check-config",
        help="validate a gateway configuration file and exit (the same as `config check`)",
        description="Validate a gateway configuration file; print what is wrong, naming the key. "
        "Kept as an alias of `sitewatch config check`.",
    )
    check.add_argument("config", type=Path, help="gateway configuration (TOML)")
    check.set_defaults(func=check_config)
    return parser


def run(args: argparse.Namespace) -> int:
    """Exit statuses: gateway/ops/startup.py (0 stopped, 78 configuration, 75 in use, 74 I/O, 1 a bug)."""
    # Until the event loop handles SIGHUP (a reload), one sent early must not kill the starting gateway.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    logs.configure(args.log_level or "INFO", log_modbus=args.log_modbus)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        return _refuse(f"{error}: fix the file (`sitewatch config check {args.config}` checks it)", EXIT_CONFIG)
    logs.set_level(args.log_level or config.service.log_level, args.log_modbus)
    for warning in startup.all_warnings(config):
        log.warning("configuration: %s", warning)
    locks = InstanceLocks(startup.lock_files(config))
    try:
        for key, file in startup.data_files(config):
            startup.prepare_location(key, file)
        locks.acquire()
    except StartupError as error:
        return _refuse(str(error), error.status)
    except InstanceLockError as error:
        return _refuse(str(error), EXIT_CONFIG if error.holder is None else EXIT_IN_USE)
    notifier = Notifier()
    try:
        asyncio.run(_serve(config, args, notifier))
    except StartupError as error:
        return _refuse(str(error), error.status)
    finally:
        notifier.close()
        locks.release()
    return EXIT_OK


async def _seed_page(latest: LatestReadings, queue_path: Path, now: float) -> None:
    """The page's last readings and charts from the queue: a restart does not blank them (nor a failure stop us)."""
    try:
        seeded = await asyncio.to_thread(seed_from_queue, latest, queue_path, now)
    except sqlite3.Error as error:
        log.warning("status page: the last readings could not be read from the queue %s: %s; it fills as "
                    "readings arrive", queue_path, error)
        return
    if seeded:
        log.info("status page: %d readings of the last %.0f min from the queue", seeded, latest.recent.span_s / 60)


def _refuse(message: str, status: int) -> int:
    """A start-up failure: one line (in the journal with its priority), and a status that says what kind."""
    log.error("%s (exit status %d)", message, status)
    return status


async def _serve(config: GatewayConfig, args: argparse.Namespace, notifier: Notifier) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopping(sig: signal.Signals) -> None:
        if not stop.is_set():
            log.info("%s: stopping (flushing the queue to the sinks)", sig.name)
            notifier.stopping()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping, sig)
    try:
        latest = LatestReadings()  # for the status page
        gateway = Gateway(config, on_readings=latest.update)
    except QueueError as error:
        raise StartupError(f"{error}: check the disk (df -h, dmesg) and the file's owner", EXIT_IO) from None
    except SimClockError as error:
        raise StartupError(f"{error}: start the simulator with --clock-file first", EXIT_IO) from None
    except (CredentialError, SinkConfigError) as error:
        raise StartupError(f"{error}: fix the sink's settings or its credential file", EXIT_CONFIG) from None
    except (OSError, sqlite3.Error) as error:
        # sqlite3's errors do not name the file: name every candidate.
        raise StartupError(f"cannot open the store {config.store_path}, the queue {config.queue_path} or a sink: "
                           f"{type(error).__name__}: {error}: check the disk (df -h, dmesg), the files' owner, and "
                           f"that they are the gateway's", EXIT_IO) from None
    supervisor = Supervisor(gateway, notifier)

    def service_changed(new: GatewayConfig) -> None:
        if args.log_level is None:
            logs.set_level(new.service.log_level, args.log_modbus)
        log.warning("reload: [service] applied (log level %s)", logging.getLevelName(logging.getLogger().level))

    reloader = Reloader(args.config, gateway, service_changed)

    def reload() -> None:
        log.info("SIGHUP: reloading %s", args.config)
        notifier.reloading()
        try:
            reloader.reload()
        except Exception:  # a reload's bug must not stop the gateway: it runs on as before
            log.exception("reload failed; still running on the previous configuration")
        notifier.ready(status=supervisor.status_line())

    loop.add_signal_handler(signal.SIGHUP, reload)
    log.info("site %s: %d bus(es), %d node(s), queue %s, sinks %s", config.site.name, len(config.buses),
             len(config.nodes()), config.queue_path, ", ".join(d.name for d in gateway.deliveries) or "none")
    if gateway.clock.valid():
        # Before READY and in a worker thread: rebuilding the windows from the queue takes minutes on a big
        # site (docs/revisions.md), and a blocked event loop would starve the watchdog. Nothing else runs yet.
        await supervisor.starting(asyncio.to_thread(gateway._restore, gateway.clock.wall()),
                                  "rebuilding the aggregation windows from the queue")
    status_server = None
    retrying: asyncio.Task[None] | None = None  # listen_when_free, after a port that could not be bound
    if config.status.port:
        # Imported only when served: aiohttp and prometheus_client add about 12 MB to the process.
        from gateway.ops.status_server import StatusServer

        if gateway.clock.valid():  # else "the last half hour" could mean the whole queue
            await supervisor.starting(_seed_page(latest, config.queue_path, gateway.clock.wall()),
                                      "reading the status page's last half hour from the queue")
        status_server = StatusServer(gateway, latest, supervisor)
        if not await status_server.start(config.status.bind, config.status.port):
            retrying = asyncio.create_task(status_server.listen_when_free(config.status.bind, config.status.port,
                                                                          stop))
    watching = asyncio.create_task(supervisor.run(stop))
    try:
        await gateway.run(stop)
    finally:
        stop.set()
        await watching
        if retrying is not None:
            await retrying
        if status_server is not None:
            await status_server.stop()
    log.info("stopped")
