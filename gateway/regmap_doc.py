"""The register map rendered for people: hardware/register-map.md.

firmware/regmap.py is the single source of truth; this module only reads it.
It gives typed views of the map's tuples (the firmware keeps plain tuples
because it runs under MicroPython), the mbpoll command lines an installer
types while commissioning a node, and a deterministic Markdown rendering, so
the committed document can be compared byte for byte with a fresh one.

Numbering used in the document:
- address: the 0-based register number carried in the Modbus PDU;
- reference: the 1-based "3xxxx" (input), "4xxxx" (holding) and "0xxxx" (coil)
  number many manuals and SCADA tools use: reference = base + address + 1.
mbpoll takes references by default (-r is 1-based) and addresses with -0.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from firmware import modbus_rtu, regmap
from gateway.profiles.kinds import kind_profile
from gateway.regmap_text import DESCRIPTIONS

# Where the generated document lives, relative to the repository root.
DOC_PATH = "hardware/register-map.md"
REGENERATE_COMMAND = "sitewatch regmap --write " + DOC_PATH

INPUT = "input"
HOLDING = "holding"
COIL = "coil"

# First digit of the conventional 5-digit references, per table.
REFERENCE_PREFIX = {INPUT: 3, HOLDING: 4, COIL: 0}
# mbpoll's -t data types.
MBPOLL_TYPE = {INPUT: "3", HOLDING: "4", COIL: "0"}

# Meaning of the holding registers "baud_code" and "parity" (their
# descriptions in the map say the same; tests/hardware checks they agree).
BAUD_RATES = (9600, 19200, 38400, 57600, 115200)
PARITY_NAMES = ("none", "even", "odd")

EXAMPLE_DEVICE = "/dev/ttyUSB0"

# Unit IDs used in the examples: the first ID of each kind's range in the
# site plan of hardware/rs485.md (tests/hardware checks the two agree), and one
# typical configuration write per kind, in physical units: (holding register,
# value, why an installer would do it). Both from the kinds' profiles ([doc]).
def example_unit_id(kind: int) -> int:
    return kind_profile(str(regmap.KIND_NAMES[kind])).doc_unit_id


def example_write(kind: int) -> tuple[str, float, str]:
    write = kind_profile(str(regmap.KIND_NAMES[kind])).doc_write
    if write is not None:
        return write
    first = regmap.KIND_HOLDING[kind][0] if regmap.KIND_HOLDING[kind] else regmap.COMMON_HOLDING[3]
    return (str(first[0]), int(first[7]) / int(first[3]), "write its default back")


EXAMPLE_UNIT_IDS = {kind: example_unit_id(kind) for kind in sorted(regmap.KIND_NAMES)}
EXAMPLE_WRITES: dict[int, tuple[str, float, str]] = {kind: example_write(kind) for kind in sorted(regmap.KIND_NAMES)}

# What each bit of "sensor_status" means. Keyed by the map's bit names; a new
# bit in the map without an entry here stops the rendering (see status_bits).
STATUS_MEANINGS = {
    "ok": "the newest sample is valid",
    "absent": "the sensor did not answer",
    "checksum": "the sensor's last frame failed its checksum",
    "stuck": "the value has not changed for too long",
    "out_of_range": "a value is outside the sensor's range",
    "warmup": "the sensor is warming up; its values are not valid yet",
    "humid": "optical PM reading taken above the humidity threshold (holding register `rh_flag_threshold`)",
}

EXCEPTION_MEANINGS = (
    (modbus_rtu.ILLEGAL_FUNCTION, "illegal function", "the node does not implement this function code"),
    (
        modbus_rtu.ILLEGAL_ADDRESS,
        "illegal data address",
        "the request reaches past the end of the table, writes an unlisted holding register, "
        "or writes only half of a 32-bit value",
    ),
    (
        modbus_rtu.ILLEGAL_VALUE,
        "illegal data value",
        "a written value is outside the register's min..max, or the request's count is invalid",
    ),
)


@dataclass(frozen=True)
class Register:
    """One input or holding register row of the map, typed."""

    name: str
    address: int
    fmt: int
    scale: int
    unit: str
    description: str
    minimum: int | None = None  # raw; holding registers only
    maximum: int | None = None
    default: int | None = None

    @property
    def words(self) -> int:
        return int(regmap.FORMAT_WORDS[self.fmt])

    @property
    def format_name(self) -> str:
        return str(regmap.FORMAT_NAMES[self.fmt])

    @property
    def signed(self) -> bool:
        return self.fmt in (regmap.S16, regmap.S32)

    @property
    def last_address(self) -> int:
        return self.address + self.words - 1


@dataclass(frozen=True)
class Coil:
    name: str
    address: int
    description: str


@dataclass(frozen=True)
class MbpollExample:
    """One mbpoll command line and what it does, so tests can run it and check the effect."""

    title: str
    argv: tuple[str, ...]
    unit: int
    table: str  # INPUT, HOLDING or COIL
    address: int  # 0-based address of the first value
    count: int  # values read (32-bit values when wide), or 1 for a write
    wide: bool = False  # read as 32-bit integers, high word first
    write: int | None = None  # value written (0..65535 as typed), None for a read

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


# -- typed views of the map -----------------------------------------------------


def kinds() -> tuple[int, ...]:
    return tuple(sorted(int(k) for k in regmap.KIND_NAMES))


def kind_name(kind: int) -> str:
    return str(regmap.KIND_NAMES[kind])


def kind_by_name(name: str) -> int:
    for kind in kinds():
        if kind_name(kind) == name:
            return kind
    raise KeyError(name)


def description(kind: int | None, name: str) -> str:
    """What a register or coil means: the kind's own (its profile), else a diagnostic or common one (regmap_text)."""
    if kind is not None and name in kind_profile(kind_name(kind)).descriptions:
        return kind_profile(kind_name(kind)).descriptions[name]
    sections = ["diagnostics", "common"]
    for section in sections:
        text = DESCRIPTIONS.get(section, {}).get(name)
        if text is not None:
            return text
    raise KeyError(f"register {name!r} has no description in gateway/regmap_text.py (sections {sections})")


def _register(row: Sequence[object], kind: int | None) -> Register:
    return Register(
        name=str(row[0]),
        address=_int(row[1]),
        fmt=_int(row[2]),
        scale=_int(row[3]),
        unit=str(row[4]),
        description=description(kind, str(row[0])),
    )


def _holding(row: Sequence[object], kind: int) -> Register:
    return Register(
        name=str(row[0]),
        address=_int(row[1]),
        fmt=_int(row[2]),
        scale=_int(row[3]),
        unit=str(row[4]),
        minimum=_int(row[5]),
        maximum=_int(row[6]),
        default=_int(row[7]),
        description=description(kind, str(row[0])),
    )


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"register map: expected an int, got {value!r}")
    return value


def input_registers(kind: int) -> tuple[Register, ...]:
    return tuple(_register(row, kind) for row in regmap.input_registers(kind))


def holding_registers(kind: int) -> tuple[Register, ...]:
    return tuple(_holding(row, kind) for row in regmap.holding_registers(kind))


def coils(kind: int) -> tuple[Coil, ...]:
    return tuple(Coil(str(row[0]), _int(row[1]), description(kind, str(row[0]))) for row in regmap.coils(kind))


def diagnostics() -> tuple[Register, ...]:
    return tuple(_register(row, None) for row in regmap.DIAGNOSTICS)


def measurements(kind: int) -> tuple[Register, ...]:
    return tuple(_register(row, kind) for row in regmap.MEASUREMENTS[kind])


def status_bits() -> tuple[tuple[int, str, str], ...]:
    """(mask, name, meaning) of every bit of "sensor_status"."""
    bits = []
    for mask, name in regmap.STATUS_BITS:
        if name not in STATUS_MEANINGS:
            raise ValueError(f"status bit {name!r} has no meaning in gateway/regmap_doc.py STATUS_MEANINGS")
        bits.append((_int(mask), str(name), STATUS_MEANINGS[name]))
    return tuple(bits)


def all_register_names(kind: int | None = None) -> frozenset[str]:
    """Names of every input register, holding register and coil (of one kind, or of all)."""
    names: set[str] = set()
    for k in kinds() if kind is None else (kind,):
        names.update(r.name for r in input_registers(k))
        names.update(r.name for r in holding_registers(k))
        names.update(c.name for c in coils(k))
    return frozenset(names)


def reference(table: str, address: int) -> str:
    """The conventional 1-based 5-digit reference of a 0-based address."""
    return f"{REFERENCE_PREFIX[table]}{address + 1:04d}"


def physical(raw: int, scale: int) -> str:
    """raw / scale written exactly, without trailing zeros (750, 10 -> "75")."""
    value = (Decimal(raw) / Decimal(scale)).normalize()
    text = format(value, "f")
    return "0" if text in ("-0", "0") else text


# -- mbpoll command lines ---------------------------------------------------------


def _default_of(kind: int, name: str) -> int:
    for register in holding_registers(kind):
        if register.name == name and register.default is not None:
            return register.default
    raise KeyError(name)


def serial_options(kind: int) -> tuple[str, ...]:
    """mbpoll's RTU options for a node with the map's default serial settings."""
    baud = BAUD_RATES[_default_of(kind, "baud_code")]
    parity = PARITY_NAMES[_default_of(kind, "parity")]
    return ("-m", "rtu", "-b", str(baud), "-P", parity)


def _runs(registers: Iterable[Register]) -> list[list[Register]]:
    """Group registers into runs of adjacent addresses (each run is one request)."""
    runs: list[list[Register]] = []
    for register in sorted(registers, key=lambda r: r.address):
        if runs and runs[-1][-1].last_address + 1 == register.address:
            runs[-1].append(register)
        else:
            runs.append([register])
    return runs


def _names(registers: Sequence[Register]) -> str:
    if len(registers) <= 2:
        return ", ".join(r.name for r in registers)
    return registers[0].name + " .. " + registers[-1].name


def mbpoll_examples(kind: int, device: str = EXAMPLE_DEVICE) -> tuple[MbpollExample, ...]:
    """The command lines of the document's example section for one kind, in order."""
    unit = example_unit_id(kind)
    factory_unit = _default_of(kind, "unit_id")
    serial = serial_options(kind)
    examples: list[MbpollExample] = []

    def read(title: str, table: str, address: int, count: int, wide: bool = False, zero_based: bool = False) -> None:
        # Modbus caps one read at 125 registers (2000 coils).
        words = count * (2 if wide else 1)
        if words > (2000 if table == COIL else 125):
            raise ValueError(f"one request cannot read {count} values of the {table} table")
        data_type = MBPOLL_TYPE[table] + (":int" if wide else "")
        options = ["-a", str(unit), "-t", data_type]
        if wide:
            options.append("-B")  # high word first; mbpoll's default is the low word first
        if zero_based:
            options += ["-0", "-r", str(address)]
        else:
            options += ["-r", str(address + 1)]
        options += ["-c", str(count), "-1"]
        argv = ("mbpoll", *serial, *options, device)
        examples.append(MbpollExample(title, argv, unit, table, address, count, wide))

    def write(title: str, table: str, address: int, value: int, at_unit: int = unit) -> None:
        # A 16-bit write takes 0..65535 only (mbpoll refuses "-15"): a
        # negative s16 value is typed as its two's complement.
        if not 0 <= value <= 0xFFFF:
            raise ValueError(f"{value} does not fit one register")
        options = ("-a", str(at_unit), "-t", MBPOLL_TYPE[table], "-r", str(address + 1))
        argv = ("mbpoll", *serial, *options, device, str(value))
        examples.append(MbpollExample(title, argv, at_unit, table, address, 1, write=value))

    unit_id = _find(holding_registers(kind), "unit_id")
    write(
        f"Commissioning: give a new node (factory unit ID {factory_unit}) its site unit ID {unit}, then restart it",
        HOLDING,
        unit_id.address,
        unit,
        at_unit=factory_unit,
    )
    diag = diagnostics()
    first, last = diag[0], diag[-1]
    read(
        f"Identify the node: the diagnostics block ({first.name} .. {last.name})",
        INPUT,
        first.address,
        last.last_address - first.address + 1,
    )
    inputs = input_registers(kind)
    read(
        "The whole sample, diagnostics and measurements, in one request (unlisted addresses read 0)",
        INPUT,
        0,
        max(r.last_address for r in inputs) + 1,
    )
    for run in _runs(r for r in inputs if r.words == 2):
        read(
            f"32-bit input registers, high word first (-B; mbpoll shows them signed): {_names(run)}",
            INPUT,
            run[0].address,
            len(run),
            wide=True,
        )
    meas = measurements(kind)
    read(
        f"The measurements with 0-based addresses (-0): {_names(meas)}",
        INPUT,
        meas[0].address,
        max(r.last_address for r in meas) - meas[0].address + 1,
        zero_based=True,
    )
    for run in _runs(holding_registers(kind)):
        read(
            f"Configuration: holding registers {_names(run)}",
            HOLDING,
            run[0].address,
            run[-1].last_address - run[0].address + 1,
        )
    for run in _runs(r for r in holding_registers(kind) if r.words == 2):
        read(
            f"32-bit holding registers, high word first (-B): {_names(run)}",
            HOLDING,
            run[0].address,
            len(run),
            wide=True,
        )
    name, value, why = example_write(kind)
    register = _find(holding_registers(kind), name)
    raw = _checked_raw(register, value)
    shown = physical(raw, register.scale)
    unit_text = " " + register.unit if register.unit else ""
    if register.words != 1:
        raise ValueError(f"example write {name}: only 16-bit registers are written in the examples")
    typed = raw & 0xFFFF
    raw_text = f"raw {raw}" if raw == typed else f"raw {raw}, typed as its two's complement {typed}"
    write(f"Set {name} = {shown}{unit_text} ({raw_text}): {why}", HOLDING, register.address, typed)
    parity = _find(holding_registers(kind), "parity")
    even = PARITY_NAMES.index("even")
    write(
        f"Switch the node to 8E1 (parity = {even}, even); after its restart add -P even to every command",
        HOLDING,
        parity.address,
        even,
    )
    for coil in coils(kind):
        read(f"Read coil {coil.name}", COIL, coil.address, 1)
        write(f"Switch {coil.name} on (1) or off (0)", COIL, coil.address, 1)
    return tuple(examples)


def _find(registers: Iterable[Register], name: str) -> Register:
    for register in registers:
        if register.name == name:
            return register
    raise KeyError(name)


def _checked_raw(register: Register, value: float) -> int:
    """Signed raw integer for a physical value, refused when the node would refuse it."""
    raw = int(regmap.decode_raw(regmap.encode(value, register.fmt, register.scale), register.fmt))
    if (
        register.minimum is not None
        and register.maximum is not None
        and not register.minimum <= raw <= register.maximum
    ):
        raise ValueError(f"example value {value} for {register.name} is outside its range")
    return raw


# -- Markdown ---------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _span(table: str, register: Register) -> tuple[str, str]:
    """Address and reference cells; a 32-bit value shows both of its words."""
    if register.words == 1:
        return str(register.address), reference(table, register.address)
    return (
        f"{register.address}-{register.last_address}",
        f"{reference(table, register.address)}-{reference(table, register.last_address)}",
    )


def _unit(unit: str) -> str:
    return unit if unit else "-"


def _input_table(registers: Sequence[Register]) -> list[str]:
    rows = []
    for r in registers:
        address, ref = _span(INPUT, r)
        rows.append((address, ref, f"`{r.name}`", r.format_name, str(r.scale), _unit(r.unit), r.description))
    return _table(("Address", "Reference", "Name", "Format", "Scale", "Unit", "Description"), rows)


def _holding_table(registers: Sequence[Register]) -> list[str]:
    rows = []
    for r in registers:
        assert r.minimum is not None and r.maximum is not None and r.default is not None
        address, ref = _span(HOLDING, r)
        rows.append(
            (
                address,
                ref,
                f"`{r.name}`",
                r.format_name,
                str(r.scale),
                _unit(r.unit),
                physical(r.minimum, r.scale),
                physical(r.maximum, r.scale),
                physical(r.default, r.scale),
                r.description,
            )
        )
    header = ("Address", "Reference", "Name", "Format", "Scale", "Unit", "Min", "Max", "Default", "Description")
    return _table(header, rows)


def _coil_table(items: Sequence[Coil]) -> list[str]:
    rows = [(str(c.address), reference(COIL, c.address), f"`{c.name}`", c.description) for c in items]
    return _table(("Address", "Reference", "Name", "Description"), rows)


def _conventions() -> list[str]:
    dust = regmap.KIND_DUST
    example_tilt = measurements(regmap.KIND_TILT)
    wide = next(r for r in example_tilt if r.words == 2 and r.signed)
    raw = int(regmap.encode(-1000, wide.fmt, wide.scale))
    high, low = raw >> 16, raw & 0xFFFF
    baud_default = BAUD_RATES[_default_of(dust, "baud_code")]
    parity_default = PARITY_NAMES[_default_of(dust, "parity")]
    lines = [
        "## Conventions",
        "",
        "- **Address** is the 0-based register number carried in the Modbus request. **Reference** is the",
        "  1-based number many manuals and SCADA tools use: 3xxxx for input registers, 4xxxx for holding",
        "  registers, 0xxxx for coils, reference = 30001 + address (40001 + address, 00001 + address).",
        "  mbpoll counts the same way as the reference by default (`-r 1` is address 0); with `-0` it takes",
        "  the address.",
        "- **Input registers** (function 04) are read-only: diagnostics first, then the measurements of the",
        f"  node's kind from address {regmap.MEASUREMENT_BASE}, so one read from address 0 fetches a whole "
        "sample with its",
        "  diagnostics. Unlisted addresses inside that span read 0.",
        "- **Holding registers** (read with function 03, written with 06 or 16) hold the configuration and are",
        "  persisted on the node. Only listed registers are writable; a value outside Min..Max is refused with",
        "  exception 3. Min, Max and Default are given in physical units.",
        "- **Coils** (read with function 01, written with 05) drive actuators.",
        "- **Scale**: a physical value v travels as raw = round(v * scale); the reader computes",
        "  v = raw / scale. A temperature of 21.5 degC with scale 10 is sent as 215.",
        "- **Formats**: u16 / s16 are one register, unsigned / two's complement; u32 / s32 take two",
        "  registers.",
        f"- **Serial defaults** of a new node: {baud_default} baud, parity {parity_default} (8N1), unit ID "
        f"{_default_of(dust, 'unit_id')}.",
        "  The simulator's pseudo-terminals reject even parity, hence 8N1; on a real RS-485 line 8E1 is the Modbus",
        "  default (see [rs485.md](rs485.md)).",
        "",
        "### Word order of 32-bit values",
        "",
        "A 32-bit value occupies two consecutive registers, **high word first** (big-endian word order; each",
        "word itself is big-endian as always in Modbus). Both words must be written in one request",
        "(function 16); writing half of a value is refused with exception 2.",
        "",
        f"Example: `{wide.name}` = -1000 {wide.unit} is stored as raw 0x{raw:08X}: "
        f"the first register holds 0x{high:04X}, the second 0x{low:04X}.",
        "mbpoll assumes the opposite order unless given `-B`: read 32-bit values with `-t 3:int -B`",
        "(input registers) or `-t 4:int -B` (holding registers).",
        "",
    ]
    return lines


def _status_section() -> list[str]:
    rows = []
    for mask, name, meaning in status_bits():
        rows.append((str(mask.bit_length() - 1), f"0x{mask:04X}", f"`{name}`", meaning))
    return [
        "## Status bits",
        "",
        "Bits of the input register `sensor_status`, the same for every kind. A sample is usable when `ok` is",
        "set; the other bits say why it is not, or flag it.",
        "",
        *_table(("Bit", "Mask", "Name", "Meaning"), rows),
        "",
        *_split_status_lines(),
    ]


def _split_status_lines() -> list[str]:
    """The second status group (regmap STATUS_SPLIT): which channels it describes, per kind."""
    kinds = "; ".join(
        f"{regmap.KIND_NAMES[kind]}: {', '.join(f'`{c}`' for c in channels)}"
        for kind, channels in sorted(regmap.STATUS_AUX_CHANNELS.items())
    )
    return [
        f"Per channel: with bit {regmap.STATUS_SPLIT.bit_length() - 1} (mask 0x{regmap.STATUS_SPLIT:04X}, split) set,"
        " the bits above describe the kind's main sensor only, and the same bits shifted left by"
        f" {regmap.STATUS_AUX_SHIFT} describe its second sensor's channels ({kinds});"
        " `ok` belongs to the main sensor. Without it every bit describes every channel (docs/data-quality.md).",
        "",
    ]


def _exceptions_section() -> list[str]:
    rows = [(str(code), name, why) for code, name, why in EXCEPTION_MEANINGS]
    return [
        "## Exception replies",
        "",
        "A node answers a request it cannot carry out with an exception reply; it stays silent when the",
        "request is for another unit ID, fails its CRC, or is a broadcast (unit ID 0).",
        "",
        *_table(("Code", "Name", "When"), rows),
        "",
    ]


def _kind_section(kind: int) -> list[str]:
    name = kind_name(kind)
    lines = [
        f"## {name.capitalize()} node (`node_kind` = {kind})",
        "",
        f"### Input registers (function 04), {name}",
        "",
        *_input_table(input_registers(kind)),
        "",
        f"### Holding registers (functions 03, 06, 16), {name}",
        "",
        *_holding_table(holding_registers(kind)),
        "",
        f"### Coils (functions 01, 05), {name}",
        "",
    ]
    kind_coils = coils(kind)
    if kind_coils:
        lines += _coil_table(kind_coils)
    else:
        lines.append("None: this node has no actuator.")
    lines += [
        "",
        f"### mbpoll examples, {name}",
        "",
        f"For a USB RS-485 adapter at {EXAMPLE_DEVICE} and unit ID {example_unit_id(kind)} (the first ID of "
        f"the {name} range in the",
        "site plan of [rs485.md](rs485.md)). `-1` polls once; without it mbpoll repeats the read every second.",
        "Values written are raw (physical value * scale).",
        "",
        "```sh",
    ]
    for i, example in enumerate(mbpoll_examples(kind)):
        if i:
            lines.append("")
        lines.append("# " + example.title)
        lines.append(example.command)
    lines += ["```", ""]
    return lines


def render_markdown(selected: Sequence[int] | None = None) -> str:
    """The register-map document for the given kinds (all kinds when None)."""
    chosen = kinds() if selected is None else tuple(selected)
    kind_rows = [
        (str(k), f"`{kind_name(k)}`", f"[{kind_name(k)} node](#{kind_name(k)}-node-node_kind--{k})") for k in chosen
    ]
    version = int(regmap.FIRMWARE_VERSION)
    lines = [
        "# Register map",
        "",
        "<!-- Generated from firmware/regmap.py by gateway/regmap_doc.py: do not edit by hand. -->",
        f"<!-- Regenerate with: {REGENERATE_COMMAND} -->",
        "",
        f"Modbus RTU registers of the sitewatch nodes, firmware {version >> 8}.{version & 0xFF}. The tables are "
        "generated from",
        "`firmware/regmap.py`, the single source of truth that the firmware, the gateway and the simulator",
        "also read. Hardware and wiring: [README.md](README.md).",
        "",
        *_table(("`node_kind`", "Kind", "Section"), kind_rows),
        "",
        *_conventions(),
        *_status_section(),
        *_exceptions_section(),
    ]
    for kind in chosen:
        lines += _kind_section(kind)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"
