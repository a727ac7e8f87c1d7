"""A-weighted sound levels: the filter, 125 ms (Fast) blocks, 1 s LAeq.

Two ways a noise node gets its numbers, both ending in LeqAggregator:

1. A sound-level module that already outputs dB(A) (RS-485 or analogue):
   read it every 125 ms and add_level() each reading; every 8 readings give
   LAeq (by energy), LAmax and LAmin over 1 s. This is the realistic choice
   for an ESP32 running plain MicroPython.
2. A digital (I2S MEMS) microphone: AWeighting filters the samples,
   SoundLevelMeter turns 125 ms blocks into levels and feeds the aggregator.

The filter. The analogue A-weighting of IEC 61672-1 has poles at 20.6 Hz
(double), 107.7 Hz, 737.9 Hz and 12194 Hz (double) and four zeros at 0 Hz.
They are mapped to the z-plane with the bilinear transform when an
AWeighting is built, for its sample rate, as three second-order sections:
(20.6, 20.6) and (107.7, 737.9) high-pass sections whose zeros sit at z = 1,
and a (12194, 12194) low-pass section whose zeros sit at z = -1. The plain
bilinear transform squeezes the 12.2 kHz pair towards fs/2 (at 48 kHz the
response would be 1.2 dB low at 10 kHz), so that section alone is prewarped
to match the analogue response exactly at match_hz (default min(10 kHz,
fs/5)); the low poles are far below fs/2 and need no prewarping. The whole
cascade is scaled to 0 dB at 1 kHz. Differences from the analogue curve at
48 kHz: within 0.05 dB up to 2 kHz, within 0.3 dB up to 10 kHz, -1.2 dB
at 12.5 kHz (the tests measure 100 Hz, 1 kHz and 10 kHz). At 16 kHz the
band ends at 8 kHz and the response is 0.2 dB low at 4 kHz. Sections run in
direct form I: the differences (the zeros at z = 1) come first, so a MEMS
microphone's DC offset never reaches the recursive part; direct form II
would first amplify it by 1/(1 - r)^2 (about 10^5 for the 20.6 Hz pole at
48 kHz), too much for the ESP32's single-precision floats.

What runs fast enough on an ESP32 (honest part). Numbers below are
reasoning, not measurements on a board; time process() with
time.ticks_us() on the target before relying on any of them.
- Plain MicroPython, this module: each sample costs about 20 float
  multiply-adds in the interpreter, and on the ESP32 every float result is a
  new heap object (single-precision, boxed), so a sample takes tens of
  microseconds and keeps the garbage collector busy. At 48 kHz that is one
  to several seconds of CPU per second of sound: out of reach. Even
  8-16 kHz would take a large share of the CPU that must also serve Modbus.
  Use it for the simulator, for tests, and on the board only for short
  spot measurements.
- viper does not help much here: it makes integer and pointer arithmetic
  native but still handles floats as heap objects, and its 32-bit integers
  have no 64-bit product, which a fixed-point biquad with poles this close
  to z = 1 (0.9973 at 48 kHz) needs for adequate precision. A fixed-point
  viper kernel at a reduced rate (about 16 kHz, losing the band above
  8 kHz) is conceivable but is not provided or tested here.
- C is the realistic route to 48 kHz: a firmware build with ulab runs
  these same sections through ulab.scipy.signal.sosfilt (rows from
  AWeighting.sos(); it returns a new array per call, so feed it whole
  125 ms blocks), or a small native module (user C module or .mpy natmod)
  runs the biquads on the board's single-precision FPU.
- Or let the hardware do it: a sound-level module with dB(A) output
  (option 1 above) makes the ESP32's job trivial.

"Fast" here means the energy mean over consecutive 125 ms blocks (a block
Leq), the usual simplification; IEC 61672's Fast time weighting is an
exponential with a 125 ms time constant, so LAmax from blocks can differ
from a class 1 meter's LAFmax for short impulses.
"""

import math

# Pole frequencies of the analogue A-weighting (IEC 61672-1 annex E).
F1 = 20.598997
F2 = 107.65265
F3 = 737.86223
F4 = 12194.217
_TWO_PI = 2.0 * math.pi
# Level given to an all-zero block instead of log10(0).
_FLOOR_MEAN_SQUARE = 1e-30


def analog_gain_db(f):
    """The analogue A-weighting in dB at f Hz (0 dB at 1 kHz), IEC 61672-1 annex E."""
    f2 = f * f
    num = F4 * F4 * f2 * f2
    den = (f2 + F1 * F1) * math.sqrt((f2 + F2 * F2) * (f2 + F3 * F3)) * (f2 + F4 * F4)
    return 20.0 * math.log10(num / den) + 2.0


def _biquad_gain(b0, b1, b2, a1, a2, w):
    # |H(e^jw)| of (b0 + b1 z^-1 + b2 z^-2) / (1 + a1 z^-1 + a2 z^-2), real arithmetic only.
    c1 = math.cos(w)
    s1 = math.sin(w)
    c2 = math.cos(2.0 * w)
    s2 = math.sin(2.0 * w)
    nr = b0 + b1 * c1 + b2 * c2
    ni = b1 * s1 + b2 * s2
    dr = 1.0 + a1 * c1 + a2 * c2
    di = a1 * s1 + a2 * s2
    return math.sqrt((nr * nr + ni * ni) / (dr * dr + di * di))


def _pole(k, f):
    # Bilinear transform s = k (1 - z^-1) / (1 + z^-1) of a real pole at -w:
    # 1 / (s + w) = (1 + z^-1) / ((k + w) (1 - p z^-1)) with p = (k - w) / (k + w).
    w = _TWO_PI * f
    return (k - w) / (k + w)


class AWeighting:
    """The A-weighting filter for one sample rate, with its state.

    process() filters a float array in place and returns the sum of squares
    of the weighted samples; no allocation beyond the floats themselves.
    """

    def __init__(self, fs, match_hz=0):
        if match_hz <= 0:
            match_hz = fs / 5.0 if fs / 5.0 < 10000.0 else 10000.0
        self.fs = fs
        self.match_hz = match_hz
        k = 2.0 * fs
        # Section 1: s^2 / (s + w1)^2, zeros at z = 1.
        p1 = _pole(k, F1)
        # Section 2: s^2 / ((s + w2)(s + w3)).
        p2 = _pole(k, F2)
        p3 = _pole(k, F3)
        # Section 3: w4^2 / (s + w4)^2, with its own k prewarped so that
        # the digital and analogue responses agree at match_hz.
        wm = _TWO_PI * match_hz
        p4 = _pole(wm / math.tan(wm / k), F4)
        self.a11 = -2.0 * p1
        self.a12 = p1 * p1
        self.a21 = -(p2 + p3)
        self.a22 = p2 * p3
        self.a31 = -2.0 * p4
        self.a32 = p4 * p4
        # Numerators: (1 - z^-1) per high-pass pole, (1 + z^-1) per low-pass
        # pole; the constant factors of the transform are replaced by one
        # gain that makes the cascade 0 dB at 1 kHz.
        w1k = _TWO_PI * 1000.0 / fs
        at_1k = (
            _biquad_gain(1.0, -2.0, 1.0, self.a11, self.a12, w1k)
            * _biquad_gain(1.0, -2.0, 1.0, self.a21, self.a22, w1k)
            * _biquad_gain(1.0, 2.0, 1.0, self.a31, self.a32, w1k)
        )
        self.gain = 1.0 / at_1k
        self.reset()

    def reset(self):
        # Direct form I state: the cascade shares histories, section n's
        # input history is section n-1's output history.
        self.x1 = self.x2 = 0.0
        self.u1 = self.u2 = 0.0
        self.v1 = self.v2 = 0.0
        self.y1 = self.y2 = 0.0

    def sos(self):
        """The sections as rows b0, b1, b2, 1, a1, a2 (scipy/ulab sosfilt layout).

        The overall gain is in the first row.
        """
        g = self.gain
        return [
            [g, -2.0 * g, g, 1.0, self.a11, self.a12],
            [1.0, -2.0, 1.0, 1.0, self.a21, self.a22],
            [1.0, 2.0, 1.0, 1.0, self.a31, self.a32],
        ]

    def response_db(self, f):
        """The filter's own gain at f Hz, computed from its coefficients."""
        w = _TWO_PI * f / self.fs
        m = (
            self.gain
            * _biquad_gain(1.0, -2.0, 1.0, self.a11, self.a12, w)
            * _biquad_gain(1.0, -2.0, 1.0, self.a21, self.a22, w)
            * _biquad_gain(1.0, 2.0, 1.0, self.a31, self.a32, w)
        )
        return 20.0 * math.log10(m) if m > 0 else -400.0

    def process(self, buf, start, count):
        """Weight buf[start:start+count] in place; return the sum of squares."""
        g = self.gain
        a11 = self.a11
        a12 = self.a12
        a21 = self.a21
        a22 = self.a22
        a31 = self.a31
        a32 = self.a32
        x1 = self.x1
        x2 = self.x2
        u1 = self.u1
        u2 = self.u2
        v1 = self.v1
        v2 = self.v2
        y1 = self.y1
        y2 = self.y2
        total = 0.0
        for i in range(start, start + count):
            x = buf[i] * g
            u = (x - x1) - (x1 - x2) - a11 * u1 - a12 * u2
            v = (u - u1) - (u1 - u2) - a21 * v1 - a22 * v2
            y = v + v1 + v1 + v2 - a31 * y1 - a32 * y2
            x2 = x1
            x1 = x
            u2 = u1
            u1 = u
            v2 = v1
            v1 = v
            y2 = y1
            y1 = y
            buf[i] = y
            total += y * y
        self.x1 = x1
        self.x2 = x2
        self.u1 = u1
        self.u2 = u2
        self.v1 = v1
        self.v2 = v2
        self.y1 = y1
        self.y2 = y2
        return total


def leq(levels):
    """Equivalent level of equal-duration levels: 10 log10(mean(10^(L/10)))."""
    total = 0.0
    for level in levels:
        total += math.pow(10.0, level / 10.0)
    return 10.0 * math.log10(total / len(levels))


class LeqAggregator:
    """125 ms levels in, 1 s LAeq / LAmax / LAmin out (by energy, never by averaging dB).

    offset_db (the calibration offset, set against a reference meter) is
    added to every level that comes in. add_level() returns True when a
    period is complete; its results are then in laeq, lamax, lamin and
    periods counts the completed periods.
    """

    def __init__(self, count=8, offset_db=0.0):
        self.count = count
        self.offset_db = offset_db
        self.laeq = 0.0
        self.lamax = 0.0
        self.lamin = 0.0
        self.last = 0.0  # the newest calibrated 125 ms level
        self.periods = 0
        self._energy = 0.0
        self._n = 0
        self._max = 0.0
        self._min = 0.0

    def add_level(self, level_db):
        level = level_db + self.offset_db
        self.last = level
        if self._n == 0 or level > self._max:
            self._max = level
        if self._n == 0 or level < self._min:
            self._min = level
        # Energies relative to 0 dB can reach 1e14 at 140 dB: fine in float32.
        self._energy += math.pow(10.0, level / 10.0)
        self._n += 1
        if self._n < self.count:
            return False
        self.laeq = 10.0 * math.log10(self._energy / self._n)
        self.lamax = self._max
        self.lamin = self._min
        self.periods += 1
        self._energy = 0.0
        self._n = 0
        return True


class SoundLevelMeter:
    """Raw microphone samples in, 125 ms levels and 1 s LAeq/LAmax/LAmin out.

    reference_db is the level of a weighted signal with mean square 1.0 in
    the units of the samples: it turns the microphone's sensitivity into
    dB. Example: samples scaled to +-1.0 full scale from a microphone whose
    datasheet says -26 dBFS for a 94 dB SPL 1 kHz sine (0 dBFS = a full-scale
    sine) give mean square 10^(-2.6)/2 at 94 dB, so reference_db = 94 + 26 +
    3.01 = 123.0; check your microphone's datasheet. calibration_db is the
    site calibration offset (the noise node's "calibration_offset" register).
    """

    def __init__(self, fs, reference_db=0.0, calibration_db=0.0, match_hz=0):
        self.filter = AWeighting(fs, match_hz)
        # 125 ms; at a rate not divisible by 8 (44.1 kHz) the block is a
        # fraction of a sample short, which is well below any level error.
        self.block_len = int(fs / 8 + 0.5)
        self.reference_db = reference_db
        self.aggregator = LeqAggregator(8, calibration_db)
        self._sum = 0.0
        self._filled = 0

    def feed(self, buf, length):
        """Filter buf[0:length] in place; return the number of 1 s periods completed."""
        done = 0
        i = 0
        block_len = self.block_len
        while i < length:
            take = block_len - self._filled
            if take > length - i:
                take = length - i
            self._sum += self.filter.process(buf, i, take)
            self._filled += take
            i += take
            if self._filled == block_len:
                mean_square = self._sum / block_len
                if mean_square < _FLOOR_MEAN_SQUARE:
                    mean_square = _FLOOR_MEAN_SQUARE
                if self.aggregator.add_level(10.0 * math.log10(mean_square) + self.reference_db):
                    done += 1
                self._sum = 0.0
                self._filled = 0
        return done


def make_sensor(settings, io):
    """The noise node's driver (node.json names this module): see firmware/noise_sensor.py."""
    from firmware import noise_sensor

    return noise_sensor.make_sensor(settings, io)
