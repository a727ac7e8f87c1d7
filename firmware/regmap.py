# The register map of every sitewatch node: the single source of truth.
#
# Firmware, gateway, simulator, tests and the generated hardware/register-map.md
# all read these tables; nobody else types a register number. The rows of each
# kind come from its data module, firmware/kind_<name>.py (see "Kinds" below).
#
# This file runs on the ESP32 under MicroPython, so it is plain data (tuples and
# ints) and small functions: no dataclasses, no typing, no f-strings with
# format specs MicroPython lacks.
#
# Encoding: a physical value v is sent as raw = round(v * scale) in the given
# format; the reader computes v = raw / scale. 32-bit values use two
# registers, high word first (big-endian word order, the most common choice
# of Modbus devices; mbpoll needs -B to read 32-bit values this way).

import os
import sys

FIRMWARE_VERSION = 0x0100  # major * 256 + minor: 1.0

# Node kinds: the value of input register "node_kind". Each kind is one data
# module, firmware/kind_<name>.py (its measurements, holding registers, coils
# and second-sensor channels), found and assembled into the tables below by
# load_kind / load_shipped_kinds: a node ships only its own kind's module. The
# constants name the kinds sitewatch ships (tests and tools use them); a new
# kind needs none.
KIND_DUST = 1
KIND_NOISE = 2
KIND_TILT = 3
KIND_WIND = 4
KIND_NAMES = {}  # code -> name, filled by add_kind
KIND_CODES = {}  # name -> code
KIND_ADAPTERS = {}  # code -> the sensor module main.py loads when node.json names none

# Value formats.
U16 = 0
S16 = 1
U32 = 2
S32 = 3
FORMAT_NAMES = ("u16", "s16", "u32", "s32")
FORMAT_WORDS = (1, 1, 2, 2)

# Bits of input register "sensor_status".
STATUS_OK = 0x0001  # the newest sample is valid
STATUS_ABSENT = 0x0002  # the sensor did not answer
STATUS_CHECKSUM = 0x0004  # the sensor's last frame failed its checksum
STATUS_STUCK = 0x0008  # the value has not changed for too long
STATUS_RANGE = 0x0010  # a value is outside the sensor's range
STATUS_WARMUP = 0x0020  # the sensor is warming up; values not yet valid
STATUS_HUMID = 0x0040  # optical PM reading taken above the humidity threshold
STATUS_BITS = (
    (STATUS_OK, "ok"),
    (STATUS_ABSENT, "absent"),
    (STATUS_CHECKSUM, "checksum"),
    (STATUS_STUCK, "stuck"),
    (STATUS_RANGE, "out_of_range"),
    (STATUS_WARMUP, "warmup"),
    (STATUS_HUMID, "humid"),
)

# Per-channel status. A kind may have a second sensor (the dust node's
# T/RH/P chip, the wind node's vane). With STATUS_SPLIT set, the bits above
# describe the main sensor's channels only, and the same bits shifted left by
# STATUS_AUX_SHIFT describe the channels in STATUS_AUX_CHANNELS; STATUS_OK
# belongs to the main sensor. Without STATUS_SPLIT every bit describes every
# channel. (gateway/acquire/decode.py channel_qualities; docs/data-quality.md)
STATUS_SPLIT = 0x0080
STATUS_AUX_SHIFT = 8
STATUS_AUX_CHANNELS = {}  # code -> channel names, for the kinds that have a second sensor

# ---------------------------------------------------------------------------
# Input registers (function code 04), read-only.
# Row: (name, address, format, scale, unit). What each register means is
# gateway-side text (gateway/profiles/kinds/<kind>.toml): strings cost the node heap.
# Addresses 0..15 are the diagnostics every node has; measurements start at
# MEASUREMENT_BASE so that one read of input_count(kind) registers fetches a
# whole sample with its diagnostics.
# ---------------------------------------------------------------------------
MEASUREMENT_BASE = 16

DIAGNOSTICS = (
    ("fw_version", 0, U16, 1, ""),
    ("node_kind", 1, U16, 1, ""),
    ("uptime", 2, U32, 1, "s"),
    ("sample_seq", 4, U32, 1, ""),
    ("sample_age", 6, U16, 1, "ms"),
    ("sensor_status", 7, U16, 1, ""),
    ("frames_ok", 8, U16, 1, ""),
    ("crc_errors", 9, U16, 1, ""),
    ("sensor_errors", 10, U16, 1, ""),
    ("boot_count", 11, U16, 1, ""),
    ("history_oldest", 12, U32, 1, ""),
    ("boot_flags", 14, U16, 1, ""),
)

MEASUREMENTS = {}  # code -> rows, from the kind modules

# ---------------------------------------------------------------------------
# Holding registers (function codes 03, 06, 16): configuration, persisted.
# Row: (name, address, format, scale, unit, minimum_raw, maximum_raw, default_raw)
# Only listed registers are writable; a value outside [minimum, maximum] is
# refused with exception 3 (illegal data value).
# ---------------------------------------------------------------------------
FACTORY_RESET_KEY = 0xA55A

COMMON_HOLDING = (
    ("unit_id", 0, U16, 1, "", 1, 247, 1),
    ("baud_code", 1, U16, 1, "", 0, 4, 0),
    ("parity", 2, U16, 1, "", 0, 2, 0),
    ("sample_interval", 3, U16, 1, "ms", 100, 60000, 1000),
    ("factory_reset", 4, U16, 1, "", 0, 0xFFFF, 0),
    ("history_seq", 5, U32, 1, "", 0, 0xFFFFFFFF, 0),
)

KIND_HOLDING = {}  # code -> rows, from the kind modules

# ---------------------------------------------------------------------------
# History window (input registers from HISTORY_BASE): the node keeps a ring of
# its recent samples (at least 10 minutes). The gateway writes the sequence
# number it wants into holding register "history_seq", then reads the window:
# consecutive records starting at that sample, each laid out as
#   sequence (u32, 2 words) | age in ms at the time of the read (u32, 2 words)
#   | sensor_status (u16) | the kind's measurement words, as at MEASUREMENT_BASE
# A record whose sequence is 0 is empty (not in the ring, or not taken yet).
# ---------------------------------------------------------------------------
HISTORY_BASE = 64
HISTORY_HEADER_WORDS = 5
HISTORY_MAX_READ = 125  # registers per read request (Modbus limit)


def measurement_words(kind):
    return input_count(kind) - MEASUREMENT_BASE


def history_record_words(kind):
    return HISTORY_HEADER_WORDS + measurement_words(kind)


def history_records(kind):
    """Records in the window: as many as one read request can carry."""
    return HISTORY_MAX_READ // history_record_words(kind)


def history_window_words(kind):
    return history_records(kind) * history_record_words(kind)


# ---------------------------------------------------------------------------
# Coils (function codes 01, 05): actuators.
# Row: (name, address)
# ---------------------------------------------------------------------------
COILS = {}  # code -> rows, from the kind modules


def input_registers(kind):
    """Diagnostics followed by the kind's measurements."""
    return DIAGNOSTICS + MEASUREMENTS[kind]


def holding_registers(kind):
    return COMMON_HOLDING + KIND_HOLDING[kind]


def coils(kind):
    return COILS[kind]


def _span(rows):
    end = 0
    for row in rows:
        top = row[1] + FORMAT_WORDS[row[2]]
        if top > end:
            end = top
    return end


def input_count(kind):
    """Registers to read from address 0 to get every input register of the kind."""
    return _span(input_registers(kind))


def holding_count(kind):
    return _span(holding_registers(kind))


def coil_count(kind):
    end = 0
    for row in COILS[kind]:
        if row[1] + 1 > end:
            end = row[1] + 1
    return end


def find(rows, name):
    for row in rows:
        if row[0] == name:
            return row
    raise KeyError(name)


def encode(value, fmt, scale):
    """Physical value -> raw integer as stored in registers (two's complement for signed)."""
    raw = int(round(value * scale))
    bits = 16 if FORMAT_WORDS[fmt] == 1 else 32
    if fmt == S16 or fmt == S32:
        low = -(1 << (bits - 1))
        high = (1 << (bits - 1)) - 1
    else:
        low = 0
        high = (1 << bits) - 1
    if raw < low:
        raw = low
    elif raw > high:
        raw = high
    return raw & ((1 << bits) - 1)


def decode_raw(raw, fmt):
    """Unsigned register content -> signed or unsigned integer."""
    if fmt == S16 and raw & 0x8000:
        return raw - 0x10000
    if fmt == S32 and raw & 0x80000000:
        return raw - 0x100000000
    return raw


def words_to_raw(words, offset, fmt):
    if FORMAT_WORDS[fmt] == 1:
        return words[offset]
    return (words[offset] << 16) | words[offset + 1]


# ---------------------------------------------------------------------------
# Kinds: one data module each (firmware/kind_<name>.py).
# ---------------------------------------------------------------------------
KIND_PREFIX = "kind_"


def add_kind(module):
    """Register a kind from its data module (or any object with the same names); returns its code.

    The module holds CODE, NAME, ADAPTER, MEASUREMENTS, HOLDING, COILS and
    AUX_CHANNELS. A second kind with the same code or name is refused: the
    node_kind register would no longer say which kind answered.
    """
    code = module.CODE
    name = module.NAME
    if KIND_NAMES.get(code, name) != name or KIND_CODES.get(name, code) != code:
        raise ValueError("kind " + name + " (" + str(code) + ") clashes with kind "
                         + str(KIND_NAMES.get(code, name)) + " (" + str(KIND_CODES.get(name, code)) + ")")
    KIND_NAMES[code] = name
    KIND_CODES[name] = code
    KIND_ADAPTERS[code] = module.ADAPTER
    MEASUREMENTS[code] = tuple(module.MEASUREMENTS)
    KIND_HOLDING[code] = tuple(module.HOLDING)
    COILS[code] = tuple(module.COILS)
    if module.AUX_CHANNELS:
        STATUS_AUX_CHANNELS[code] = tuple(module.AUX_CHANNELS)
    return code


def load_kind(name):
    """The code of kind `name`, importing firmware/kind_<name>.py the first time."""
    if name in KIND_CODES:
        return KIND_CODES[name]
    module = "firmware." + KIND_PREFIX + name
    try:
        __import__(module)
    except ImportError:
        raise ValueError("unknown node kind " + str(name) + " (no " + module + ")")
    return add_kind(sys.modules[module])


def load_shipped_kinds():
    """Every kind module next to this file (on a node: its own kind only; frozen images call load_kind)."""
    try:
        names = os.listdir(__file__.rsplit("/", 1)[0] if "/" in __file__ else ".")
    except (OSError, NameError):
        return
    for file in sorted(names):
        dot = file.rfind(".")
        if file.startswith(KIND_PREFIX) and file[dot:] in (".py", ".mpy"):
            load_kind(file[len(KIND_PREFIX):dot])


load_shipped_kinds()
