"""`sitewatch config`: check a gateway configuration, or print one with every default."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.ops import startup
from gateway.ops.config import ConfigError, default_config_text, load_config


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "config",
        help="check a gateway configuration, or print one with every default",
        description="Work with the gateway's TOML configuration (every key: docs/configuration.md).",
    )
    actions = parser.add_subparsers(dest="config_command", metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate a configuration file and exit (status 1 and the bad key if it is wrong)",
        description="Validate a gateway configuration file: every section, the stages and sinks it names, the "
        "limits. Prints what is wrong, naming the key, and exits with status 1.",
    )
    check.add_argument("config", type=Path, help="gateway configuration (TOML)")
    check.set_defaults(func=check_config)
    defaults = actions.add_parser(
        "defaults",
        help="print a complete configuration with every default",
        description="Print a complete gateway configuration with every key at its default (and an example bus, "
        "which has none). Redirect it to a file and edit.",
    )
    defaults.set_defaults(func=print_defaults)
    parser.set_defaults(func=lambda args: _usage(parser))
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    # Beyond the file itself: can the service write where it says, and does it mean what it seems to?
    problems, warnings = startup.location_findings(config)
    for warning in [*warnings, *startup.all_warnings(config)]:
        print(f"warning: {args.config}: {warning}", file=sys.stderr)
    if problems:
        for problem in problems:
            print(f"error: {args.config}: {problem}", file=sys.stderr)
        return 1
    nodes = sum(len(bus.nodes) for bus in config.buses)
    sinks = ", ".join(spec.name for spec in config.all_sinks()) or "none"
    print(
        f"{args.config}: ok ({len(config.buses)} bus(es), {nodes} node(s), store {config.store_path}, "
        f"queue {config.queue_path}, sinks: {sinks})"
    )
    return 0


def print_defaults(args: argparse.Namespace) -> int:
    sys.stdout.write(default_config_text())
    return 0
