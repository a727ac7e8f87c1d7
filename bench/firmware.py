"""What one Modbus request costs the node firmware: time and memory per request in Node.handle.

Two requests per node kind, on a node whose history ring is full (600
samples):
  - read-input: input registers 0 .. input_count(kind), the gateway's poll;
  - history-window: the whole history window (regmap.HISTORY_BASE), after
    history_seq was set to a sample in the ring, the gateway's backfill.

Under MicroPython (the WebAssembly build run by Node.js, the same
interpreter the firmware tests use): time.ticks_us() around a loop of
requests, and gc.mem_alloc() with the collector off, so every byte any
request allocates shows. Under CPython: time.perf_counter() and tracemalloc
(net bytes kept per request, and the peak a single request reaches above
its start: CPython boxes every int above 256, so the peak is not 0 there).

Times are this machine's, not an ESP32's: they compare requests and
interpreters, and show that the request path allocates nothing. Runs in
about 10 s:

    python bench/firmware.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from firmware import regmap
from firmware.aweight import AWeighting
from firmware.node import Node
from tests.support.micropython import firmware_files, run_micropython

UNIT = 7
SAMPLES = 700  # more than the ring holds: the ring has wrapped
REQUESTS = 1000  # per measurement
ROUNDS = 3  # measurements per row; the median is shown
KINDS = (regmap.KIND_DUST, regmap.KIND_NOISE, regmap.KIND_TILT, regmap.KIND_WIND)
FILTER_RATE = 16000  # Hz: the A-weighting filter of the I2S microphone path
FILTER_SAMPLES = 4000

# Builds the node and the two request frames; shared by both interpreters
# (plain MicroPython-compatible code).
SETUP = """
from firmware import regmap
from firmware.aweight import AWeighting
from firmware.modbus_rtu import crc16
from firmware.node import Node


class BenchSensor:
    def read(self, bank, now_ms):
        inputs = bank.inputs
        for k in range(regmap.MEASUREMENT_BASE, regmap.input_count(bank.kind)):
            inputs[k] = (now_ms // 1000 + k) & 0xFFFF
        return regmap.STATUS_OK


def frame(*body):
    buf = bytearray(body)
    crc = crc16(buf, len(buf))
    buf.append(crc & 0xFF)
    buf.append(crc >> 8)
    return bytes(buf)


def filter_input(n):
    from array import array
    import math

    buf = array("f", [0.0] * n)
    for i in range(n):
        buf[i] = 0.1 * math.sin(2.0 * math.pi * 1000.0 * i / FILTER_RATE)
    return buf


def bench_node(kind, samples):
    node = Node(kind, BenchSensor(), 0, unit_id=UNIT)
    for i in range(1, samples + 1):
        node.sample(1000 * i)
    seq_address = regmap.find(regmap.COMMON_HOLDING, "history_seq")[1]
    start = node.history.oldest() + 100
    value = bytes([start >> 24, (start >> 16) & 0xFF, (start >> 8) & 0xFF, start & 0xFF])
    write = frame(UNIT, 16, 0, seq_address, 0, 2, 4, *value)
    node.handle(write, len(write), 1000 * samples + 1)
    count = regmap.input_count(kind)
    window = regmap.history_window_words(kind)
    requests = {
        "read-input": frame(UNIT, 4, 0, 0, 0, count),
        "history-window": frame(UNIT, 4, regmap.HISTORY_BASE >> 8, regmap.HISTORY_BASE & 0xFF, 0, window),
    }
    return node, requests
"""

MICROPYTHON_RUN = """
import gc, json, time

def measure(node, request, n, now):
    length = len(request)
    handle = node.handle
    handle(request, length, now)  # first use of the path
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    t0 = time.ticks_us()
    for i in range(n):
        handle(request, length, now + i)
    us = time.ticks_diff(time.ticks_us(), t0)
    grown = gc.mem_alloc() - before
    gc.enable()
    return us / n, grown / n

for kind in KINDS:
    node, requests = bench_node(kind, SAMPLES)
    for name in ("read-input", "history-window"):
        for r in range(ROUNDS):
            us, grown = measure(node, requests[name], REQUESTS, 1000 * SAMPLES + 10)
            print(json.dumps({"kind": kind, "request": name, "us": us, "bytes": grown}))

buf = filter_input(FILTER_SAMPLES)
weighting = AWeighting(FILTER_RATE)
weighting.process(buf, 0, 100)
for r in range(ROUNDS):
    # Timed with the collector on, as on a board (its runs are part of the cost) ...
    gc.collect()
    t0 = time.ticks_us()
    weighting.process(buf, 0, FILTER_SAMPLES)
    us = time.ticks_diff(time.ticks_us(), t0)
    # ... and the allocation counted on a short run with it off (a long one would fill a board's heap).
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    weighting.process(buf, 0, 100)
    grown = gc.mem_alloc() - before
    gc.enable()
    print(json.dumps({"filter": FILTER_RATE, "us": us / FILTER_SAMPLES, "bytes": grown / 100}))
"""


class Row:
    def __init__(self, interpreter: str, kind: int, request: str) -> None:
        self.interpreter = interpreter
        self.kind = kind
        self.request = request
        self.us: list[float] = []
        self.bytes: list[float] = []
        self.peak: list[float] = []


class FilterRow:
    def __init__(self, interpreter: str) -> None:
        self.interpreter = interpreter
        self.us: list[float] = []
        self.bytes: list[float] = []


MICROPYTHON = "MicroPython (WebAssembly)"
CPYTHON = "CPython " + sys.version.split()[0]
CONSTANTS = {
    "UNIT": UNIT,
    "SAMPLES": SAMPLES,
    "REQUESTS": REQUESTS,
    "ROUNDS": ROUNDS,
    "KINDS": KINDS,
    "FILTER_RATE": FILTER_RATE,
    "FILTER_SAMPLES": FILTER_SAMPLES,
}


def micropython_script() -> str:
    """The MicroPython side as one script (it also runs on a board that has the firmware modules)."""
    header = "import sys\nsys.path.insert(0, '/')\n" + "".join(f"{k} = {v!r}\n" for k, v in CONSTANTS.items())
    return header + SETUP + MICROPYTHON_RUN


def cpython_rows() -> tuple[list[Row], FilterRow]:
    namespace: dict[str, object] = dict(CONSTANTS)
    exec(SETUP, namespace)
    bench_node: Callable[[int, int], tuple[Node, dict[str, bytes]]] = namespace["bench_node"]  # type: ignore[assignment]
    filter_input: Callable[[int], object] = namespace["filter_input"]  # type: ignore[assignment]
    rows = []
    now = 1000 * SAMPLES + 10
    for kind in KINDS:
        node, requests = bench_node(kind, SAMPLES)
        for name in ("read-input", "history-window"):
            row = Row(CPYTHON, kind, name)
            request = requests[name]
            length = len(request)
            handle = node.handle
            handle(request, length, now)
            for _ in range(ROUNDS):
                t0 = time.perf_counter()
                for i in range(REQUESTS):
                    handle(request, length, now + i)
                row.us.append((time.perf_counter() - t0) * 1e6 / REQUESTS)
                tracemalloc.start()
                start, _ = tracemalloc.get_traced_memory()
                peak_above = 0
                for i in range(REQUESTS):
                    tracemalloc.reset_peak()
                    base, _ = tracemalloc.get_traced_memory()
                    handle(request, length, now + i)
                    _, peak = tracemalloc.get_traced_memory()
                    peak_above = max(peak_above, peak - base)
                end, _ = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                row.bytes.append((end - start) / REQUESTS)
                row.peak.append(peak_above)
            rows.append(row)
    weighting = AWeighting(FILTER_RATE)
    buf = filter_input(FILTER_SAMPLES)
    filtered = FilterRow(CPYTHON)
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        weighting.process(buf, 0, FILTER_SAMPLES)
        filtered.us.append((time.perf_counter() - t0) * 1e6 / FILTER_SAMPLES)
    return rows, filtered


def micropython_rows() -> tuple[list[Row], FilterRow]:
    proc = run_micropython(micropython_script(), firmware_files(), timeout=600)
    if proc.returncode != 0:
        raise SystemExit("MicroPython run failed:\n" + proc.stdout + proc.stderr)
    rows: dict[tuple[int, str], Row] = {}
    filtered = FilterRow(MICROPYTHON)
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        if "filter" in record:
            filtered.us.append(record["us"])
            filtered.bytes.append(record["bytes"])
            continue
        key = (record["kind"], record["request"])
        if key not in rows:
            rows[key] = Row(MICROPYTHON, record["kind"], record["request"])
        rows[key].us.append(record["us"])
        rows[key].bytes.append(record["bytes"])
    return list(rows.values()), filtered


def table(header: tuple[str, ...], lines: list[tuple[str, ...]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] * len(header)) + "|")
    for cells in lines:
        print("| " + " | ".join(cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--board-script",
        action="store_true",
        help="print the MicroPython side as a script and exit (for `mpremote run` on a board with the firmware)",
    )
    if parser.parse_args().board_script:
        print(micropython_script())
        return 0
    mp_rows, mp_filter = micropython_rows()
    cp_rows, cp_filter = cpython_rows()
    print(f"Node.handle: {REQUESTS} requests per measurement, median of {ROUNDS}; a node whose ring holds 600 samples")
    print()
    lines: list[tuple[str, ...]] = []
    failed = False
    for row in mp_rows + cp_rows:
        words = regmap.input_count(row.kind) if row.request == "read-input" else regmap.history_window_words(row.kind)
        allocated = statistics.median(row.bytes)
        lines.append(
            (
                row.interpreter,
                regmap.KIND_NAMES[row.kind],
                row.request,
                str(5 + 2 * words),
                f"{statistics.median(row.us):.1f}",
                f"{allocated:.2f}",
                f"{statistics.median(row.peak):.0f}" if row.peak else "-",
            )
        )
        failed = failed or (row.interpreter == MICROPYTHON and allocated != 0)
    table(
        ("interpreter", "kind", "request", "reply bytes", "us/request", "bytes allocated/request", "peak bytes"), lines
    )
    print()
    print("MicroPython: bytes allocated = gc.mem_alloc() growth with the collector off, divided by the requests.")
    print("CPython: bytes allocated = tracemalloc net growth over the run, divided by the requests (the node's")
    print("counters hold int objects in CPython, a constant few dozen bytes, not growth per request); peak = the")
    print("most one request held above its start, including tracemalloc's own 48 bytes.")
    print()
    print(
        f"A-weighting filter (firmware/aweight.py, AWeighting.process) at {FILTER_RATE} Hz, {FILTER_SAMPLES} samples:"
    )
    print()
    lines = []
    for f in (mp_filter, cp_filter):
        us = statistics.median(f.us)
        lines.append(
            (
                f.interpreter,
                f"{us:.2f}",
                f"{1e6 / us:.0f}",
                f"{FILTER_RATE * us / 1e4:.1f} %",
                f"{statistics.median(f.bytes):.0f}" if f.bytes else "-",
            )
        )
    table(
        ("interpreter", "us/sample", "samples/s of CPU", f"CPU for {FILTER_RATE} Hz real time", "bytes/sample"), lines
    )
    if failed:
        print("FAIL: a MicroPython request path allocated memory")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
