# Nova Fitness SDS011 particulate sensor, sans-IO: frame parser and command
# frames. UART 9600 8N1; the board's code moves the bytes.
#
# Data frame, 10 bytes (laser dust sensor control protocol):
#   0xAA 0xC0 PM25_lo PM25_hi PM10_lo PM10_hi ID1 ID2 CHK 0xAB
#   values are little-endian tenths of ug/m3; CHK = low byte of the sum of
#   bytes 2..7 (the six data bytes).
#
# Command frame, 19 bytes:
#   0xAA 0xB4 CMD D1 .. D12 ID1 ID2 CHK 0xAB
#   CHK = low byte of the sum of bytes 2..16; ID 0xFFFF addresses every sensor.
# The sensor answers commands with 0xAA 0xC5 ... frames; the parser skips
# them like any other non-data bytes.
#
# Like the PMS5003 parser, a byte-fed state machine with no allocation per
# byte that rescans the bytes it holds after a failure, so a real frame that
# starts inside garbage is still found.

from firmware.frame_parser import HeaderFrameParser

FRAME_LEN = 10
_HEADER = b"\xaa\xc0"  # the data frame's first two bytes

try:
    from micropython import const  # type: ignore  # the stubs type it position-only, the CPython stand-in not
except ImportError:  # CPython

    def const(value):
        return value


_CMD_REPORTING_MODE = const(2)  # D1 = 1 (set), D2 = 0 active reporting / 1 query mode
_CMD_QUERY = const(4)  # ask for one data frame
_CMD_SLEEP_WORK = const(6)  # D1 = 1 (set), D2 = 0 sleep / 1 work
_BROADCAST_ID = const(0xFFFF)


def command(cmd, d1=0, d2=0, device_id=_BROADCAST_ID):
    frame = bytearray(19)
    frame[0] = 0xAA
    frame[1] = 0xB4
    frame[2] = cmd
    frame[3] = d1
    frame[4] = d2
    frame[15] = (device_id >> 8) & 0xFF
    frame[16] = device_id & 0xFF
    total = 0
    for i in range(2, 17):
        total += frame[i]
    frame[17] = total & 0xFF
    frame[18] = 0xAB
    return bytes(frame)


def query_command(device_id=_BROADCAST_ID):
    return command(_CMD_QUERY, 0, 0, device_id)


def sleep_command(device_id=_BROADCAST_ID):
    return command(_CMD_SLEEP_WORK, 1, 0, device_id)


def work_command(device_id=_BROADCAST_ID):
    return command(_CMD_SLEEP_WORK, 1, 1, device_id)


def query_mode_command(device_id=_BROADCAST_ID):
    return command(_CMD_REPORTING_MODE, 1, 1, device_id)


def active_mode_command(device_id=_BROADCAST_ID):
    return command(_CMD_REPORTING_MODE, 1, 0, device_id)


# Built once: asking for a reading allocates nothing.
QUERY = query_command()
SLEEP = sleep_command()
WORK = work_command()


class Sds011Parser(HeaderFrameParser):
    """Feed it bytes; it keeps the values of the newest valid frame.

    Invariant: bytes fed = FRAME_LEN * frames + skipped + pending.
    """

    def __init__(self):
        HeaderFrameParser.__init__(self, FRAME_LEN, _HEADER)
        self.pm25_x10 = 0  # tenths of ug/m3, as on the wire
        self.pm10_x10 = 0
        self.device_id = 0  # ID1 * 256 + ID2, the order command() takes it

    @property
    def pm25(self):
        return self.pm25_x10 / 10

    @property
    def pm10(self):
        return self.pm10_x10 / 10

    def feed(self, b):
        """One byte in; True when it completed a valid frame."""
        buf = self.buf
        n = self.pending
        buf[n] = b
        n += 1
        if n == 1:
            self.pending = 1 if b == 0xAA else self._resync(1)
            return False
        if n == 2:
            self.pending = 2 if b == 0xC0 else self._resync(2)
            return False
        if n < FRAME_LEN:
            self.pending = n
            return False
        if b != 0xAB:
            # Not a frame (a lost byte, or a C5 reply that happens to fit).
            self.pending = self._resync(n)
            return False
        total = 0
        for i in range(2, 8):
            total += buf[i]
        if total & 0xFF == buf[8]:
            self.pm25_x10 = buf[2] | (buf[3] << 8)
            self.pm10_x10 = buf[4] | (buf[5] << 8)
            self.device_id = (buf[6] << 8) | buf[7]
            return self._accept()
        return self._reject(n)


def make_sensor(settings, io):
    """The dust node's driver with an SDS011 (node.json names this module): see firmware/dust_sensor.py."""
    from firmware import dust_sensor

    chosen = dict(settings)
    if chosen.get("pm") is None:
        chosen["pm"] = "sds011"
    return dust_sensor.make_sensor(chosen, io)
