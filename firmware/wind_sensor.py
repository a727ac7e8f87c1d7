# The wind node's sensor adapter: a cup anemometer's pulses counted in a
# hard IRQ, and a wind vane on the ADC (firmware/wind.py holds the maths).
#
# Every step (250 ms, from poll(); a sample takes a step too if one is due)
# turns the pulses since the previous step into a speed with the holding
# registers anemometer_factor and anemometer_offset, pushes it into the 3 s
# running mean (GustTracker: 12 steps) and reads the vane. A sample then
# publishes
#   wind_speed:   the mean over the sample interval (all its pulses / its time),
#   wind_gust_3s: the highest 3 s running mean since the previous sample
#                 (WMO-No. 306; until 3 s of steps exist, the sample is
#                 flagged warm-up),
#   wind_dir:     the vector mean of the vane readings of the interval
#                 (unit vectors: 350 and 10 degrees average to 0), plus the
#                 holding register vane_offset.
#
# node.json "sensor" settings (defaults in brackets):
#   "pulse": anemometer input pin; "pull_up": use the internal pull-up  [27, false]
#   "vane_adc": vane ADC pin                                            [34]
#   "vane_table": the ADC reading (read_u16) of each position of a
#       resistor-network vane, from north clockwise, 8 or 16 entries,
#       measured on the bench (hardware/wind.md)                        [none: a potentiometer
#       vane, 0 .. "adc_max" = 0 .. 360 degrees]
#   "adc_max" [65535], "vane_tolerance": the largest distance from a table
#       entry that still counts as that position [2500]
#   "step_ms" [250], "max_speed": m/s, beyond is out of range [60]
#   "stuck_samples" [60], "stuck_above": m/s; the vane counts as stuck when
#       its readings do not change while the wind blows above this [2.0]
#
# A vane reading that matches no table entry (open or shorted cable) is a
# vane fault: the sample flags the vane absent in its second status group
# (wind_dir only; regmap "Per-channel status"), and with no good vane
# reading at all in the interval the direction reads 0. A stuck vane is
# flagged the same way; speeds beyond max_speed are out of range.

import math

from firmware import regmap, sensing, wind
from firmware.clock import ticks_diff

STEP_MS = 250
GUST_SPAN_MS = 3000
_RAD = math.pi / 180.0


class WindSensor:
    def __init__(
        self,
        counter,
        adc,
        now_ms,
        table=None,
        adc_max=65535,
        tolerance=2500,
        step_ms=STEP_MS,
        max_speed=60.0,
        stuck_samples=sensing.STUCK_SAMPLES,
        stuck_above=2.0,
    ):
        self.counter = counter
        self.adc = adc
        self.table = table
        self.adc_max = adc_max
        self.tolerance = tolerance
        self.step_ms = step_ms
        self.max_speed = max_speed
        self.stuck_above = stuck_above
        self.gust = wind.GustTracker(step_ms, GUST_SPAN_MS)
        self.stuck = sensing.StuckDetector(stuck_samples)
        self.counters = sensing.Counters()
        self.last_step_ms = now_ms
        counter.take()  # pulses before now belong to nobody
        self.pin = None  # the IRQ pin, kept referenced
        self.speed = 0.0  # newest step's speed
        self.vane_faults = 0
        self._reset_interval()

    def _reset_interval(self):
        self.pulses = 0
        self.elapsed_ms = 0
        self.sum_sin = 0.0
        self.sum_cos = 0.0
        self.vane_reads = 0
        self.vane_bad = 0
        self.raw_print = 0
        self.last_deg = 0.0

    def vane(self, raw):
        """Degrees (before vane_offset) of one vane reading, or -1.0 when it matches no position."""
        table = self.table
        if table is None:
            return wind.vane_degrees(raw, self.adc_max, 0.0)
        best = 0
        best_d = -1
        for i in range(len(table)):
            d = abs(raw - table[i])
            if best_d < 0 or d < best_d:
                best = i
                best_d = d
        if best_d > self.tolerance:
            return -1.0
        return best * 360.0 / len(table)

    def _step(self, bank, now_ms):
        dt = ticks_diff(now_ms, self.last_step_ms)
        self.last_step_ms = now_ms
        pulses = self.counter.take()
        factor = bank.get_holding_raw("anemometer_factor") / 10000
        offset = bank.get_holding_raw("anemometer_offset") / 1000
        self.speed = wind.speed(wind.frequency(pulses, dt), factor, offset)
        self.gust.push(self.speed)
        self.pulses += pulses
        self.elapsed_ms += dt
        raw = self.adc.read_u16()
        self.raw_print = sensing.fold(self.raw_print, raw)
        deg = self.vane(raw)
        if deg < 0:
            self.vane_bad += 1
            self.vane_faults += 1
            return
        self.vane_reads += 1
        self.last_deg = deg
        self.sum_sin += math.sin(deg * _RAD)
        self.sum_cos += math.cos(deg * _RAD)

    def poll(self, bank, now_ms):
        if ticks_diff(now_ms, self.last_step_ms) >= self.step_ms:
            self._step(bank, now_ms)

    def read(self, bank, now_ms):
        self.poll(bank, now_ms)
        if self.elapsed_ms <= 0:
            return self.counters.count(regmap.STATUS_ABSENT)
        factor = bank.get_holding_raw("anemometer_factor") / 10000
        offset = bank.get_holding_raw("anemometer_offset") / 1000
        mean = wind.speed(wind.frequency(self.pulses, self.elapsed_ms), factor, offset)
        bits = regmap.STATUS_OK
        gust = self.gust.take()
        if gust is None:
            bits |= regmap.STATUS_WARMUP
            gust = mean
        if self.vane_reads:
            if self.sum_sin == 0.0 and self.sum_cos == 0.0:
                deg = self.last_deg
            else:
                deg = math.atan2(self.sum_sin, self.sum_cos) / _RAD
        else:
            deg = 0.0
        deg = (deg + bank.get_holding_raw("vane_offset") / 10) % 360.0  # atan2 gives -180 .. 180
        tenths = int(deg * 10.0 + 0.5) % 3600
        bank.set_input("wind_speed", mean)
        bank.set_input("wind_gust_3s", gust)
        bank.set_input_raw("wind_dir", tenths)
        if mean > self.max_speed or gust > self.max_speed:
            bits |= regmap.STATUS_RANGE
        # The vane's faults are its own (regmap "Per-channel status"): they flag
        # wind_dir only, so a broken vane cable never silences a gust alarm.
        if self.vane_bad:
            bits |= regmap.STATUS_SPLIT | (regmap.STATUS_ABSENT << regmap.STATUS_AUX_SHIFT)
        if mean > self.stuck_above and self.stuck.update(self.raw_print):
            bits |= regmap.STATUS_SPLIT | (regmap.STATUS_STUCK << regmap.STATUS_AUX_SHIFT)
        self._reset_interval()
        return self.counters.count(sensing.finish(bits))


def make_sensor(settings, io):
    s = settings
    counter = wind.PulseCounter()
    table = s.get("vane_table")
    sensor = WindSensor(
        counter,
        io.adc(sensing.setting(s, "vane_adc", 34)),
        io.clock().ticks_ms(),
        table,
        int(sensing.setting(s, "adc_max", 65535)),
        int(sensing.setting(s, "vane_tolerance", 2500)),
        int(sensing.setting(s, "step_ms", STEP_MS)),
        sensing.setting(s, "max_speed", 60.0),
        int(sensing.setting(s, "stuck_samples", sensing.STUCK_SAMPLES)),
        sensing.setting(s, "stuck_above", 2.0),
    )
    sensor.pin = io.pulse_input(sensing.setting(s, "pulse", 27), counter.irq, bool(s.get("pull_up", False)))
    return sensor
