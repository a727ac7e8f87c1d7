# The register map of every sitewatch node: the single source of truth.
#
# Firmware, gateway, simulator, tests and the generated hardware/register-map.md
# all read these tables; nobody else types a register number.
#
# This file runs on the ESP32 under MicroPython, so it is plain data (tuples and
# ints) and small functions: no dataclasses, no typing, no f-strings with
# format specs MicroPython lacks.
#
# Encoding: a physical value v is sent as raw = round(v * scale) in the given
# format; the reader computes v = raw / scale. 32-bit values use two
# registers, high word first (big-endian word order, the most common choice
# of Modbus devices; mbpoll needs -B to read 32-bit values this way).

FIRMWARE_VERSION = 0x0100  # major * 256 + minor: 1.0

# Node kinds: the value of input register "node_kind".
KIND_DUST = 1
KIND_NOISE = 2
KIND_TILT = 3
KIND_WIND = 4
KIND_NAMES = {KIND_DUST: "dust", KIND_NOISE: "noise", KIND_TILT: "tilt", KIND_WIND: "wind"}

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
STATUS_AUX_CHANNELS = {
    KIND_DUST: ("temperature", "humidity", "pressure"),
    KIND_WIND: ("wind_dir",),
}

# ---------------------------------------------------------------------------
# Input registers (function code 04), read-only.
# Row: (name, address, format, scale, unit). What each register means is
# gateway-side text (gateway/regmap_text.py): strings cost the node heap.
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

MEASUREMENTS = {
    KIND_DUST: (
        ("pm25", 16, U16, 1, "ug/m3"),
        ("pm10", 17, U16, 1, "ug/m3"),
        ("pm1", 18, U16, 1, "ug/m3"),
        ("temperature", 19, S16, 10, "degC"),
        ("humidity", 20, U16, 10, "%"),
        ("pressure", 21, U16, 100, "kPa"),
    ),
    KIND_NOISE: (
        ("laeq_1s", 16, U16, 10, "dB(A)"),
        ("lamax_1s", 17, U16, 10, "dB(A)"),
        ("lamin_1s", 18, U16, 10, "dB(A)"),
    ),
    KIND_TILT: (
        ("pitch", 16, S32, 1, "mdeg"),
        ("roll", 18, S32, 1, "mdeg"),
        ("slope_x", 20, S32, 1000, "permille"),
        ("slope_y", 22, S32, 1000, "permille"),
        ("temperature", 24, S16, 10, "degC"),
    ),
    KIND_WIND: (
        ("wind_speed", 16, U16, 100, "m/s"),
        ("wind_dir", 17, U16, 10, "deg"),
        ("wind_gust_3s", 18, U16, 100, "m/s"),
    ),
}

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

KIND_HOLDING = {
    KIND_DUST: (
        ("rh_flag_threshold", 16, U16, 10, "%", 300, 1000, 750),
        ("rh_correction", 17, U16, 1, "", 0, 1, 0),
        ("kappa", 18, U16, 1000, "", 0, 2000, 300),
    ),
    KIND_NOISE: (
        ("calibration_offset", 16, S16, 10, "dB", -200, 200, 0),
    ),
    KIND_TILT: (
        ("zero_baseline", 16, U16, 1, "", 0, 1, 0),
        ("baseline_pitch", 17, S32, 1, "mdeg", -90000, 90000, 0),
        ("baseline_roll", 19, S32, 1, "mdeg", -90000, 90000, 0),
    ),
    KIND_WIND: (
        ("anemometer_factor", 16, U16, 10000, "m/s/Hz", 1, 65535, 1000),
        ("anemometer_offset", 17, U16, 1000, "m/s", 0, 5000, 0),
        ("vane_offset", 18, U16, 10, "deg", 0, 3599, 0),
    ),
}

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
COILS = {
    KIND_DUST: (("spray_relay", 0),),
    KIND_NOISE: (),
    KIND_TILT: (),
    KIND_WIND: (),
}


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
