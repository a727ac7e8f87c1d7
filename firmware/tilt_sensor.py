# The tilt node's sensor adapter: an ADXL355 accelerometer (I2C or SPI) or a
# SCL3300 inclinometer (SPI), turned into pitch / roll from the stored
# baseline and per-mille slopes by firmware/tilt.py.
#
# node.json "sensor" settings (defaults in brackets):
#   "device": "adxl355" | "scl3300"                        ["adxl355"]
#   "bus": "i2c" | "spi" (the ADXL355 speaks both)         ["i2c"; the SCL3300 is SPI only]
#   I2C: "i2c", "scl", "sda", "address"                    [0, 22, 21, 0x1D]
#   SPI: "spi", "sck", "mosi", "miso", "cs"                [2, 18, 23, 19, 13]
#   "max_angle_deg": an attitude beyond this is out of range  [30]
#   "g_tolerance": the measured gravity must be 1 g within this, else out
#                  of range (shock, vibration, or a failing part)  [0.1]
#   "stuck_samples"                                         [60]
#
# Baseline zeroing: writing 1 to the holding register zero_baseline stores
# the attitude of the newest valid sample in baseline_pitch / baseline_roll
# (the node's config store then persists them, so the zero survives a
# restart) and reads back as 0. Without a valid sample yet the command is
# refused (counted in zero_refused) and the baseline stays. The gateway may
# also write baseline_pitch / baseline_roll directly: every sample reads
# them from the bank.

import math

from firmware import regmap, sensing
from firmware.adxl355 import Adxl355, I2cRegisters, SpiRegisters
from firmware.scl3300 import Scl3300
from firmware.tilt import Tilt

BASELINE_LIMIT = 90000  # mdeg: the range of baseline_pitch / baseline_roll


def _clamp(v, limit):
    if v > limit:
        return limit
    if v < -limit:
        return -limit
    return v


class TiltSensor:
    def __init__(self, device, stuck_samples=sensing.STUCK_SAMPLES, max_angle_deg=30.0, g_tolerance=0.1):
        self.device = device
        self.tilt = Tilt()
        self.max_angle_mdeg = int(max_angle_deg * 1000)
        self.g_tolerance = g_tolerance
        self.stuck = sensing.StuckDetector(stuck_samples)
        self.counters = sensing.Counters()
        self.have_sample = False
        self.abs_pitch = 0  # mdeg, the newest valid sample without the baseline
        self.abs_roll = 0
        self.gravity = 0.0  # g, the newest sample's magnitude
        self.zeroings = 0
        self.zero_refused = 0

    def read(self, bank, now_ms):
        dev = self.device
        if not dev.read():
            return self.counters.count(regmap.STATUS_CHECKSUM if dev.crc_failed else regmap.STATUS_ABSENT)
        t = self.tilt
        t.baseline_pitch = bank.get_holding_raw("baseline_pitch")
        t.baseline_roll = bank.get_holding_raw("baseline_roll")
        t.update(dev.x, dev.y, dev.z)
        self.abs_pitch = t.pitch + t.baseline_pitch
        self.abs_roll = t.roll + t.baseline_roll
        self.have_sample = True
        bank.set_input("pitch", t.pitch)
        bank.set_input("roll", t.roll)
        bank.set_input("slope_x", t.slope_x)
        bank.set_input("slope_y", t.slope_y)
        bank.set_input("temperature", dev.temperature)
        bits = regmap.STATUS_OK
        if self.stuck.update(sensing.fold(sensing.fold(dev.x, dev.y), dev.z)):
            bits |= regmap.STATUS_STUCK
        scale = dev.counts_per_g
        fx = dev.x / scale
        fy = dev.y / scale
        fz = dev.z / scale
        self.gravity = math.sqrt(fx * fx + fy * fy + fz * fz)
        limit = self.max_angle_mdeg
        if abs(self.gravity - 1.0) > self.g_tolerance or abs(self.abs_pitch) > limit or abs(self.abs_roll) > limit:
            bits |= regmap.STATUS_RANGE
        return self.counters.count(sensing.finish(bits))

    def on_holding_written(self, bank, name):
        """The node's hook: carry out the zero_baseline command."""
        if name != "zero_baseline":
            return
        if bank.get_holding_raw("zero_baseline") == 1:
            if self.have_sample:
                bank.set_holding_raw("baseline_pitch", _clamp(self.abs_pitch, BASELINE_LIMIT))
                bank.set_holding_raw("baseline_roll", _clamp(self.abs_roll, BASELINE_LIMIT))
                # The present attitude is the new zero: show it at once.
                for reg in ("pitch", "roll", "slope_x", "slope_y"):
                    bank.set_input(reg, 0)
                self.zeroings += 1
            else:
                self.zero_refused += 1
        # A command register reads back as 0.
        bank.set_holding_raw("zero_baseline", 0)


def make_device(settings, io):
    s = settings
    device = sensing.setting(s, "device", "adxl355")
    bus = sensing.setting(s, "bus", "spi" if device == "scl3300" else "i2c")
    if bus == "i2c":
        if device != "adxl355":
            raise ValueError("tilt sensor: " + str(device) + " has no I2C interface")
        i2c = io.i2c(sensing.setting(s, "i2c", 0), sensing.setting(s, "scl", 22), sensing.setting(s, "sda", 21), 400000)
        return Adxl355(I2cRegisters(i2c, int(sensing.setting(s, "address", 0x1D))))
    if bus != "spi":
        raise ValueError("tilt sensor: unknown bus " + str(bus))
    spi = io.spi(
        sensing.setting(s, "spi", 2),
        sensing.setting(s, "sck", 18),
        sensing.setting(s, "mosi", 23),
        sensing.setting(s, "miso", 19),
        2000000,
        0,
        0,
    )
    cs = io.output_pin(sensing.setting(s, "cs", 13), 1)
    if device == "adxl355":
        return Adxl355(SpiRegisters(spi, cs))
    if device == "scl3300":
        return Scl3300(spi, cs, io.sleep_ms)
    raise ValueError("tilt sensor: unknown device " + str(device))


def make_sensor(settings, io):
    device = make_device(settings, io)
    if not device.start():
        io.log("tilt: " + sensing.setting(settings, "device", "adxl355") + " not found; retrying at every sample")
    return TiltSensor(
        device,
        int(sensing.setting(settings, "stuck_samples", sensing.STUCK_SAMPLES)),
        sensing.setting(settings, "max_angle_deg", 30.0),
        sensing.setting(settings, "g_tolerance", 0.1),
    )
