"""`sitewatch run`: the gateway service (what the systemd unit starts)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from gateway.deliver.queue import QueueError
from gateway.ops.cmd_config import check_config
from gateway.ops.config import ConfigError, GatewayConfig, load_config
from gateway.ops.service import Gateway
from gateway.ops.sim_clock import SimClockError

log = logging.getLogger("sitewatch")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "run",
        help="run the gateway: poll the configured buses and store every reading",
        description="Run the gateway service with a TOML configuration file until SIGINT or SIGTERM.",
    )
    parser.add_argument("--config", "-c", type=Path, required=True, help="gateway configuration (TOML)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
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
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        asyncio.run(_serve(config))
    except (QueueError, SimClockError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


async def _serve(config: GatewayConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopping(sig: signal.Signals) -> None:
        if not stop.is_set():
            log.info("%s: stopping (flushing the queue to the sinks)", sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping, sig)
    gateway = Gateway(config)
    log.info("site %s: %d bus(es), queue %s, sinks %s", config.site.name, len(config.buses), config.queue_path,
             ", ".join(d.name for d in gateway.deliveries) or "none")
    await gateway.run(stop)
    log.info("stopped")
