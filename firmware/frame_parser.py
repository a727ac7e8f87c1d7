# What the byte-fed sensor frame parsers (PMS5003, SDS011) share: the frame
# buffer, the counters, and resynchronisation on the frame header after
# garbage or a bad frame. Allocation-free per byte, like the parsers.


def header_prefix_at(buf, start, end, header):
    """True when buf[start:end] agrees with header as far as both go."""
    k = 0
    while k < len(header) and start + k < end:
        if buf[start + k] != header[k]:
            return False
        k += 1
    return True


class HeaderFrameParser:
    """Base of a parser whose frames start with a fixed header.

    A subclass implements feed(b) -> True when b completed a valid frame,
    using _accept() and _reject(n) to finish a complete candidate.
    Invariant: bytes fed = frame length * frames + skipped + pending.
    """

    def __init__(self, frame_len, header):
        self.buf = bytearray(frame_len)
        self.header = header
        self.pending = 0  # bytes of a possible frame held in buf
        self.frames = 0  # valid frames
        self.checksum_errors = 0
        self.skipped = 0  # bytes dropped while looking for a frame
        self.last_failed = False  # the last complete frame failed its checksum

    def feed_buffer(self, data, length):
        """data[0:length] in (e.g. what uart.readinto() gave); frames completed."""
        done = 0
        for i in range(length):
            if self.feed(data[i]):
                done += 1
        return done

    def feed(self, b):
        raise NotImplementedError

    def _accept(self):
        self.frames += 1
        self.last_failed = False
        self.pending = 0
        return True

    def _reject(self, n):
        """A complete candidate of n bytes failed its checksum."""
        self.checksum_errors += 1
        self.last_failed = True
        self.pending = self._resync(n)
        return False

    def _resync(self, n):
        # The candidate in buf[0:n] is dead. Keep the earliest later start
        # that still looks like a header and shift it to the front; the
        # bytes before it are dropped.
        buf = self.buf
        start = 1
        while start < n and not header_prefix_at(buf, start, n, self.header):
            start += 1
        keep = n - start
        for j in range(keep):
            buf[j] = buf[start + j]
        self.skipped += start
        return keep
