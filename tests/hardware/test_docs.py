"""The hand-written hardware pages: register names that exist, no retyped numbers, safe pins.

The register map (firmware/regmap.py) is the single source of truth, so the
prose may name registers but must not repeat their numbers; the wiring tables
must follow the ESP32 pin rules stated in hardware/common.md.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from firmware import regmap
from gateway import regmap_doc

ROOT = Path(__file__).resolve().parents[2]
HARDWARE = ROOT / "hardware"
GENERATED = Path(regmap_doc.DOC_PATH).name
HAND_WRITTEN = sorted(p.name for p in HARDWARE.glob("*.md") if p.name != GENERATED)
KIND_DOCS = {regmap_doc.kind_name(k): k for k in regmap_doc.kinds()}

# Lower-case words in backticks that are not register names.
NOT_REGISTERS = frozenset({"mbpoll", "sitewatch"})
IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")
STATUS_NAMES = frozenset(name for _mask, name in regmap.STATUS_BITS)

# ESP32 (WROOM module) pin rules, as hardware/common.md states them.
FLASH_PINS = frozenset(range(6, 12))
UART0_PINS = frozenset({1, 3})
STRAPPING_PINS = frozenset({0, 2, 5, 12, 15})
INPUT_ONLY_PINS = frozenset({34, 35, 36, 39})
ADC1_PINS = frozenset({32, 33, 34, 35, 36, 39})
MODULE_PINS = frozenset({*range(0, 6), *FLASH_PINS, *range(12, 20), 21, 22, 23, 25, 26, 27, *range(32, 37), 39})
DIRECTIONS = frozenset({"in", "out", "in/out", "analog in", "power", "-"})


def read(name: str) -> str:
    return (HARDWARE / name).read_text(encoding="utf-8")


def without_code_blocks(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def unknown_register_names(text: str, kind: int | None) -> tuple[set[str], set[str]]:
    """(names checked, names not in the map) among the backticked identifiers of the prose."""
    known = regmap_doc.all_register_names(kind) | STATUS_NAMES | NOT_REGISTERS
    checked = {t for t in re.findall(r"`([^`\n]+)`", without_code_blocks(text)) if IDENTIFIER.fullmatch(t)}
    return checked, checked - known


def tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table of the text, as rows of cells (header first, separator dropped)."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        stripped = line.strip()
        if stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def wiring_tables(text: str) -> list[list[dict[str, str]]]:
    result = []
    for table in tables(text):
        header = table[0]
        if "ESP32 pin" in header:
            result.append([dict(zip(header, row, strict=True)) for row in table[1:]])
    return result


def test_the_hardware_pages_exist() -> None:
    for name in ("README.md", "common.md", "rs485.md", "installation.md", *(f"{k}.md" for k in KIND_DOCS)):
        assert name in HAND_WRITTEN, f"hardware/{name} is missing"


@pytest.mark.parametrize("name", HAND_WRITTEN)
def test_backticked_register_names_exist_in_the_map(name: str) -> None:
    kind = KIND_DOCS.get(name.removesuffix(".md"))
    checked, unknown = unknown_register_names(read(name), kind)
    scope = f"the {regmap_doc.kind_name(kind)} node" if kind is not None else "any node kind"
    assert not unknown, f"hardware/{name} names registers that {scope} does not have: {sorted(unknown)}"
    if kind is not None:
        # Each kind page talks about its own registers: the check is not vacuous.
        own = {r[0] for r in regmap.MEASUREMENTS[kind]} | {r[0] for r in regmap.KIND_HOLDING[kind]}
        assert len(checked & own) >= 3, f"hardware/{name} names almost none of its kind's registers"


def test_the_name_check_catches_a_misspelling_and_a_wrong_kind() -> None:
    text = "Write 1 to `zero_baselin` and read `pm10` and `unit_id`; `ok` is a status bit."
    _, unknown = unknown_register_names(text, regmap.KIND_TILT)
    assert unknown == {"zero_baselin", "pm10"}
    _, unknown = unknown_register_names("`pm10` and `pitch`", None)
    assert unknown == set()


@pytest.mark.parametrize("name", HAND_WRITTEN)
def test_no_register_numbers_in_the_prose(name: str) -> None:
    text = read(name)
    references = re.findall(r"\b[034]0\d{3}\b", text)
    assert not references, f"hardware/{name} retypes Modbus references {references}: link to {GENERATED}"
    numbered = re.findall(r"(?i)\b(?:register|address)\s+\d+", text)
    assert not numbered, f"hardware/{name} retypes register numbers {numbered}: use the register's name"
    options = re.findall(r"(?<![\w-])-r\s*\d+", text)
    assert not options, f"hardware/{name} has mbpoll -r options {options}: use the examples of {GENERATED}"


@pytest.mark.parametrize("kind_name", sorted(KIND_DOCS))
def test_each_kind_has_a_bill_of_materials_and_a_wiring_table(kind_name: str) -> None:
    text = read(f"{kind_name}.md")
    bom = section(text, "## Bill of materials")
    bom_tables = tables(bom)
    assert bom_tables and {"Item", "Qty"} <= set(bom_tables[0][0]), f"{kind_name}.md: no BOM table"
    assert len(bom_tables[0]) > 8
    for part in ("ESP32-WROOM-32E", "RS-485", "Buck", "Enclosure", "Cable glands", "TVS"):
        assert part.lower() in bom.lower(), f"{kind_name}.md BOM lacks {part}"
    assert re.search(r"MAX3485|SP3485", bom), f"{kind_name}.md BOM names no 3.3 V RS-485 transceiver"
    if KIND_DOCS[kind_name] == regmap.KIND_DUST:
        assert "relay" in bom.lower()

    wiring = section(text, "## Wiring")
    found = wiring_tables(wiring)
    assert found, f"{kind_name}.md: no wiring table with an 'ESP32 pin' column"
    rows = found[0]
    signals = " ".join(r["Signal"] for r in rows)
    assert "UART2 TXD" in signals and "UART2 RXD" in signals and "DE and /RE" in signals
    assert "```mermaid" in wiring, f"{kind_name}.md: no wiring diagram"


def gpio(cell: str) -> int | None:
    match = re.match(r"GPIO(\d+)\b", cell)
    return int(match.group(1)) if match else None


def pin_problems(rows: list[dict[str, str]]) -> list[str]:
    problems = []
    used: dict[int, str] = {}
    for row in rows:
        direction = row["Direction"]
        if direction not in DIRECTIONS:
            problems.append(f"{row['Signal']}: unknown direction {direction!r}")
        pin = gpio(row["ESP32 pin"])
        if pin is None:
            if direction not in ("power", "-"):
                problems.append(f"{row['Signal']}: {row['ESP32 pin']!r} is not a GPIO")
            continue
        if pin not in MODULE_PINS:
            problems.append(f"{row['Signal']}: GPIO{pin} is not on an ESP32-WROOM-32E")
        if pin in FLASH_PINS:
            problems.append(f"{row['Signal']}: GPIO{pin} belongs to the flash")
        if pin in UART0_PINS:
            problems.append(f"{row['Signal']}: GPIO{pin} is UART0 (USB console)")
        if pin in STRAPPING_PINS:
            problems.append(f"{row['Signal']}: GPIO{pin} is a strapping pin")
        if pin in INPUT_ONLY_PINS and direction not in ("in", "analog in"):
            problems.append(f"{row['Signal']}: GPIO{pin} is input-only but used as {direction!r}")
        if direction == "analog in" and pin not in ADC1_PINS:
            problems.append(f"{row['Signal']}: GPIO{pin} is not an ADC1 pin (ADC2 is blocked by Wi-Fi)")
        if pin in used:
            problems.append(f"{row['Signal']}: GPIO{pin} already used for {used[pin]}")
        used[pin] = row["Signal"]
    return problems


@pytest.mark.parametrize("name", HAND_WRITTEN)
def test_wiring_tables_follow_the_esp32_pin_rules(name: str) -> None:
    for rows in wiring_tables(read(name)):
        assert not pin_problems(rows), f"hardware/{name}: {pin_problems(rows)}"


def test_the_pin_rules_catch_bad_wiring() -> None:
    def row(signal: str, pin: str, direction: str) -> dict[str, str]:
        return {"Signal": signal, "ESP32 pin": pin, "Direction": direction}

    assert pin_problems([row("ok", "GPIO17", "out"), row("adc", "GPIO36 (VP)", "analog in")]) == []
    bad = [
        row("relay", "GPIO34", "out"),
        row("cs", "GPIO5", "out"),
        row("flash", "GPIO9", "in"),
        row("adc2", "GPIO26", "analog in"),
        row("twice", "GPIO34", "in"),
    ]
    problems = " ".join(pin_problems(bad))
    for word in ("input-only", "strapping", "flash", "ADC1", "already used"):
        assert word in problems


def rs485_pins(text: str) -> dict[str, int | None]:
    rows = wiring_tables(text)[0]
    pins = {}
    for key, marker in (("tx", "UART2 TXD"), ("rx", "UART2 RXD"), ("de", "RS-485 DE and /RE")):
        pins[key] = next(gpio(r["ESP32 pin"]) for r in rows if marker in r["Signal"])
    return pins


def test_rs485_pins_are_the_same_on_every_node_and_match_the_firmware_defaults() -> None:
    main = (ROOT / "firmware" / "main.py").read_text(encoding="utf-8")
    defaults = {}
    for key in ("tx", "rx", "de"):
        match = re.search(rf'bus\.get\("{key}", (\d+)\)', main)
        assert match, f'firmware/main.py has no default bus.get("{key}", N): update this test to where it moved'
        defaults[key] = int(match.group(1))
    assert rs485_pins(read("common.md")) == defaults
    for kind_name in KIND_DOCS:
        assert rs485_pins(read(f"{kind_name}.md")) == defaults, f"{kind_name}.md"


def test_unit_id_plan_matches_the_examples() -> None:
    plan: dict[int, tuple[int, int]] = {}
    for table in tables(section(read("rs485.md"), "## Unit-ID plan")):
        for row in table[1:]:
            match = re.fullmatch(r"(\d+)-(\d+)", row[1])
            if row[0] in KIND_DOCS and match:
                plan[KIND_DOCS[row[0]]] = (int(match.group(1)), int(match.group(2)))
    assert set(plan) == set(regmap_doc.kinds()), "rs485.md: every node kind needs a unit-ID range"
    factory = regmap.find(regmap.COMMON_HOLDING, "unit_id")
    spans = sorted(plan.values())
    for (_low, high), (next_low, _high) in itertools.pairwise(spans):
        assert high < next_low, "unit-ID ranges overlap"
    for kind, (low, high) in plan.items():
        assert factory[5] <= low <= high <= factory[6]
        assert not low <= factory[7] <= high, "the factory default ID must not be inside a kind's range"
        # register-map.md says its examples use the first ID of each range.
        assert regmap_doc.EXAMPLE_UNIT_IDS[kind] == low
