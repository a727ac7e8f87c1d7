"""`sitewatch firmware`: build the node firmware (.mpy per kind) and flash a board with mpremote.

    sitewatch firmware build [--out DIR] [--kind KIND] [--kind-dir DIR]
    sitewatch firmware flash --port PORT --kind KIND --unit-id N [--build-dir DIR] [--kind-dir DIR] [--dry-run]

--kind-dir names a folder of node kinds added as profiles (docs/profiles.md,
"Adding a sitewatch kind"); /etc/sitewatch/profiles/kinds/ is read too.

flash deploys a folder made by build; it writes the board's node.json (the
kind's, plus the unit ID) and runs mpremote. --dry-run prints the exact
commands instead.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

from gateway import firmware_build
from gateway.firmware_build import FirmwareError
from gateway.profiles.kinds import SYSTEM_KIND_DIR, install_kinds

DEFAULT_OUT = Path("dist/firmware")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "firmware",
        help="build the node firmware or flash a board",
        description="Compile the ESP32 node firmware with mpy-cross and deploy it with mpremote.",
    )
    actions = parser.add_subparsers(dest="firmware_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: _usage(parser))

    build = actions.add_parser(
        "build",
        help="compile every firmware module to .mpy, one deployable folder per node kind",
        description="Lay out OUT/<kind>/ with main.py, boot.py, node.json, firmware/*.mpy (the modules the kind "
        "runs) and manifest.py with frozen/ (for a MicroPython image with the modules frozen in).",
    )
    build.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    build.add_argument("--kind", action="append", help="only this kind (repeatable): " + _KIND_HELP)
    build.add_argument("--kind-dir", type=Path, action="append", default=[], help=_KIND_DIR_HELP)
    build.set_defaults(func=run_build, parser=build)

    flash = actions.add_parser(
        "flash",
        help="copy a built folder to a board with mpremote and set its unit ID",
        description=(
            "Deploy BUILD_DIR/KIND to the board on PORT: park the running firmware, copy the modules, "
            "write node.json with the unit ID, copy main.py last, reset."
        ),
    )
    flash.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB0")
    flash.add_argument("--kind", required=True, help="node kind: " + _KIND_HELP)
    flash.add_argument("--kind-dir", type=Path, action="append", default=[], help=_KIND_DIR_HELP)
    flash.add_argument("--unit-id", required=True, type=_unit_id, help="Modbus unit ID, 1..247")
    flash.add_argument(
        "--build-dir", type=Path, default=DEFAULT_OUT, help=f"folder made by `firmware build` (default: {DEFAULT_OUT})"
    )
    flash.add_argument("--mpremote", default="mpremote", help="the mpremote program (default: mpremote)")
    flash.add_argument("--dry-run", action="store_true", help="print the commands, run nothing, write nothing")
    flash.set_defaults(func=run_flash, parser=flash)
    return parser


_KIND_HELP = ", ".join(firmware_build.KINDS) + " or a kind from --kind-dir"
_KIND_DIR_HELP = "a folder of node kinds added as profiles (repeatable; /etc/sitewatch/profiles/kinds/ is read too)"


def _kinds(args: argparse.Namespace, wanted: Sequence[str]) -> tuple[str, ...]:
    """Install the kinds of --kind-dir, then check the asked-for kinds (argparse's error when one is unknown)."""
    parser: argparse.ArgumentParser = args.parser
    dirs = list(args.kind_dir) + ([SYSTEM_KIND_DIR] if SYSTEM_KIND_DIR.is_dir() else [])
    try:
        install_kinds(dirs)
    except ValueError as error:
        parser.error(f"argument --kind-dir: {error}")
    known = firmware_build.known_kinds()
    for kind in wanted:
        if kind not in known:
            parser.error(f"argument --kind: invalid choice: {kind!r} (choose from {', '.join(known)})")
    return tuple(wanted) if wanted else known


def _unit_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= 247:
        raise argparse.ArgumentTypeError(f"a Modbus unit ID is 1..247, not {value}")
    return value


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_build(args: argparse.Namespace) -> int:
    kinds = _kinds(args, args.kind or ())
    try:
        folders = firmware_build.build(args.out, kinds)
    except FirmwareError as e:
        print(f"firmware build failed: {e}")
        return 1
    for folder in folders:
        modules = len(list((folder / "firmware").glob("*.mpy")))
        print(f"built {folder} ({modules} modules, manifest.py for a frozen image)")
    if folders:
        first = folders[0].resolve()
        print(firmware_build.image_instructions(first).replace(str(first), str(args.out.resolve() / "<kind>")))
    return 0


def run_flash(args: argparse.Namespace) -> int:
    _kinds(args, [args.kind])
    build_dir: Path = args.build_dir
    kind_dir = build_dir / args.kind
    node_json = firmware_build.staged_node_config(build_dir, args.kind, args.unit_id)
    commands = firmware_build.flash_commands([args.mpremote], args.port, kind_dir, node_json)
    if args.dry_run:
        config = json.dumps(firmware_build.node_config(args.kind, args.unit_id), sort_keys=True)
        print(f"# would write {node_json}: {config}")
        for command in commands:
            print(firmware_build.format_command(command))
        return 0
    if not (kind_dir / "main.py").is_file():
        print(f"{kind_dir} is not a firmware build: run `sitewatch firmware build --out {build_dir}` first")
        return 1
    firmware_build.write_node_config(node_json, firmware_build.node_config(args.kind, args.unit_id))
    for command in commands:
        print(firmware_build.format_command(command), flush=True)
        try:
            status = subprocess.run(command, check=False).returncode
        except FileNotFoundError:
            print(f"{args.mpremote} not found: install it with `pip install mpremote`")
            return 1
        if status != 0:
            print(f"flash failed (exit status {status})")
            return 1
    print(f"flashed {args.kind} unit {args.unit_id} on {args.port}")
    return 0
