# The node's recent past: a ring of the last `capacity` samples, so a gateway
# that missed polls (bus fault, restart) can fetch what it missed by sample
# sequence number. 600 samples are 10 minutes at one per second.
#
# A sample is its sequence number, a timestamp in ms, a u16 status (the
# node's sensor_status bits) and a fixed number of u16 register words (the
# measurement registers, raw). Storage is preallocated array('I') /
# array('H'); push() allocates nothing, so it can run on every sample
# without feeding the garbage collector.
#
# Sequence numbers must increase from push to push (gaps are fine: a failed
# sample may not be pushed) and, like timestamps, fit in 32 bits unsigned.
# Memory: capacity * (10 + 2 * width) bytes, e.g. 600 * (10 + 2 * 9) = 16.8 kB
# for the tilt node, the widest kind.


from array import array


class History:
    def __init__(self, capacity=600, width=8):
        self.capacity = capacity
        self.width = width
        self.seqs = array("I", [0] * capacity)
        self.stamps = array("I", [0] * capacity)
        self.statuses = array("H", [0] * capacity)
        self.words = array("H", [0] * (capacity * width))
        self.head = 0  # slot the next push writes
        self.count = 0
        self._newest = 0

    def __len__(self):
        return self.count

    def push(self, seq, stamp_ms, words, offset=0, status=0):
        """Store words[offset:offset+width]; False (and nothing stored) if seq does not increase."""
        if self.count and seq <= self._newest:
            return False
        slot = self.head
        self.seqs[slot] = seq
        self.stamps[slot] = stamp_ms
        self.statuses[slot] = status
        store = self.words
        base = slot * self.width
        for k in range(self.width):
            store[base + k] = words[offset + k]
        slot += 1
        if slot == self.capacity:
            slot = 0
        self.head = slot
        if self.count < self.capacity:
            self.count += 1
        self._newest = seq
        return True

    def _slot(self, position):
        # Physical slot of the position-th stored sample (0 = oldest).
        slot = self.head - self.count + position
        if slot < 0:
            slot += self.capacity
        return slot

    def oldest(self):
        """Sequence number of the oldest stored sample, or None when empty."""
        if not self.count:
            return None
        return self.seqs[self._slot(0)]

    def newest(self):
        if not self.count:
            return None
        return self._newest

    def find(self, seq):
        """Slot holding seq, or -1 when it was never stored or has been overwritten."""
        low = 0
        high = self.count - 1
        seqs = self.seqs
        # Sequence numbers increase from oldest to newest: binary search.
        while low <= high:
            mid = (low + high) >> 1
            slot = self._slot(mid)
            here = seqs[slot]
            if here == seq:
                return slot
            if here < seq:
                low = mid + 1
            else:
                high = mid - 1
        return -1

    def slot_of(self, seq):
        """find(), with a constant-time path for the usual case of consecutive sequence numbers."""
        count = self.count
        if not count:
            return -1
        first = self._slot(0)
        position = seq - self.seqs[first]
        if 0 <= position < count:
            slot = first + position
            if slot >= self.capacity:
                slot -= self.capacity
            if self.seqs[slot] == seq:
                return slot
        return self.find(seq)

    def get(self, seq):
        """The words of sample seq (a new array), or None."""
        slot = self.find(seq)
        if slot < 0:
            return None
        base = slot * self.width
        return self.words[base : base + self.width]

    def get_into(self, seq, out, offset=0):
        """Copy the words of sample seq into out[offset:]; False if it is gone. Allocates nothing."""
        slot = self.find(seq)
        if slot < 0:
            return False
        store = self.words
        base = slot * self.width
        for k in range(self.width):
            out[offset + k] = store[base + k]
        return True

    def stamp(self, seq):
        """Timestamp (ms) of sample seq, or None."""
        slot = self.find(seq)
        if slot < 0:
            return None
        return self.stamps[slot]

    def status(self, seq):
        """Status bits of sample seq, or None."""
        slot = self.find(seq)
        if slot < 0:
            return None
        return self.statuses[slot]
