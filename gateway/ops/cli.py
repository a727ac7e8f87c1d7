"""The `sitewatch` command line: one entry point, a subcommand per job.

Each subcommand lives in its own module that exposes
``add_parser(subparsers) -> argparse.ArgumentParser`` and sets ``func`` (a
callable taking the parsed namespace and returning an exit status) with
``parser.set_defaults(func=...)``. Register a new one in COMMAND_MODULES.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gateway import __version__

COMMAND_MODULES = (
    "gateway.ops.cmd_demo",
    "gateway.ops.cmd_simulate",
    "gateway.ops.cmd_run",
    "gateway.ops.cmd_config",
    "gateway.ops.cmd_regmap",
    "gateway.ops.cmd_firmware",
    "gateway.ops.cmd_hj212",
    "gateway.ops.cmd_status",
    "gateway.ops.cmd_read",
    "gateway.ops.cmd_scan",
    "gateway.ops.cmd_report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sitewatch",
        description="Construction-site safety sensors: ESP32 Modbus nodes, a gateway, a site simulator.",
    )
    parser.add_argument("--version", action="version", version=f"sitewatch {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    status: int = func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
