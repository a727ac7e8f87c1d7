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


def expected_queue(args: argparse.Namespace) -> Path | None:
    """The queue of the gateway the configuration describes (None: asked by --url, or no readable file)."""
    if args.url:
        return None
    path: Path | None = args.config
    if path is None:
        if not os.access(DEFAULT_CONFIG, os.R_OK):
            return None
        path = DEFAULT_CONFIG
    queue = load_config(path).queue_path
    # A relative path is relative to the service's working folder, which this process cannot know.
    return Path(os.path.realpath(queue)) if queue.is_absolute() else None


def another_gateway(state: dict[str, Any], queue: Path | None) -> str:
    """Why the answering gateway is not the configuration's ("" when it is, or cannot be told): two gateways
    configured with one [status] port, the second running without its endpoint."""
    answered = state.get("queue", {}).get("path") if isinstance(state.get("queue"), dict) else None
    if queue is None or not isinstance(answered, str) or Path(os.path.realpath(answered)) == queue:
        return ""
    return (f"process {state.get('pid')} (site {state.get('site')}, queue {answered}) answers there, not the "
            f"gateway of this configuration (queue {queue})")


def fetch(url: str, timeout: float) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/status", timeout=timeout) as answer:
        state: dict[str, Any] = json.loads(answer.read())
    return state


def status(args: argparse.Namespace) -> int:
    try:
        url = endpoint(args)
        queue = expected_queue(args)
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
    other = another_gateway(state, queue)
    if other:
        config = args.config or DEFAULT_CONFIG
        print(f"sitewatch status: {url}: {other}: it is not the gateway of {config}, which is not running or runs "
              "without its status endpoint (another gateway has its [status] port: give each its own)",
              file=sys.stderr)
        return EXIT_NOT_RUNNING
    if args.json:
        print(json.dumps(state, indent=2, ensure_ascii=False))
    else:
        print(render(state))
    return 0
