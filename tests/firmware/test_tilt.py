# Tilt: angles from gravity, slopes, baseline. MicroPython-compatible.

import math

from firmware import tilt
from firmware.tilt import Tilt

G = 16384  # 1 g in counts (a 14-bit-per-g accelerometer range)


def gravity(pitch_deg, roll_deg=0.0):
    """The vector a sensor at rest measures for a tilt of the x axis by pitch (about y)."""
    p = math.radians(pitch_deg)
    r = math.radians(roll_deg)
    # Rotate about y by pitch, then about x by roll; x rises by sin(pitch).
    ax = G * math.sin(p)
    ay = G * math.cos(p) * math.sin(r)
    az = G * math.cos(p) * math.cos(r)
    return round(ax), round(ay), round(az)


def test_level_is_zero():
    assert tilt.pitch_mdeg(0, 0, G) == 0
    assert tilt.roll_mdeg(0, 0, G) == 0


def test_known_angles():
    for deg in (1.0, 5.0, 30.0, 45.0, -10.0):
        ax, ay, az = gravity(deg)
        # Rounding the vector to counts costs at most ~0.004 deg at 1 g = 16384.
        assert abs(tilt.pitch_mdeg(ax, ay, az) - deg * 1000) <= 5
        assert abs(tilt.roll_mdeg(ax, ay, az)) <= 5


def test_exact_45_degrees_and_vertical():
    assert tilt.pitch_mdeg(1000, 0, 1000) == 45000
    assert tilt.roll_mdeg(0, -1000, 1000) == -45000
    assert tilt.pitch_mdeg(G, 0, 0) == 90000
    assert tilt.roll_mdeg(0, G, 0) == 90000


def test_angles_are_integers():
    assert isinstance(tilt.pitch_mdeg(123, 456, 16000), int)
    assert isinstance(tilt.roll_mdeg(123, 456, 16000), int)


def test_unit_independent():
    assert tilt.pitch_mdeg(100, 20, 980) == tilt.pitch_mdeg(1000, 200, 9800)


def test_slope_permille():
    assert abs(tilt.slope_permille(45000) - 1000.0) < 1e-6
    assert tilt.slope_permille(0) == 0.0
    # 4 per mille (the formwork alarm) is atan(0.004) = 0.22918 deg.
    assert abs(tilt.slope_permille(229) - 3.997) < 0.002
    assert abs(tilt.slope_permille(-229) + 3.997) < 0.002


def test_baseline_zeroing():
    t = Tilt()
    mounted = gravity(2.0, -1.5)
    t.zero(mounted[0], mounted[1], mounted[2])
    assert abs(t.baseline_pitch - 2000) <= 5
    assert abs(t.baseline_roll + 1500) <= 5
    t.update(mounted[0], mounted[1], mounted[2])
    assert (t.pitch, t.roll) == (0, 0)
    assert t.slope_x == 0.0
    moved = gravity(2.5, -1.5)
    t.update(moved[0], moved[1], moved[2])
    assert abs(t.pitch - 500) <= 10
    assert abs(t.roll) <= 10
    assert abs(t.slope_x - 1000 * math.tan(math.radians(t.pitch / 1000))) < 1e-9
    assert 8.5 < t.slope_x < 8.95  # tan(0.5 deg) = 8.73 per mille


def test_baseline_from_registers():
    t = Tilt(baseline_pitch=-1500, baseline_roll=250)
    t.update(0, 0, G)
    assert (t.pitch, t.roll) == (1500, -250)
