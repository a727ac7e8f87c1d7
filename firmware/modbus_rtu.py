# Modbus RTU slave, sans-IO: a whole request frame in, a reply frame (or
# silence) out. Frame boundaries (the t3.5 silence) are the caller's job.
#
# Runs under MicroPython and CPython. handle() allocates nothing: the reply is
# built in the preallocated self.tx and its length returned (0 = stay silent),
# so the node's request path is allocation-free.

try:
    from micropython import const  # type: ignore  # the stubs type it position-only, the CPython stand-in not
except ImportError:  # CPython

    def const(value):
        return value


ILLEGAL_FUNCTION = 1
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3
_DEVICE_FAILURE = const(4)
# Counters wrap inside MicroPython's small-int range (a node sees every frame
# on its bus for months): past it each increment would allocate a long int.
COUNT_MASK = const(0x3FFFFFFF)

BROADCAST = 0
MAX_FRAME = 256


def _make_crc_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0xA001
            else:
                crc >>= 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _make_crc_table()


def crc16(buf, length):
    """CRC-16/MODBUS of buf[0:length] (init 0xFFFF, reflected poly 0xA001).

    On the wire the CRC is sent low byte first.
    """
    crc = 0xFFFF
    table = _CRC_TABLE
    for i in range(length):
        crc = (crc >> 8) ^ table[(crc ^ buf[i]) & 0xFF]
    return crc


def crc_ok(frame, length):
    if length < 4:
        return False
    crc = crc16(frame, length - 2)
    return frame[length - 2] == (crc & 0xFF) and frame[length - 1] == (crc >> 8)


class RtuSlave:
    """Answers requests addressed to unit_id from the given RegisterBank."""

    def __init__(self, unit_id, bank):
        self.unit_id = unit_id
        self.bank = bank
        self.tx = bytearray(MAX_FRAME)
        # Counters (plain ints; they are mirrored into diagnostic registers).
        self.frames_ok = 0
        self.crc_errors = 0
        self.short_frames = 0
        self.exceptions = 0
        self.other_unit = 0

    def handle(self, frame, length=-1):
        """Process one request; return the reply length in self.tx (0: no reply)."""
        if length < 0:
            length = len(frame)
        if length < 4:
            self.short_frames += 1
            return 0
        unit = frame[0]
        if unit != self.unit_id and unit != BROADCAST:
            # Not ours: stay silent, and do not count a CRC error on traffic
            # meant for another node (we cannot know its framing).
            self.other_unit = (self.other_unit + 1) & COUNT_MASK
            return 0
        if not crc_ok(frame, length):
            self.crc_errors = (self.crc_errors + 1) & COUNT_MASK
            return 0
        n = self._dispatch(frame, length - 2)
        if unit == BROADCAST:
            # Writes are carried out, but nobody answers a broadcast.
            return 0
        self.frames_ok = (self.frames_ok + 1) & COUNT_MASK
        return n

    # -- replies ---------------------------------------------------------------
    def _finish(self, n):
        crc = crc16(self.tx, n)
        self.tx[n] = crc & 0xFF
        self.tx[n + 1] = crc >> 8
        return n + 2

    def _exception(self, function, code):
        self.exceptions += 1
        tx = self.tx
        tx[0] = self.unit_id
        tx[1] = (function | 0x80) & 0xFF
        tx[2] = code
        return self._finish(3)

    def _dispatch(self, f, n):
        function = f[1]
        if function == 3 or function == 4:
            if n != 6:
                return self._exception(function, ILLEGAL_VALUE)
            return self._read_registers(f, function)
        if function == 1:
            if n != 6:
                return self._exception(function, ILLEGAL_VALUE)
            return self._read_coils(f)
        if function == 5:
            if n != 6:
                return self._exception(function, ILLEGAL_VALUE)
            return self._write_coil(f)
        if function == 6:
            if n != 6:
                return self._exception(function, ILLEGAL_VALUE)
            return self._write_register(f)
        if function == 16:
            return self._write_registers(f, n)
        return self._exception(function, ILLEGAL_FUNCTION)

    def _read_registers(self, f, function):
        address = (f[2] << 8) | f[3]
        count = (f[4] << 8) | f[5]
        if count < 1 or count > 125:
            return self._exception(function, ILLEGAL_VALUE)
        bank = self.bank
        if function == 3:
            table = bank.holdings
        elif address >= bank.window_base:
            # The history window: its own table, filled just before it is read.
            table = bank.window
            address -= bank.window_base
            if address + count > len(table):
                return self._exception(function, ILLEGAL_ADDRESS)
            hook = bank.on_window_read
            if hook is not None:
                hook(address, count)
        else:
            table = bank.inputs
        if address + count > len(table):
            return self._exception(function, ILLEGAL_ADDRESS)
        tx = self.tx
        tx[0] = self.unit_id
        tx[1] = function
        tx[2] = count * 2
        p = 3
        for i in range(address, address + count):
            v = table[i]
            tx[p] = v >> 8
            tx[p + 1] = v & 0xFF
            p += 2
        return self._finish(p)

    def _read_coils(self, f):
        address = (f[2] << 8) | f[3]
        count = (f[4] << 8) | f[5]
        if count < 1 or count > 2000:
            return self._exception(1, ILLEGAL_VALUE)
        coils = self.bank.coils
        if address + count > len(coils):
            return self._exception(1, ILLEGAL_ADDRESS)
        tx = self.tx
        nbytes = (count + 7) >> 3
        tx[0] = self.unit_id
        tx[1] = 1
        tx[2] = nbytes
        for i in range(nbytes):
            tx[3 + i] = 0
        for i in range(count):
            if coils[address + i]:
                tx[3 + (i >> 3)] |= 1 << (i & 7)
        return self._finish(3 + nbytes)

    def _echo(self, f):
        # Replies to FC 05, 06 and 16 echo the first six bytes of the request.
        tx = self.tx
        tx[0] = self.unit_id
        for i in range(1, 6):
            tx[i] = f[i]
        return self._finish(6)

    def _write_coil(self, f):
        address = (f[2] << 8) | f[3]
        value = (f[4] << 8) | f[5]
        if value != 0xFF00 and value != 0x0000:
            return self._exception(5, ILLEGAL_VALUE)
        if address >= len(self.bank.coils):
            return self._exception(5, ILLEGAL_ADDRESS)
        self.bank.write_coil(address, value == 0xFF00)
        return self._echo(f)

    def _write_register(self, f):
        address = (f[2] << 8) | f[3]
        code = self.bank.check_holding_block(address, 1, f, 4)
        if code:
            return self._exception(6, code)
        self.bank.write_holding(address, (f[4] << 8) | f[5])
        return self._echo(f)

    def _write_registers(self, f, n):
        if n < 7:
            return self._exception(16, ILLEGAL_VALUE)
        address = (f[2] << 8) | f[3]
        count = (f[4] << 8) | f[5]
        if count < 1 or count > 123 or f[6] != 2 * count or n != 7 + 2 * count:
            return self._exception(16, ILLEGAL_VALUE)
        if address + count > len(self.bank.holdings):
            return self._exception(16, ILLEGAL_ADDRESS)
        code = self.bank.check_holding_block(address, count, f, 7)
        if code:
            return self._exception(16, code)
        for i in range(count):
            self.bank.write_holding(address + i, (f[7 + 2 * i] << 8) | f[8 + 2 * i])
        return self._echo(f)
