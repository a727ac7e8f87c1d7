# Modbus RTU over RS-485: frame boundaries from bus silence, and a reply sent
# with the transceiver's driver enable (DE/RE) handled from Python.
#
# Timing rules (Modbus over Serial Line v1.02, 2.5.1.1):
#   - a character is 11 bits (start, 8 data, parity or second stop, stop);
#   - a frame ends after t3.5 of silence: 3.5 character times up to 19200
#     baud, a fixed 1.750 ms above (where 3.5 characters would be shorter
#     than what a UART interrupt scheme can resolve).
#
# FrameAssembler is sans-IO: it is fed bytes with their arrival tick (in
# microseconds) and says when a frame is complete. Rs485Port is the thin
# loop around a UART and the DE pin. Both preallocate their buffers so that
# the steady-state request path allocates nothing.
#
# The ESP32's UART driver hands received bytes to MicroPython in bursts (on
# a FIFO threshold or an idle timeout of several character times), so the
# tick a byte is seen is later than its arrival on the wire. Two frames with a
# short gap between them can therefore reach us as one burst: typically
# another slave's reply followed by the master's request to us. A request
# always ends its burst (the master waits for our answer), so a burst that
# fails its CRC is searched for a valid request at its tail
# (find_tail_request) before it is given up.

from firmware import clock
from firmware.modbus_rtu import COUNT_MASK, MAX_FRAME, crc_ok

try:
    from micropython import const  # type: ignore  # the stubs type it position-only, the CPython stand-in not
except ImportError:  # CPython

    def const(value):
        return value


_BITS_PER_CHAR = const(11)
BAUD_RATES = (9600, 19200, 38400, 57600, 115200)  # holding register baud_code -> baud


def char_us(baud):
    """One character time in microseconds, rounded up."""
    return (_BITS_PER_CHAR * 1000000 + baud - 1) // baud


def t35_us(baud):
    """Inter-frame silence in microseconds."""
    if baud <= 19200:
        return (35 * _BITS_PER_CHAR * 100000 + baud - 1) // baud
    return 1750


def t15_us(baud):
    """Longest silence allowed inside a frame, in microseconds."""
    if baud <= 19200:
        return (15 * _BITS_PER_CHAR * 100000 + baud - 1) // baud
    return 750


class FrameAssembler:
    """Splits a byte stream into frames at silences of at least gap_us.

    feed() takes bytes with the tick they arrived; poll() returns the length
    of a complete frame, which is then in self.frame[0:length], until
    release() is called. Two buffers are swapped rather than copied, so a
    frame that completes (because the next one starts) while the previous one
    is still being served is kept; a third one in that time would overwrite it
    and is counted in `dropped`.
    """

    def __init__(self, gap_us, size=MAX_FRAME, ticks_diff=None):
        self.gap_us = gap_us
        self.size = size
        self.ticks_diff = ticks_diff if ticks_diff is not None else clock.ticks_diff
        self._cur = bytearray(size)
        self._n = 0
        self._last = 0
        self._overflow = False
        self.frame = bytearray(size)
        self.ready = 0
        # Counters.
        self.frames = 0
        self.overruns = 0  # frames longer than the buffer, discarded
        self.dropped = 0  # complete frames overwritten before they were served

    def pending(self):
        """Bytes of the frame still being received."""
        return self._n

    def reset(self):
        """Forget the partial frame (not a completed one)."""
        self._n = 0
        self._overflow = False

    def _complete(self):
        if self._overflow:
            self.overruns += 1
        else:
            if self.ready:
                self.dropped += 1
            cur = self._cur
            self._cur = self.frame
            self.frame = cur
            self.ready = self._n
            self.frames = (self.frames + 1) & COUNT_MASK
        self._n = 0
        self._overflow = False

    def feed(self, data, count, now_us):
        """count bytes of data arrived at tick now_us."""
        if count <= 0:
            return
        if self._n and self.ticks_diff(now_us, self._last) >= self.gap_us:
            self._complete()
        cur = self._cur
        n = self._n
        size = self.size
        for i in range(count):
            if n < size:
                cur[n] = data[i]
                n += 1
            else:
                self._overflow = True
        self._n = n
        self._last = now_us

    def feed_byte(self, byte, now_us):
        if self._n and self.ticks_diff(now_us, self._last) >= self.gap_us:
            self._complete()
        if self._n < self.size:
            self._cur[self._n] = byte
            self._n += 1
        else:
            self._overflow = True
        self._last = now_us

    def poll(self, now_us):
        """Length of the complete frame in self.frame, or 0 if none is complete yet."""
        if not self.ready and self._n and self.ticks_diff(now_us, self._last) >= self.gap_us:
            self._complete()
        return self.ready

    def release(self):
        """The frame in self.frame has been served."""
        self.ready = 0


def _request_length(frame, start, end):
    """Length a request starting at frame[start] would have, or 0 if it cannot be one."""
    if end - start < 8:
        return 0
    function = frame[start + 1]
    if 1 <= function <= 6:
        return 8
    if function == 15 or function == 16:
        if end - start < 9:
            return 0
        return 9 + frame[start + 6]
    return 0


def find_tail_request(frame, length, unit_id):
    """Offset of a valid request to unit_id (or broadcast) ending at frame[length-1], or -1.

    Only offsets > 0 are searched: the whole frame is the caller's first try.
    Candidates are few (fixed-length requests end 8 bytes from the end; a
    write-multiple request's byte count says where it starts), so this costs
    a handful of CRCs, not a scan.
    """
    # Fixed-length requests (function codes 1 to 6).
    start = length - 8
    if start > 0:
        unit = frame[start]
        if (unit == unit_id or unit == 0) and _request_length(frame, start, length) == 8:
            if _crc_ok_at(frame, start, length):
                return start
    # Write-multiple requests: 9 + byte count bytes long.
    for start in range(1, length - 8):
        unit = frame[start]
        if unit != unit_id and unit != 0:
            continue
        if frame[start + 1] != 16 and frame[start + 1] != 15:
            continue
        if start + _request_length(frame, start, length) != length:
            continue
        if _crc_ok_at(frame, start, length):
            return start
    return -1


def _crc_ok_at(frame, start, end):
    # Only on the error path: the memoryview it allocates does not matter.
    return crc_ok(memoryview(frame)[start:end], end - start)


class Rs485Port:
    """A half-duplex RS-485 port: a UART plus the transceiver's DE/RE pin.

    uart: machine.UART or fakes.FakeUART (any, readinto, write, flush).
    de: the driver-enable pin (DE tied to /RE): high = transmit, low = listen.
    clock: hal.Clock or fakes.FakeClock (ticks_us, ticks_diff, sleep_us).
    """

    def __init__(self, uart, de, baud, clock, size=MAX_FRAME, chunk=64):
        self.uart = uart
        self.de = de
        self.baud = baud
        self.clock = clock
        self.char_us = char_us(baud)
        self.gap_us = t35_us(baud)
        self.assembler = FrameAssembler(self.gap_us, size, clock.ticks_diff)
        self._chunk = bytearray(chunk)
        # memoryview slices are objects: make each length once, on first use,
        # so steady-state reads and replies allocate nothing. Dicts, not lists
        # indexed by length: a node uses a handful of lengths, and a list for
        # every possible one would hold a kilobyte of heap for nothing.
        self._chunk_views = {}
        self._tx_buffer = bytearray(0)
        self._tx_views = {}
        self.replies = 0
        self.resyncs = 0
        self.echoes = 0
        # The last reply, to recognise it if the transceiver hears itself.
        self._sent_len = 0
        self._sent_us = 0
        de.value(0)  # listen

    def _chunk_view(self, n):
        v = self._chunk_views.get(n)
        if v is None:
            v = memoryview(self._chunk)[:n]
            self._chunk_views[n] = v
        return v

    def _tx_view(self, buf, n):
        if buf is not self._tx_buffer:
            self._tx_buffer = buf
            self._tx_views = {}
        v = self._tx_views.get(n)
        if v is None:
            v = memoryview(buf)[:n]
            self._tx_views[n] = v
        return v

    def receive(self):
        """Move what the UART holds into the assembler; length of a complete frame or 0."""
        uart = self.uart
        now = self.clock.ticks_us()
        n = uart.any()
        while n:
            if n > len(self._chunk):
                n = len(self._chunk)
            got = uart.readinto(self._chunk_view(n))
            if not got:
                break
            self.assembler.feed(self._chunk, got, now)
            n = uart.any()
        return self.assembler.poll(self.clock.ticks_us())

    def send(self, buf, n):
        """Drive the bus, send buf[0:n], release the bus once the last bit is out.

        uart.flush() returns once the last byte has left the shift register
        (MicroPython >= 1.20 on the ESP32). DE stays high one character time
        more: releasing it right at flush() has been seen to cut off the end
        of the reply (micropython-modbus issues 72/75/79), which the master
        then drops for a bad CRC.
        """
        de = self.de
        de.value(1)
        self.uart.write(self._tx_view(buf, n))
        self.uart.flush()
        self.clock.sleep_us(self.char_us)
        de.value(0)
        self.replies += 1
        self._sent_len = n
        self._sent_us = self.clock.ticks_us()
        # Anything heard while we talked is our own echo or a collision.
        self.assembler.reset()

    def _is_echo(self, frame, n, now_us):
        """True if frame is our last reply coming back (a transceiver whose /RE is not tied to DE).

        The UART driver may hand the echo over only after send() returned. A
        master repeating the same request (FC 5/6 replies equal the request)
        does so after its response timeout, far outside this window.
        """
        sent = self._sent_len
        if sent == 0 or n != sent:
            return False
        window = (sent + 16) * self.char_us + self.gap_us
        if self.clock.ticks_diff(now_us, self._sent_us) > window:
            return False
        tx = self._tx_buffer
        for i in range(n):
            if frame[i] != tx[i]:
                return False
        return True

    def serve(self, node, now_ms):
        """Answer at most one complete request; True if a frame was taken off the bus."""
        n = self.receive()
        if not n:
            return False
        asm = self.assembler
        frame = asm.frame
        if self._is_echo(frame, n, self.clock.ticks_us()):
            self.echoes += 1
            self._sent_len = 0
            asm.release()
            return True
        if not crc_ok(frame, n):
            start = find_tail_request(frame, n, node.unit_id)
            if start > 0:
                self.resyncs += 1
                m = n - start
                for i in range(m):
                    frame[i] = frame[start + i]
                n = m
        length = node.handle(frame, n, now_ms)
        asm.release()
        if length:
            self.send(node.slave.tx, length)
        return True
