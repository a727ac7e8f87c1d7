# Plantower PMS5003 particulate sensor, sans-IO: frame parser, command
# frames, warm-up tracking. The board's code moves the bytes (UART 9600 8N1);
# nothing here touches a UART or sleeps.
#
# Data frame, 32 bytes (datasheet):
#   0x42 0x4D                 start characters
#   0x00 0x1C                 frame length, big-endian: 28 = 13 words + checksum
#   13 big-endian u16 words   1-3 PM1.0/PM2.5/PM10 "CF=1" (factory calibration aerosol),
#                             4-6 PM1.0/PM2.5/PM10 "atmospheric environment" (the ones to report),
#                             7-12 particle counts per 0.1 l above 0.3/0.5/1/2.5/5/10 um,
#                             13 reserved
#   u16 checksum, big-endian  sum of the 30 bytes before it
#
# Command frame, 7 bytes: 0x42 0x4D CMD DATAH DATAL, then the u16 sum of those
# five bytes (big-endian). In passive mode the sensor sends a data frame only
# when asked with _CMD_READ. Sensors are reported to answer mode and sleep
# commands with a short frame of length 4 (42 4D 00 04 CMD DATA SUM); the
# parser skips it like any other non-data bytes.
#
# The parser is a byte-fed state machine that allocates nothing per byte:
# after a bad start, a bad length or a failed checksum it resynchronises by
# rescanning the bytes it already holds, so a real frame that begins inside
# garbage (or inside a corrupted frame) is still found.

from array import array

from firmware import regmap
from firmware.clock import ticks_diff
from firmware.frame_parser import HeaderFrameParser

try:
    from micropython import const  # type: ignore  # the stubs type it position-only, the CPython stand-in not
except ImportError:  # CPython

    def const(value):
        return value


FRAME_LEN = 32
_WORDS = const(13)
_HEADER = b"\x42\x4d\x00\x1c"

# Command codes and their data values.
_CMD_READ = const(0xE2)  # passive mode: send one data frame now
_CMD_MODE = const(0xE1)  # data 0: passive, 1: active
_CMD_POWER = const(0xE4)  # data 0: sleep (fan off), 1: wake

# The datasheet asks for at least 30 s after waking before the readings are
# stable (the fan has to flush the chamber). A setting, this is its default.
WARMUP_MS = 30000


def command(cmd, data):
    """The 7-byte command frame for cmd with the 16-bit data value."""
    frame = bytearray(7)
    frame[0] = 0x42
    frame[1] = 0x4D
    frame[2] = cmd
    frame[3] = (data >> 8) & 0xFF
    frame[4] = data & 0xFF
    total = 0
    for i in range(5):
        total += frame[i]
    frame[5] = (total >> 8) & 0xFF
    frame[6] = total & 0xFF
    return bytes(frame)


# Built once at import: sending a command then allocates nothing.
PASSIVE_MODE = command(_CMD_MODE, 0)
ACTIVE_MODE = command(_CMD_MODE, 1)
READ = command(_CMD_READ, 0)
SLEEP = command(_CMD_POWER, 0)
WAKE = command(_CMD_POWER, 1)


class Pms5003Parser(HeaderFrameParser):
    """Feed it bytes; it keeps the words of the newest valid frame.

    Invariant (checked by the property tests):
    bytes fed = FRAME_LEN * frames + skipped + pending.
    """

    def __init__(self):
        HeaderFrameParser.__init__(self, FRAME_LEN, _HEADER)
        self.words = array("H", [0] * _WORDS)

    # Values of the newest frame, in ug/m3.
    @property
    def pm1(self):
        return self.words[3]

    @property
    def pm25(self):
        return self.words[4]

    @property
    def pm10(self):
        return self.words[5]

    def feed(self, b):
        """One byte in; True when it completed a valid frame."""
        buf = self.buf
        n = self.pending
        buf[n] = b
        n += 1
        if n <= 4:
            if b != _HEADER[n - 1]:
                n = self._resync(n)
            self.pending = n
            return False
        if n < FRAME_LEN:
            self.pending = n
            return False
        total = 0
        for i in range(FRAME_LEN - 2):
            total += buf[i]
        if total == (buf[FRAME_LEN - 2] << 8) | buf[FRAME_LEN - 1]:
            words = self.words
            for i in range(_WORDS):
                words[i] = (buf[4 + 2 * i] << 8) | buf[5 + 2 * i]
            return self._accept()
        return self._reject(n)


class Pms5003:
    """Parser plus the sensor's power state: readings are flagged while warming up.

    The caller writes the command bytes this returns to the UART and feeds
    the received bytes to self.parser.
    """

    def __init__(self, now_ms, warmup_ms=WARMUP_MS):
        self.parser = Pms5003Parser()
        self.warmup_ms = warmup_ms
        # Power-on starts the fan just like a wake command does.
        self.awake = True
        self.woke_ms = now_ms
        self._frames_seen = 0

    def wake(self, now_ms):
        self.awake = True
        self.woke_ms = now_ms
        return WAKE

    def sleep(self):
        self.awake = False
        return SLEEP

    def warming_up(self, now_ms):
        return (not self.awake) or ticks_diff(now_ms, self.woke_ms) < self.warmup_ms

    def status(self, now_ms):
        """regmap status bits for the newest reading; call once per sample.

        STATUS_OK only for a fresh frame (one that arrived since the previous
        call) outside warm-up; a frame during warm-up is STATUS_WARMUP.
        """
        parser = self.parser
        fresh = parser.frames != self._frames_seen
        self._frames_seen = parser.frames
        bits = 0
        if parser.last_failed:
            bits |= regmap.STATUS_CHECKSUM
        if not fresh:
            return bits | regmap.STATUS_ABSENT
        if self.warming_up(now_ms):
            return bits | regmap.STATUS_WARMUP
        return bits | regmap.STATUS_OK


def make_sensor(settings, io):
    """The dust node's driver (node.json names this module): see firmware/dust_sensor.py."""
    from firmware import dust_sensor

    return dust_sensor.make_sensor(settings, io)
