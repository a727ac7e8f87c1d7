# Tilt from a 3-axis accelerometer or inclinometer (ADXL355, SCL3300, ...).
#
# At rest the sensor measures gravity only. The angle of each horizontal
# axis above the horizontal plane is
#     pitch = atan2(ax, sqrt(ay^2 + az^2))    (x axis)
#     roll  = atan2(ay, sqrt(ax^2 + az^2))    (y axis)
# the form inclinometer datasheets use: each angle depends on its own axis,
# and tan(pitch) is the slope of the mounting surface along x. Any unit of
# acceleration works (counts, mg), as long as the three axes share it.
#
# Angles are integer millidegrees (the tilt node's registers); the slope in
# per mille is 1000 * tan(angle). Baseline zeroing subtracts the angles
# stored when the node was zeroed. Subtracting angles is exact for a tilt
# about one axis and a close approximation for the small combined tilts of
# formwork (alarm at 4 per mille = 0.23 degrees).

import math

MDEG_PER_RAD = 180000.0 / math.pi


def pitch_mdeg(ax, ay, az):
    fy = float(ay)
    fz = float(az)
    return int(round(math.atan2(float(ax), math.sqrt(fy * fy + fz * fz)) * MDEG_PER_RAD))


def roll_mdeg(ax, ay, az):
    fx = float(ax)
    fz = float(az)
    return int(round(math.atan2(float(ay), math.sqrt(fx * fx + fz * fz)) * MDEG_PER_RAD))


def slope_permille(angle_mdeg):
    """Slope in per mille for an angle in millidegrees: 1000 * tan(angle)."""
    return 1000.0 * math.tan(angle_mdeg / MDEG_PER_RAD)


class Tilt:
    """Angles and slopes relative to a stored baseline.

    baseline_pitch / baseline_roll (mdeg) mirror the node's holding
    registers of the same names; zero() sets them to the present attitude.
    """

    def __init__(self, baseline_pitch=0, baseline_roll=0):
        self.baseline_pitch = baseline_pitch
        self.baseline_roll = baseline_roll
        self.pitch = 0  # mdeg from the baseline
        self.roll = 0
        self.slope_x = 0.0  # per mille
        self.slope_y = 0.0

    def zero(self, ax, ay, az):
        self.baseline_pitch = pitch_mdeg(ax, ay, az)
        self.baseline_roll = roll_mdeg(ax, ay, az)

    def update(self, ax, ay, az):
        self.pitch = pitch_mdeg(ax, ay, az) - self.baseline_pitch
        self.roll = roll_mdeg(ax, ay, az) - self.baseline_roll
        self.slope_x = slope_permille(self.pitch)
        self.slope_y = slope_permille(self.roll)


def make_sensor(settings, io):
    """The tilt node's driver (node.json names this module): see firmware/tilt_sensor.py."""
    from firmware import tilt_sensor

    return tilt_sensor.make_sensor(settings, io)
