"""hardware/register-map.md: current with firmware/regmap.py, complete, and its mbpoll lines work."""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import threading
import time
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from firmware import regmap
from firmware.node import Node
from gateway import regmap_doc

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / regmap_doc.DOC_PATH


def committed() -> str:
    assert DOC.is_file(), f"{regmap_doc.DOC_PATH} is missing; create it with: {regmap_doc.REGENERATE_COMMAND}"
    return DOC.read_text(encoding="utf-8")


def test_committed_document_matches_the_register_map() -> None:
    assert committed() == regmap_doc.render_markdown(), (
        f"{regmap_doc.DOC_PATH} is stale (firmware/regmap.py changed); "
        f"regenerate it with: {regmap_doc.REGENERATE_COMMAND}"
    )


def test_rendering_is_deterministic() -> None:
    assert regmap_doc.render_markdown() == regmap_doc.render_markdown()


def kind_section(text: str, kind: int) -> str:
    name = regmap_doc.kind_name(kind).capitalize()
    start = text.index(f"## {name} node (`node_kind` = {kind})")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def table_rows(section: str, heading: str) -> dict[str, list[str]]:
    """Rows of the table under a ### heading, keyed by the backticked name cell."""
    start = section.index(heading)
    end = section.find("\n### ", start + 1)
    body = section[start : end if end >= 0 else len(section)]
    rows: dict[str, list[str]] = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for cell in cells:
            match = re.fullmatch(r"`([a-z0-9_]+)`", cell)
            if match:
                rows[match.group(1)] = cells
    return rows


def expected_span(prefix: int, address: int, words: int) -> tuple[str, str]:
    # Computed here from the Modbus convention, independently of the renderer.
    last = address + words - 1
    ref = prefix * 10000 + 1
    if words == 1:
        return str(address), f"{ref + address:05d}"
    return f"{address}-{last}", f"{ref + address:05d}-{ref + last:05d}"


@pytest.mark.parametrize("kind", sorted(regmap.KIND_NAMES))
def test_every_register_of_the_map_is_in_the_document(kind: int) -> None:
    section = kind_section(committed(), kind)
    name = regmap.KIND_NAMES[kind]
    inputs = table_rows(section, f"### Input registers (function 04), {name}")
    for row in regmap.input_registers(kind):
        assert row[0] in inputs, f"input register {row[0]} of {name} missing"
        cells = inputs[row[0]]
        assert (cells[0], cells[1]) == expected_span(3, row[1], regmap.FORMAT_WORDS[row[2]]), cells
        assert cells[3] == regmap.FORMAT_NAMES[row[2]]
        assert cells[4] == str(row[3])
        assert cells[6] == regmap_doc.description(kind, row[0])
    assert set(inputs) == {row[0] for row in regmap.input_registers(kind)}

    holdings = table_rows(section, f"### Holding registers (functions 03, 06, 16), {name}")
    for row in regmap.holding_registers(kind):
        assert row[0] in holdings, f"holding register {row[0]} of {name} missing"
        cells = holdings[row[0]]
        assert (cells[0], cells[1]) == expected_span(4, row[1], regmap.FORMAT_WORDS[row[2]]), cells
        scale = Decimal(row[3])
        # Min, max and default are shown in physical units: cell * scale gives the raw value back.
        assert Decimal(cells[6]) * scale == row[5]
        assert Decimal(cells[7]) * scale == row[6]
        assert Decimal(cells[8]) * scale == row[7]
        assert cells[9] == regmap_doc.description(kind, row[0])
    assert set(holdings) == {row[0] for row in regmap.holding_registers(kind)}

    coil_rows = table_rows(section, f"### Coils (functions 01, 05), {name}")
    assert set(coil_rows) == {row[0] for row in regmap.coils(kind)}
    for row in regmap.coils(kind):
        assert coil_rows[row[0]][:2] == [str(row[1]), f"{row[1] + 1:05d}"]


def test_status_bits_are_all_documented() -> None:
    text = committed()
    for mask, name in regmap.STATUS_BITS:
        assert re.search(rf"\| {mask.bit_length() - 1} \| 0x{mask:04X} \| `{name}` \|", text), name


def test_serial_codes_agree_with_the_register_descriptions() -> None:
    for kind in regmap.KIND_NAMES:
        baud = regmap.find(regmap.holding_registers(kind), "baud_code")
        parity = regmap.find(regmap.holding_registers(kind), "parity")
        assert baud[6] == len(regmap_doc.BAUD_RATES) - 1
        assert parity[6] == len(regmap_doc.PARITY_NAMES) - 1
        for code, rate in enumerate(regmap_doc.BAUD_RATES):
            assert f"{code}: {rate}" in regmap_doc.description(kind, "baud_code")
        for code, parity_name in enumerate(regmap_doc.PARITY_NAMES):
            assert f"{code}: {parity_name}" in regmap_doc.description(kind, "parity")


def test_stale_document_is_detected() -> None:
    text = regmap_doc.render_markdown()
    # A map change shows up in the text: the document is not a constant.
    assert "`" + regmap.DIAGNOSTICS[0][0] + "`" in text
    one_kind = regmap_doc.render_markdown([regmap.KIND_TILT])
    assert one_kind != text and "`pitch`" in one_kind and "`pm25`" not in one_kind


# -- the mbpoll command lines, run against firmware nodes on a pseudo-terminal ----------


class PtyBus:
    """Firmware nodes behind a pty: frames are cut at a short silence, as a node does."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.004)
            if ready:
                try:
                    buf += os.read(self.master, 512)
                except OSError:
                    buf.clear()
                continue
            if buf:
                frame = bytes(buf)
                buf.clear()
                now = int(time.monotonic() * 1000)
                for node in self.nodes:
                    n = node.handle(frame, len(frame), now)
                    if n:
                        os.write(self.master, bytes(node.slave.tx[:n]))

    @contextmanager
    def running(self) -> Iterator[PtyBus]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            os.close(self.master)
            os.close(self.slave)


class FixedSensor:
    """Stores a distinct raw value in every measurement register, negative where signed."""

    def __init__(self, kind: int) -> None:
        self.kind = kind

    def read(self, bank: object, now_ms: int) -> int:
        for i, row in enumerate(regmap.MEASUREMENTS[self.kind]):
            raw = 1000 + 37 * i
            if row[2] in (regmap.S16, regmap.S32):
                raw = -raw
            bank.set_input_raw(row[0], raw & (0xFFFF if regmap.FORMAT_WORDS[row[2]] == 1 else 0xFFFFFFFF))  # type: ignore[attr-defined]
        return int(regmap.STATUS_OK)


def mbpoll_values(output: str) -> dict[int, int]:
    """Reference -> value printed by mbpoll (the first number: unsigned for 16-bit, signed for :int)."""
    return {int(m.group(1)): int(m.group(2)) for m in re.finditer(r"^\[(\d+)\]:\s+(-?\d+)", output, re.MULTILINE)}


def table_of(node: Node, table: str) -> list[int]:
    bank = node.bank
    if table == regmap_doc.INPUT:
        return list(bank.inputs)
    if table == regmap_doc.HOLDING:
        return list(bank.holdings)
    return list(bank.coils)


def expected_values(node: Node, example: regmap_doc.MbpollExample) -> list[int]:
    words = table_of(node, example.table)
    if not example.wide:
        return words[example.address : example.address + example.count]
    values = []
    for i in range(example.count):
        a = example.address + 2 * i
        raw = (words[a] << 16) | words[a + 1]
        values.append(raw - (1 << 32) if raw & 0x80000000 else raw)
    return values


@pytest.mark.parametrize("kind", sorted(regmap.KIND_NAMES))
def test_mbpoll_examples_do_what_they_say(kind: int) -> None:
    mbpoll = shutil.which("mbpoll")
    assert mbpoll is not None, "mbpoll is not installed: `make test` installs it (tools/install-system-deps.sh)"
    unit = regmap_doc.EXAMPLE_UNIT_IDS[kind]
    factory = Node(kind, FixedSensor(kind), boot_ms=0)
    commissioned = Node(kind, FixedSensor(kind), boot_ms=0, unit_id=unit)
    commissioned.sample(0)
    nodes = {factory.unit_id: factory, commissioned.unit_id: commissioned}
    assert len(nodes) == 2
    bus = PtyBus([factory, commissioned])
    with bus.running():
        examples = regmap_doc.mbpoll_examples(kind, device=bus.path)
        assert examples
        for example in examples:
            node = nodes[example.unit]
            proc = subprocess.run(list(example.argv), capture_output=True, text=True, timeout=10)
            assert proc.returncode == 0, f"{example.command}\n{proc.stdout}\n{proc.stderr}"
            if example.write is not None:
                stored = table_of(node, example.table)[example.address]
                assert stored == example.write & 0xFFFF, example.command
                continue
            step = 2 if example.wide else 1
            first = example.address if "-0" in example.argv else example.address + 1
            refs = [first + step * i for i in range(example.count)]
            got = mbpoll_values(proc.stdout)
            assert sorted(got) == refs, f"{example.command}\n{proc.stdout}"
            # The node refreshes its diagnostics just before it answers, so the
            # bank after the request holds exactly what was sent.
            assert [got[r] for r in refs] == expected_values(node, example), f"{example.command}\n{proc.stdout}"


def test_every_register_has_one_gateway_side_description_and_no_stale_ones() -> None:
    # The node's register map carries no text (it costs heap on the board): the gateway's table does.
    from firmware import regmap
    from gateway import regmap_doc
    from gateway.regmap_text import DESCRIPTIONS

    expected: dict[str, set[str]] = {"diagnostics": {str(row[0]) for row in regmap.DIAGNOSTICS}}
    expected["common"] = {str(row[0]) for row in regmap.COMMON_HOLDING}
    for kind, name in regmap.KIND_NAMES.items():
        rows = regmap.MEASUREMENTS[kind] + regmap.KIND_HOLDING[kind] + regmap.COILS[kind]
        expected[name] = {str(row[0]) for row in rows}
    assert {section: set(texts) for section, texts in DESCRIPTIONS.items()} == expected
    assert all(text.strip() for texts in DESCRIPTIONS.values() for text in texts.values())
    # A kind's own text wins over a shared name's (tilt's temperature is the sensor's, dust's the air's).
    assert regmap_doc.description(regmap.KIND_TILT, "temperature") == "sensor temperature"
    assert regmap_doc.description(regmap.KIND_DUST, "temperature") == "air temperature"
    for row in regmap.DIAGNOSTICS + regmap.COMMON_HOLDING:
        assert len(row) in (5, 8) and not any(isinstance(v, str) and " " in v for v in row), row
