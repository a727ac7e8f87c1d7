"""Every kind of node fits the board's MicroPython heap, measured under real MicroPython.

The board is an ESP32-WROOM-32E without PSRAM (hardware/). MicroPython's
ESP32 port starts its heap with one 64 KiB area and grows it once to
111936 bytes (109 KiB), leaving ~40 KB to ESP-IDF (micropython/micropython
PR #13219, MICROPY_GC_INITIAL_HEAP_SIZE; PR #12141 for the growing heap).
The budget: a booted node holds at most HEAP_BUDGET = 72 KiB, so at least a
third of the heap (37 KiB) stays free for what a node allocates while it
runs (a configuration save, an exception's traceback, a sensor's long-int
maths) and for fragmentation. docs/firmware.md gives the figures; a frozen
image (manifest.py) holds less, its bytecode and constants stay in flash.

The measurement (tests/support/heap.py): main.assemble with the build's
node.json, 200 loop turns, gc.collect(), with the .mpy files the build
ships for the kind, as `sitewatch firmware build` deploys them.
"""

from __future__ import annotations

import pytest

from gateway import firmware_build
from tests.support.heap import boot_heap

HEAP_BUDGET = 72 * 1024


@pytest.mark.parametrize("kind", firmware_build.KINDS)
def test_booted_node_fits_the_heap_budget(kind: str) -> None:
    held = boot_heap(kind, compiled=True)
    print(f"{kind}: {held} bytes held ({held / 1024:.1f} KiB) of {HEAP_BUDGET}")
    assert held <= HEAP_BUDGET, f"a booted {kind} node holds {held} bytes, over the {HEAP_BUDGET} byte budget"
    # A measurement that counts nothing cannot pass: a node holds its register bank, ring and code.
    assert held > 16 * 1024
