# Wind: cup anemometer pulses -> speed, vane ADC -> direction sector, and
# the 3-second gust (WMO-No. 306: gust = maximum of 3 s running means).
#
# The board wires PulseCounter.irq to the anemometer pin, e.g.
#     pin.irq(handler=counter.irq, trigger=Pin.IRQ_FALLING, hard=True)
# The handler only increments an int, so it allocates nothing and is safe as
# a hard IRQ. A reed-switch anemometer bounces: debounce it in hardware (an
# RC filter), a handler that checks time would be slower and still miss
# fast bounces.

from array import array

# The count wraps inside MicroPython's small-int range (31-bit signed on
# the ESP32): past it, an increment would allocate a long int inside the IRQ.
COUNT_MASK = 0x3FFFFFFF
SECTORS = 16


class PulseCounter:
    def __init__(self):
        self.count = 0
        self._taken = 0

    def irq(self, pin):
        self.count = (self.count + 1) & COUNT_MASK

    def take(self):
        """Pulses since the previous take().

        The count is never reset from outside the IRQ, so a pulse arriving
        while this runs is counted in the next take(), not lost.
        """
        now = self.count
        pulses = (now - self._taken) & COUNT_MASK
        self._taken = now
        return pulses


def frequency(pulses, elapsed_ms):
    """Pulse frequency in Hz over elapsed_ms milliseconds."""
    if elapsed_ms <= 0:
        return 0.0
    return pulses * 1000.0 / elapsed_ms


def speed(freq, factor, offset):
    """Wind speed in m/s = factor * frequency + offset.

    No pulses is 0 m/s, not the offset: the offset of a calibration line
    describes a turning cup (it is about the starting threshold), and a
    still cup must not report wind.
    """
    if freq <= 0:
        return 0.0
    return factor * freq + offset


def vane_degrees(raw, adc_max, offset_deg=0.0):
    """A potentiometer vane's reading (0..adc_max = 0..360 deg) plus the mounting offset, in [0, 360)."""
    deg = raw * 360.0 / adc_max + offset_deg
    deg = deg % 360.0
    # Floating-point modulo of a tiny negative number can give exactly 360.0.
    return deg if deg < 360.0 else 0.0


def sector(deg, sectors=SECTORS):
    """Index of the sector centred on deg: 0 is north (sector 0 spans +-half a sector around 0)."""
    width = 360.0 / sectors
    return int((deg % 360.0) / width + 0.5) % sectors


def sector_degrees(index, sectors=SECTORS):
    return index * 360.0 / sectors


def vane_direction(raw, adc_max, offset_deg=0.0, sectors=SECTORS):
    """Vane reading -> direction in degrees from north, snapped to the sector centres."""
    return sector_degrees(sector(vane_degrees(raw, adc_max, offset_deg), sectors), sectors)


class GustTracker:
    """Running mean over span_ms of speeds sampled every sample_ms, and its maximum.

    push() one speed per sample period. The ring is preallocated; the sum is
    recomputed over the (short) window on every push rather than kept as a
    running total, so single-precision rounding cannot accumulate.
    """

    def __init__(self, sample_ms=1000, span_ms=3000):
        window = (span_ms + sample_ms // 2) // sample_ms
        if window < 1:
            window = 1
        self.window = window
        self.ring = array("f", [0.0] * window)
        self.pos = 0
        self.filled = 0
        self.mean = 0.0  # newest running mean (over the samples so far until the ring is full)
        self._peak = 0.0
        self._have_peak = False

    def push(self, value):
        ring = self.ring
        ring[self.pos] = value
        self.pos += 1
        if self.pos == self.window:
            self.pos = 0
        if self.filled < self.window:
            self.filled += 1
        total = 0.0
        for i in range(self.filled):
            total += ring[i]
        self.mean = total / self.filled
        # Only whole windows count as gusts: one 1 s sample is not a 3 s mean.
        if self.filled == self.window and (not self._have_peak or self.mean > self._peak):
            self._peak = self.mean
            self._have_peak = True

    def take(self):
        """Highest full-window running mean since the previous take(), or None if there was none."""
        if not self._have_peak:
            return None
        self._have_peak = False
        return self._peak


def make_sensor(settings, io):
    """The wind node's driver (node.json names this module): see firmware/wind_sensor.py."""
    from firmware import wind_sensor

    return wind_sensor.make_sensor(settings, io)
