"""`sitewatch status`: the running gateway's live state, for a person or (--json) for a program.

It asks the gateway's local endpoint (``[status] bind``:``port`` of the configuration, or --url). Exit
statuses: 0 the gateway answered; 3 nothing answers (not running, or running without the endpoint), as
`systemctl status` says 3 for a unit that is not active; 78 a configuration that cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from gateway.ops.config import ConfigError, StatusConfig, load_config
from gateway.ops.startup import EXIT_CONFIG
from gateway.ops.status_text import render

EXIT_NOT_RUNNING = 3
DEFAULT_CONFIG = Path("/etc/sitewatch/gateway.toml")
DEFAULT_URL = f"http://127.0.0.1:{StatusConfig().port}"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "status",
        help="show the running gateway's state: nodes, sinks, backlog, alarms, clock",
        description="Ask the running gateway (its [status] endpoint) for its live state.",
    )
    parser.add_argument("--config", "-c", type=Path, default=None,
                        help=f"gateway configuration, for the endpoint's address (default {DEFAULT_CONFIG}; when "
                        f"you may not read it, the default address {DEFAULT_URL})")
    parser.add_argument("--url", help="the endpoint instead, e.g. http://127.0.0.1:9721")
    parser.add_argument("--json", action="store_true", help="print the state as JSON (docs/operator-guide.md)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer (default 10)")
    parser.set_defaults(func=status)
    return parser


def endpoint(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url).rstrip("/")
    path: Path | None = args.config
    if path is None:
        # The installed file is readable by root and the sitewatch group only (deploy/install.sh): anyone
        # else on the gateway still gets the status from the default address.
        if not os.access(DEFAULT_CONFIG, os.R_OK):
            return DEFAULT_URL
        path = DEFAULT_CONFIG
    config = load_config(path)
    if config.status.port == 0:
        raise ConfigError(f"{path}: status.port is 0: this gateway serves no status endpoint")
    host = "127.0.0.1" if config.status.bind in ("0.0.0.0", "::", "") else config.status.bind
    return f"http://{host}:{config.status.port}"


def fetch(url: str, timeout: float) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/status", timeout=timeout) as answer:
        state: dict[str, Any] = json.loads(answer.read())
    return state


def status(args: argparse.Namespace) -> int:
    try:
        url = endpoint(args)
    except ConfigError as error:
        print(f"sitewatch status: {error}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        state = fetch(url, args.timeout)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        print(f"sitewatch status: the gateway is not running, or serves no status endpoint: nothing answers on "
              f"{url}/status ({reason}). Check `systemctl status sitewatch-gateway` and [status] port.",
              file=sys.stderr)
        return EXIT_NOT_RUNNING
    if args.json:
        print(json.dumps(state, indent=2, ensure_ascii=False))
    else:
        print(render(state))
    return 0
