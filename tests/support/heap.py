"""The MicroPython heap a node holds once booted, measured under real MicroPython (WebAssembly build).

A node is booted as flashed: `main.assemble` with the build's node.json for
its kind, 200 turns of the main loop, then `gc.collect()`; what the heap
still holds is the node's footprint. The board's peripherals (machine.UART,
Pin, WDT, the sensor buses) do not exist under WebAssembly, so the test
doubles of firmware/fakes.py stand in for them; they are imported before
the baseline is taken and are not counted. firmware.hal and firmware.clock,
which the doubles import too, are measured on their own in a fresh
interpreter and added.

Modules are loaded either from source (the interpreter compiles them, as a
board would with .py files) or as the .mpy files mpy-cross makes (what
`sitewatch firmware build` ships), when the runtime accepts their version.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

from gateway import firmware_build
from tests.support.micropython import ROOT, run_micropython

FIRMWARE = ROOT / "firmware"
# The doubles and what they import; hal and clock are measured separately (HAL_COST).
TEST_ONLY = ("fakes.py",)

# Each reading is taken in a call of its own (see run_micropython's `then`):
# within one call the WebAssembly port's gc.collect() keeps garbage alive.
_SETUP = """
import gc, json, os, sys
sys.path.insert(0, '/')
from firmware import fakes
os.mkdir('/cfg')
clock = fakes.FakeClock(5000000)
io = fakes.FakeIO(clock)
"""
_BASELINE = "gc.collect()\nbase = gc.mem_alloc()\n"
_BOOT = """
from firmware import main
board = main.assemble(json.loads(CONFIG), '/cfg', clock, io)
for i in range(200):
    board.step()
    clock.advance_ms(10)
"""
_READING = "gc.collect()\nprint(json.dumps({'held': gc.mem_alloc() - base, 'seq': board.node.seq}))\n"

_HAL_SETUP = "import gc, json, sys\nsys.path.insert(0, '/')\nimport firmware\n"
_HAL_IMPORT = "from firmware import hal\n"
_HAL_READING = "gc.collect()\nprint(json.dumps({'held': gc.mem_alloc() - base}))\n"


def _mpy_files(names: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    command = firmware_build.mpy_cross_command()
    with tempfile.TemporaryDirectory(prefix="sitewatch-heap-") as scratch:
        for name in names:
            target = Path(scratch) / (Path(name).stem + ".mpy")
            firmware_build.compile_module(FIRMWARE / name, target, command)
            out[f"/firmware/{target.name}"] = base64.b64encode(target.read_bytes()).decode()
    return out


def _run(steps: list[str], compiled: bool, kind: str = "") -> dict[str, int]:
    names = sorted(p.name for p in FIRMWARE.glob("*.py") if p.name != "boot.py")
    files = {"/firmware/__init__.py": ""}
    binary: dict[str, str] = {}
    if compiled:
        # What the build ships for the kind (main.py too), and nothing else: a module the build
        # left out fails the boot here. The doubles stay source: they are not part of the measurement.
        shipped = [*firmware_build.kind_modules(kind or "dust"), "main"]
        binary = _mpy_files([f"{n}.py" for n in shipped if n != "__init__"])
        names = list(TEST_ONLY)
    for name in names:
        files[f"/firmware/{name}"] = (FIRMWARE / name).read_text()
    proc = run_micropython(steps[0], files, binary_files=binary, then=steps[1:])
    if proc.returncode != 0:
        raise AssertionError(f"MicroPython failed:\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, int] = json.loads(proc.stdout.splitlines()[-1])
    return result


def boot_heap(kind: str, compiled: bool) -> int:
    """Bytes of MicroPython heap a booted node of this kind holds (firmware/hal.py included)."""
    config = json.dumps(firmware_build.node_config(kind, unit_id=1))
    booted = _run([_SETUP + f"CONFIG = {config!r}\n", _BASELINE, _BOOT, _READING], compiled, kind)
    if booted["seq"] < 2:
        raise AssertionError(f"the {kind} node did not sample: {booted}")
    return booted["held"] + _run([_HAL_SETUP, _BASELINE, _HAL_IMPORT, _HAL_READING], compiled, kind)["held"]
