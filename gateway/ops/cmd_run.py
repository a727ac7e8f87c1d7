"""`sitewatch run`: the gateway service (what the systemd unit starts)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from gateway.ops.config import ConfigError, GatewayConfig, load_config
from gateway.ops.service import Gateway


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
        help="validate a gateway configuration file and exit",
        description="Validate a gateway configuration file; print what is wrong, naming the key.",
    )
    check.add_argument("config", type=Path, help="gateway configuration (TOML)")
    check.set_defaults(func=check_config)
    return parser


def check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    nodes = sum(len(bus.nodes) for bus in config.buses)
    print(f"{args.config}: ok ({len(config.buses)} bus(es), {nodes} node(s), store {config.store_path})")
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    asyncio.run(_serve(config))
    return 0


async def _serve(config: GatewayConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await Gateway(config).run(stop)
