# What every sensor adapter shares: the rules for status bits, stuck-value
# detection and the per-sensor error counters.
#
# An adapter (firmware/dust_sensor.py, noise_sensor.py, tilt_sensor.py,
# wind_sensor.py) is what make_sensor(settings, io) returns to main.py: an
# object with read(bank, now_ms) -> status bits (regmap.STATUS_*) that puts
# the measurements in the bank, and optionally poll(bank, now_ms) for work
# between samples.
#
# Status rules, the same for every kind:
#   - STATUS_OK: the newest sample is valid. It is never set together with
#     STATUS_ABSENT, STATUS_CHECKSUM, STATUS_STUCK or STATUS_WARMUP.
#   - STATUS_RANGE: a value lies outside what the sensor can measure. The
#     value is still published with STATUS_OK (the gateway flags it "over
#     range", HJ 212 flag T) because a reading at the end of the scale is
#     information, e.g. a dust level above the sensor's range.
#   - STATUS_STUCK: the raw reading has not changed for stuck_samples
#     consecutive samples (a frozen sensor or ADC rail); the value is not
#     trusted, so STATUS_OK is cleared.
#   - STATUS_HUMID: a flag on a valid dust sample (see dust_sensor.py).

from firmware import regmap

# Bits that make a sample invalid.
INVALID = regmap.STATUS_ABSENT | regmap.STATUS_CHECKSUM | regmap.STATUS_STUCK | regmap.STATUS_WARMUP

# Samples with the same raw reading before STATUS_STUCK (a node.json setting
# of each adapter, "stuck_samples"; 0 switches the check off).
STUCK_SAMPLES = 60


def finish(bits):
    """Apply the rules above to a set of bits an adapter collected."""
    if bits & INVALID:
        bits &= ~regmap.STATUS_OK
    return bits


def fold(h, value):
    """Fold one raw integer into a running fingerprint (small-int range on the ESP32)."""
    return ((h * 31) ^ (value & 0xFFFFFF)) & 0x3FFFFFF


class StuckDetector:
    """Says when the same fingerprint of the raw reading repeats limit times in a row."""

    def __init__(self, limit=STUCK_SAMPLES):
        self.limit = limit
        self.last = -1
        self.run = 0

    def update(self, fingerprint):
        """One valid reading's fingerprint; True when the reading counts as stuck."""
        if fingerprint == self.last:
            self.run += 1
        else:
            self.last = fingerprint
            self.run = 1
        return self.limit > 0 and self.run >= self.limit

    def reset(self):
        self.last = -1
        self.run = 0


class Counters:
    """Per-adapter counts of samples by outcome (plain ints, for the console and the tests)."""

    def __init__(self):
        self.samples = 0
        self.ok = 0
        self.absent = 0
        self.checksum = 0
        self.stuck = 0
        self.out_of_range = 0
        self.warmup = 0

    def count(self, bits):
        self.samples += 1
        if bits & regmap.STATUS_OK:
            self.ok += 1
        if bits & regmap.STATUS_ABSENT:
            self.absent += 1
        if bits & regmap.STATUS_CHECKSUM:
            self.checksum += 1
        if bits & regmap.STATUS_STUCK:
            self.stuck += 1
        if bits & regmap.STATUS_RANGE:
            self.out_of_range += 1
        if bits & regmap.STATUS_WARMUP:
            self.warmup += 1
        return bits

    def errors(self):
        return self.samples - self.ok


def setting(settings, name, default):
    """A node.json sensor setting, falling back to the default when missing or null."""
    value = settings.get(name)
    return default if value is None else value


def drain(uart, buf, parser):
    """Feed what the UART holds to parser.feed_buffer(); the number of frames completed."""
    done = 0
    n = uart.any()
    while n:
        got = uart.readinto(buf)
        if not got:
            break
        done += parser.feed_buffer(buf, got)
        n = uart.any()
    return done
