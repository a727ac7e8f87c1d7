"""mbpoll, an independent Modbus master, against a simulated node of every kind.

Each node is read and written through every register table it has: input
registers (16-bit, and 32-bit with -B), holding registers (single and
multiple writes, a 32-bit one with -B, a signed one), coils where the kind
has any, and the history window after a write of history_seq. Every value
mbpoll shows is checked against the node's own bank and history ring.

Sampling is slowed to once a minute first, so the registers stand still
while they are compared.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware import regmap
from firmware.node import TICKS_MASK, Node
from simulator.site import BusSpec, NodeSpec, Site

BAUD = 38400
UNITS = {regmap.KIND_DUST: 1, regmap.KIND_NOISE: 2, regmap.KIND_TILT: 3, regmap.KIND_WIND: 4}
FROZEN_INTERVAL = 60000
_VALUE = re.compile(r"^\[(\d+)\]:\s+(-?\d+)", re.MULTILINE)
TYPES = {"coil": "0", "input": "3", "holding": "4"}
# Diagnostics that change with every request or with time.
MOVING = ("uptime", "sample_age", "frames_ok", "crc_errors")


def mbpoll(
    port: str, unit: int, table: str, address: int, *values: int, count: int = 1, wide: bool = False
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("mbpoll")
    if exe is None:
        raise RuntimeError("mbpoll is not installed: run `make test`, which installs it (Debian package mbpoll)")
    kind = TYPES[table] + (":int" if wide else "")
    cmd = [
        exe,
        "-m",
        "rtu",
        "-a",
        str(unit),
        "-b",
        str(BAUD),
        "-P",
        "none",
        "-d",
        "8",
        "-s",
        "1",
        "-t",
        kind,
        "-0",
        "-r",
        str(address),
        "-1",
        "-o",
        "5",  # generous: the node's thread may be kept off the CPU (tests/support/mbpoll.py)
    ]
    if wide:
        cmd.append("-B")  # high word first, as regmap.py encodes 32-bit values
    if not values:
        cmd += ["-c", str(count)]
    cmd.append(port)
    if values:
        cmd += ["--", *(str(v) for v in values)]  # "--": negative values are values, not options
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def read(port: str, unit: int, table: str, address: int, count: int = 1, wide: bool = False) -> list[int]:
    proc = mbpoll(port, unit, table, address, count=count, wide=wide)
    assert proc.returncode == 0, proc.stdout[-500:] + proc.stderr
    found = [(int(a), int(v)) for a, v in _VALUE.findall(proc.stdout)]
    step = 2 if wide else 1
    assert [a for a, _ in found] == [address + step * i for i in range(count)], proc.stdout
    return [v for _, v in found]


def write(port: str, unit: int, table: str, address: int, *values: int, wide: bool = False) -> None:
    proc = mbpoll(port, unit, table, address, *values, wide=wide)
    assert proc.returncode == 0, proc.stdout[-500:] + proc.stderr
    assert f"Written {len(values)} references" in proc.stdout


def signed32(raw: int) -> int:
    return raw - (1 << 32) if raw & 0x80000000 else raw


def address_of(rows: tuple[tuple[object, ...], ...], name: str) -> int:
    return int(str(regmap.find(rows, name)[1]))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    nodes = tuple(NodeSpec(regmap.KIND_NAMES[k], u) for k, u in UNITS.items())
    with Site((BusSpec("bus0", nodes, baud=BAUD),), tmp_path_factory.mktemp("site"), seed=11) as s:
        port = str(s.link_dir / "bus0")
        interval = address_of(regmap.COMMON_HOLDING, "sample_interval")
        for unit in UNITS.values():
            write(port, unit, "holding", interval, FROZEN_INTERVAL)  # a single write: function 06
        # Each node takes one more sample on its old schedule, then stands still for a minute.
        deadline = time.monotonic() + 5
        for unit in UNITS.values():
            node = s.node("bus0", unit).node
            while node.next_sample_ms - node.sample_ms != FROZEN_INTERVAL:
                assert time.monotonic() < deadline, "the nodes did not take up the new interval"
                time.sleep(0.02)
        yield s


def port_of(site: Site) -> str:
    return str(site.link_dir / "bus0")


def node_of(site: Site, kind: int) -> Node:
    return site.node("bus0", UNITS[kind]).node


KINDS = sorted(UNITS)
IDS = [regmap.KIND_NAMES[k] for k in KINDS]


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_input_registers(site: Site, kind: int) -> None:
    node = node_of(site, kind)
    bank = node.bank
    count = regmap.input_count(kind)
    words = read(port_of(site), UNITS[kind], "input", 0, count)
    moving: set[int] = set()
    for name in MOVING:
        row = regmap.find(regmap.DIAGNOSTICS, name)
        moving.update(range(int(row[1]), int(row[1]) + regmap.FORMAT_WORDS[int(row[2])]))
    for a in range(count):
        if a not in moving:
            assert words[a] == bank.inputs[a], f"input register {a}"
    assert words[address_of(regmap.DIAGNOSTICS, "node_kind")] == kind
    assert words[address_of(regmap.DIAGNOSTICS, "fw_version")] == regmap.FIRMWARE_VERSION
    # The sample in the registers is the ring's newest, status and words alike.
    assert words[address_of(regmap.DIAGNOSTICS, "sensor_status")] == node.history.status(node.seq)
    newest = node.history.get(node.seq)
    assert newest is not None
    assert words[regmap.MEASUREMENT_BASE : count] == list(newest)


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_32_bit_input_registers(site: Site, kind: int) -> None:
    node = node_of(site, kind)
    port = port_of(site)
    uptime, seq = read(port, UNITS[kind], "input", address_of(regmap.DIAGNOSTICS, "uptime"), 2, wide=True)
    assert seq == node.seq
    assert abs(uptime - node.uptime_s) <= 1
    (oldest,) = read(port, UNITS[kind], "input", address_of(regmap.DIAGNOSTICS, "history_oldest"), 1, wide=True)
    assert oldest == node.history.oldest() == 1
    wide_rows = [r for r in regmap.MEASUREMENTS[kind] if regmap.FORMAT_WORDS[int(r[2])] == 2]
    for row in wide_rows:
        address, fmt = int(row[1]), int(row[2])
        (value,) = read(port, UNITS[kind], "input", address, 1, wide=True)
        raw = regmap.words_to_raw(node.bank.inputs, address, fmt)
        assert value == regmap.decode_raw(raw, fmt), row[0]
    assert bool(wide_rows) == (kind == regmap.KIND_TILT)


# Holding registers each kind's test writes: (name, value); 32-bit ones go with -B,
# 16-bit ones as a single write (function 06), pairs as one multiple write (16).
SINGLE = {
    regmap.KIND_DUST: [("kappa", 450), ("rh_flag_threshold", 800)],
    regmap.KIND_NOISE: [("calibration_offset", -12)],
    regmap.KIND_TILT: [("baseline_pitch", -1234), ("baseline_roll", 2500)],
    regmap.KIND_WIND: [("vane_offset", 123)],
}
MULTIPLE = {
    regmap.KIND_DUST: [("rh_correction", 1), ("kappa", 600)],
    regmap.KIND_NOISE: [],
    regmap.KIND_TILT: [],
    regmap.KIND_WIND: [("anemometer_factor", 1200), ("anemometer_offset", 250)],
}


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_holding_registers(site: Site, kind: int) -> None:
    node = node_of(site, kind)
    bank = node.bank
    port = port_of(site)
    unit = UNITS[kind]
    rows = regmap.holding_registers(kind)
    assert read(port, unit, "holding", 0, regmap.holding_count(kind)) == list(bank.holdings)
    for name, value in SINGLE[kind]:
        row = regmap.find(rows, name)
        address, fmt = int(row[1]), int(row[2])
        if regmap.FORMAT_WORDS[fmt] == 2:
            write(port, unit, "holding", address, value, wide=True)
            assert read(port, unit, "holding", address, 1, wide=True) == [value]
        else:
            write(port, unit, "holding", address, value & 0xFFFF)  # mbpoll's 16-bit type is unsigned
            assert read(port, unit, "holding", address, 1) == [value & 0xFFFF]
        assert bank.get_holding_raw(name) == value, name
    pair = MULTIPLE[kind]
    if pair:
        first = int(regmap.find(rows, pair[0][0])[1])
        assert int(regmap.find(rows, pair[1][0])[1]) == first + 1
        write(port, unit, "holding", first, *(v for _, v in pair))
        for name, value in pair:
            assert bank.get_holding_raw(name) == value, name
    # Out of range is refused with exception 3 and changes nothing.
    row = regmap.find(rows, SINGLE[kind][0][0])
    if regmap.FORMAT_WORDS[int(row[2])] == 1:
        before = bank.get_holding_raw(str(row[0]))
        proc = mbpoll(port, unit, "holding", int(row[1]), (int(row[6]) + 1) & 0xFFFF)
        assert proc.returncode != 0 and "Illegal data value" in proc.stdout + proc.stderr
        assert bank.get_holding_raw(str(row[0])) == before


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_history_window(site: Site, kind: int) -> None:
    node = node_of(site, kind)
    port = port_of(site)
    unit = UNITS[kind]
    seq_address = address_of(regmap.COMMON_HOLDING, "history_seq")
    newest = node.seq
    start = max(1, newest - 1)
    write(port, unit, "holding", seq_address, start, wide=True)
    assert read(port, unit, "holding", seq_address, 1, wide=True) == [start]
    assert node.bank.get_holding_raw("history_seq") == start
    size = regmap.history_window_words(kind)
    words = read(port, unit, "input", regmap.HISTORY_BASE, size)
    read_at = node.now_ms  # the time of that request, which the ages refer to
    rw = regmap.history_record_words(kind)
    for r in range(regmap.history_records(kind)):
        record = words[r * rw : (r + 1) * rw]
        seq = start + r
        if seq > newest:
            assert record == [0] * rw, f"record {r} should be empty"
            continue
        stamp = node.history.stamp(seq)
        assert stamp is not None
        assert (record[0] << 16) | record[1] == seq
        assert (record[2] << 16) | record[3] == (read_at - stamp) & TICKS_MASK
        assert record[4] == node.history.status(seq)
        stored = node.history.get(seq)
        assert stored is not None
        assert record[regmap.HISTORY_HEADER_WORDS :] == list(stored)
    # The addresses between the measurements and the window are no registers.
    proc = mbpoll(port, unit, "input", regmap.HISTORY_BASE - 1, count=2)
    assert proc.returncode != 0 and "Illegal data address" in proc.stdout + proc.stderr


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_coils(site: Site, kind: int) -> None:
    bank = node_of(site, kind).bank
    port = port_of(site)
    unit = UNITS[kind]
    coils = regmap.coils(kind)
    if not coils:
        proc = mbpoll(port, unit, "coil", 0)
        assert proc.returncode != 0 and "Illegal data address" in proc.stdout + proc.stderr
        return
    for row in coils:
        address = int(row[1])
        for value in (1, 0):
            write(port, unit, "coil", address, value)
            assert bank.coils[address] == value
            assert read(port, unit, "coil", address) == [value]
    assert read(port, unit, "coil", 0, regmap.coil_count(kind)) == list(bank.coils)


def test_every_kind_is_on_the_bus(site: Site) -> None:
    for kind, unit in UNITS.items():
        assert site.node("bus0", unit).node.kind == kind
    assert Path(port_of(site)).is_symlink()
