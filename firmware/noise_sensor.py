# The noise node's sensor adapter: 125 ms (Fast) A-weighted levels in, 1 s
# LAeq / LAmax / LAmin out (firmware/aweight.py LeqAggregator: by energy).
#
# Three front ends (hardware/noise.md):
#   "module": a sound-level module with RS-485 Modbus RTU output that does
#       the A-weighting itself (recommended). The node is the master of a
#       short private bus and reads one register every 125 ms: each poll()
#       collects the answer to the previous request and sends the next, so
#       it never waits for the module's answer (sending the 8-byte request
#       holds the loop for its wire time, 9 ms at 9600 baud: Rs485Port.send
#       waits for the last bit before it releases the driver enable).
#   "analog": the same kind of module with a 4-20 mA output through a shunt
#       into the ADC, read every 125 ms. A loop current below 3.6 mA or above
#       21 mA is a broken loop or a failed module (the NAMUR NE 43 limits):
#       no level.
#   "i2s": an I2S MEMS microphone, filtered in firmware (SoundLevelMeter).
#       Plain MicroPython filters far fewer samples per second than the
#       microphone delivers (see aweight.py and docs/firmware.md): each
#       poll() takes one chunk from the I2S buffer and filters it, and the
#       DMA buffer overflows in between. The levels are then measured on
#       the chunks processed, back to back as if they were continuous: a
#       sampled estimate, good for development and spot checks only.
#
# node.json "sensor" settings (defaults in brackets):
#   "source": "module" | "analog" | "i2s"   ["i2s" when an "i2s" bus is given, else "module"]
#   module: "uart", "tx", "rx", "de" [1, 26, 27, 25], "baud" [9600],
#           "address" [1], "register" [0], "function" [3], "scale": register units per dB [10]
#   analog: "adc" [36], "shunt_ohm" [120], "db_at_4ma" [30], "db_at_20ma" [130]
#   i2s:    "i2s", "sck", "ws", "sd" [0, 14, 13, 32], "rate" [16000],
#           "sensitivity_dbfs": the microphone's sensitivity at 94 dB SPL [-26], "chunk" [256]
#   "db_min", "db_max": the range of the front end [30, 130]; only a level above db_max sets out_of_range
#   "stuck_samples" [60]
#
# The holding register calibration_offset is added to every 125 ms level.
# A sample publishes the newest complete 1 s period; if none completed
# since the previous sample, the sample is absent (or checksum, when the
# module's answers failed their CRC).

from array import array

from firmware import regmap, sensing
from firmware.aweight import LeqAggregator, SoundLevelMeter
from firmware.clock import ticks_add, ticks_diff
from firmware.modbus_rtu import COUNT_MASK, crc16, crc_ok
from firmware.rs485 import Rs485Port

BLOCK_MS = 125
FULL_SCALE_32 = 2147483648.0
NAMUR_LOW_MA = 3.6
NAMUR_HIGH_MA = 21.0


def read_request(address, function, register, count=1):
    """A Modbus RTU read request frame (function 3 or 4)."""
    frame = bytearray(8)
    frame[0] = address
    frame[1] = function
    frame[2] = register >> 8
    frame[3] = register & 0xFF
    frame[4] = count >> 8
    frame[5] = count & 0xFF
    crc = crc16(frame, 6)
    frame[6] = crc & 0xFF
    frame[7] = crc >> 8
    return frame


class ModuleSource:
    """A dB(A) module read over Modbus RTU, one register per poll."""

    periodic = True

    def __init__(self, port, address=1, register=0, function=3, scale=10):
        self.port = port
        self.address = address
        self.function = function
        self.scale = scale
        self.request = read_request(address, function, register)
        self.rx = bytearray(32)
        self.waiting = False
        self.raw = 0
        self.levels = 0
        self.timeouts = 0
        self.crc_errors = 0
        self.bad_replies = 0

    def poll(self, now_ms):
        """Collect the answer to the previous request, send the next; the level in dB or None.

        The master knows how long the answer is (7 bytes), and a whole block
        time has passed since the request, so everything the UART holds is
        the answer: no silence-based framing is needed on this private bus.
        """
        port = self.port
        uart = port.uart
        rx = self.rx
        level = None
        n = 0
        while uart.any():
            got = uart.readinto(rx)
            if not got:
                break
            n = got  # a longer burst is not an answer; its last chunk fails below
        if n:
            if not crc_ok(rx, n):
                self.crc_errors += 1
            elif n == 7 and rx[0] == self.address and rx[1] == self.function and rx[2] == 2:
                self.raw = (rx[3] << 8) | rx[4]
                level = self.raw / self.scale
                self.levels += 1
            else:
                self.bad_replies += 1
        elif self.waiting:
            self.timeouts += 1
        port.send(self.request, 8)
        self.waiting = True
        return level


class AnalogSource:
    """A 4-20 mA dB(A) module through a shunt resistor into the ADC."""

    periodic = True

    def __init__(self, adc, shunt_ohm=120.0, db_at_4ma=30.0, db_at_20ma=130.0):
        self.adc = adc
        self.shunt_ohm = shunt_ohm
        self.db_at_4ma = db_at_4ma
        self.db_per_ma = (db_at_20ma - db_at_4ma) / 16.0
        self.raw = 0
        self.levels = 0
        self.loop_faults = 0
        self.crc_errors = 0

    def current_ma(self, uv):
        return uv / self.shunt_ohm / 1000.0

    def poll(self, now_ms):
        uv = self.adc.read_uv()
        self.raw = uv
        ma = self.current_ma(uv)
        if ma < NAMUR_LOW_MA or ma > NAMUR_HIGH_MA:
            self.loop_faults += 1
            return None
        self.levels += 1
        return self.db_at_4ma + (ma - 4.0) * self.db_per_ma


class I2sSource:
    """An I2S MEMS microphone: one chunk filtered per poll (see the header on speed)."""

    periodic = False

    def __init__(self, i2s, rate=16000, sensitivity_dbfs=-26.0, chunk=256):
        self.i2s = i2s
        # Samples scaled to +-1.0 full scale: a 94 dB SPL sine has mean
        # square 10^(sensitivity/10) / 2 (0 dBFS = a full-scale sine).
        reference_db = 94.0 - sensitivity_dbfs + 3.0103
        self.meter = SoundLevelMeter(rate, reference_db)
        self.aggregator = self.meter.aggregator
        self.ints = array("i", [0] * chunk)
        self.floats = array("f", [0.0] * chunk)
        self.samples = 0
        self.crc_errors = 0
        self.raw = 0

    def poll(self, now_ms):
        got = self.i2s.readinto(self.ints)
        n = (got or 0) // 4
        if n <= 0:
            return None
        ints = self.ints
        floats = self.floats
        for i in range(n):
            floats[i] = ints[i] / FULL_SCALE_32
        self.samples = (self.samples + n) & COUNT_MASK  # 16000 a second: wrap inside the small-int range
        self.meter.feed(floats, n)
        return None


class NoiseSensor:
    def __init__(
        self, source, now_ms, db_min=30.0, db_max=130.0, stuck_samples=sensing.STUCK_SAMPLES, block_ms=BLOCK_MS
    ):
        self.source = source
        self.aggregator = getattr(source, "aggregator", None) or LeqAggregator(8)
        self.db_min = db_min
        self.db_max = db_max
        self.block_ms = block_ms
        self.next_ms = now_ms
        self.stuck = sensing.StuckDetector(stuck_samples)
        self.counters = sensing.Counters()
        self._periods_seen = 0
        self._crc_seen = 0

    def poll(self, bank, now_ms):
        self.aggregator.offset_db = bank.get_holding_raw("calibration_offset") / 10
        source = self.source
        if not source.periodic:
            source.poll(now_ms)
            return
        if ticks_diff(now_ms, self.next_ms) < 0:
            return
        self.next_ms = ticks_add(self.next_ms, self.block_ms)
        if ticks_diff(now_ms, self.next_ms) >= 0:
            # Fell behind by more than a block (a long flash write): restart the schedule.
            self.next_ms = ticks_add(now_ms, self.block_ms)
        level = source.poll(now_ms)
        if level is not None:
            self.aggregator.add_level(level)

    def read(self, bank, now_ms):
        agg = self.aggregator
        crc = self.source.crc_errors
        failed = crc != self._crc_seen
        self._crc_seen = crc
        if agg.periods == self._periods_seen:
            bits = regmap.STATUS_CHECKSUM if failed else regmap.STATUS_ABSENT
            return self.counters.count(bits)
        self._periods_seen = agg.periods
        bank.set_input("laeq_1s", agg.laeq)
        bank.set_input("lamax_1s", agg.lamax)
        bank.set_input("lamin_1s", agg.lamin)
        bits = regmap.STATUS_OK
        if self.stuck.update(sensing.fold(int(agg.laeq * 100), int(agg.lamax * 100))):
            bits |= regmap.STATUS_STUCK
        # T is "over the upper limit" (HJ 212): clipped loud blocks make every level of the second a lower bound.
        # A Fast minimum under the floor is not: the status bits cover the whole sample, so it would flag a quiet
        # night's laeq_1s T; the gateway's range check flags that lamin_1s reading alone.
        if agg.lamax > self.db_max:
            bits |= regmap.STATUS_RANGE
        return self.counters.count(sensing.finish(bits))


def make_source(settings, io):
    s = settings
    source = sensing.setting(s, "source", "i2s" if s.get("i2s") is not None else "module")
    if source == "module":
        baud = int(sensing.setting(s, "baud", 9600))
        uart = io.uart(
            sensing.setting(s, "uart", 1), baud, 0, sensing.setting(s, "tx", 26), sensing.setting(s, "rx", 27), 256
        )
        de = io.output_pin(sensing.setting(s, "de", 25), 0)
        port = Rs485Port(uart, de, baud, io.clock(), 64, 32)
        return ModuleSource(
            port,
            int(sensing.setting(s, "address", 1)),
            int(sensing.setting(s, "register", 0)),
            int(sensing.setting(s, "function", 3)),
            sensing.setting(s, "scale", 10),
        )
    if source == "analog":
        return AnalogSource(
            io.adc(sensing.setting(s, "adc", 36)),
            sensing.setting(s, "shunt_ohm", 120.0),
            sensing.setting(s, "db_at_4ma", 30.0),
            sensing.setting(s, "db_at_20ma", 130.0),
        )
    if source == "i2s":
        rate = int(sensing.setting(s, "rate", 16000))
        i2s = io.i2s_rx(
            sensing.setting(s, "i2s", 0),
            sensing.setting(s, "sck", 14),
            sensing.setting(s, "ws", 13),
            sensing.setting(s, "sd", 32),
            rate,
        )
        return I2sSource(
            i2s, rate, sensing.setting(s, "sensitivity_dbfs", -26.0), int(sensing.setting(s, "chunk", 256))
        )
    raise ValueError("noise sensor: unknown source " + str(source))


def make_sensor(settings, io):
    return NoiseSensor(
        make_source(settings, io),
        io.clock().ticks_ms(),
        sensing.setting(settings, "db_min", 30.0),
        sensing.setting(settings, "db_max", 130.0),
        int(sensing.setting(settings, "stuck_samples", sensing.STUCK_SAMPLES)),
    )
