# The dust node's sensor adapter: an optical PM sensor (Plantower PMS5003 or
# Nova SDS011) on a UART, plus an optional temperature / humidity / pressure
# sensor (Sensirion SHT3x or Bosch BME280) on I2C.
#
# node.json "sensor" settings (defaults in brackets):
#   "pm": "pms5003" | "sds011"                     ["pms5003"]
#   "uart", "tx", "rx": the PM sensor's UART        [1, 33, 32]
#   "set": PMS5003 SET pin, driven high (awake)     [none]
#   "warmup_s": seconds after a wake before PM readings count  [30]
#   "env": "auto" | "sht3x" | "bme280" | "none"     ["auto": SHT3x at 0x44/0x45,
#          then BME280 at 0x76/0x77; none found: run without, and say so on the console]
#   "i2c", "scl", "sda", "env_address": the I2C bus  [0, 22, 21, the chip's default]
#   "stuck_samples": identical raw readings before STATUS_STUCK  [60]
#
# Passive mode: the sensor sends a reading only when asked. Each read()
# takes the answer to the request the previous read() sent, then asks for
# the next one, so it never waits on the UART: a published reading is at
# most one sample interval old. After ABSENT_RESTART samples without an
# answer the sensor is woken and put into passive mode again (it may have
# lost power and come back in active mode), which restarts its warm-up.
#
# Humidity: with a humidity sensor, readings taken above the holding
# register rh_flag_threshold get STATUS_HUMID, and when rh_correction is 1
# the PM values are divided by the kappa-Koehler growth factor with the
# holding register kappa (firmware/humidity.py; an unconfirmed form).
#
# The humidity sensor's faults are its own (regmap "Per-channel status"): a
# failing T/RH/P chip flags temperature, humidity and pressure only, in the
# second status group, and the PM values keep their own status.

from firmware import humidity, pms5003, regmap, sds011, sensing
from firmware.bme280 import Bme280
from firmware.clock import ticks_diff
from firmware.sht3x import Sht3x

try:
    from micropython import const  # type: ignore  # the stubs type it position-only, the CPython stand-in not
except ImportError:  # CPython

    def const(value):
        return value


_PMS_MAX = const(1000)  # ug/m3: the PMS5003's maximum range (effective range 0-500)
SDS_MAX = 999.9  # ug/m3: the SDS011's range
ABSENT_RESTART = 5


class DustSensor:
    def __init__(
        self,
        pm_kind,
        uart,
        now_ms,
        set_pin=None,
        env=None,
        warmup_ms=pms5003.WARMUP_MS,
        stuck_samples=sensing.STUCK_SAMPLES,
    ):
        if pm_kind != "pms5003" and pm_kind != "sds011":
            raise ValueError("dust sensor: unknown pm " + str(pm_kind))
        self.pm_kind = pm_kind
        self.uart = uart
        self.set_pin = set_pin
        self.env = env
        self.warmup_ms = warmup_ms
        self.rx = bytearray(64)
        self.pms = None
        self.sds = None
        if pm_kind == "pms5003":
            self.pms = pms5003.Pms5003Parser()
            self.parser = self.pms
            self.request = pms5003.READ
            self.max_ug = _PMS_MAX
        else:
            self.sds = sds011.Sds011Parser()
            self.parser = self.sds
            self.request = sds011.QUERY
            self.max_ug = SDS_MAX
        self.pm_stuck = sensing.StuckDetector(stuck_samples)
        self.env_stuck = sensing.StuckDetector(stuck_samples)
        self.counters = sensing.Counters()
        self.woke_ms = now_ms
        self.restarts = 0
        self.absent_run = 0
        self._frames_seen = 0
        self._crc_seen = 0
        self.pm1 = 0.0
        self.pm25 = 0.0
        self.pm10 = 0.0
        self.wake(now_ms)

    def wake(self, now_ms):
        """Wake the sensor, put it in passive (query) mode, ask for a first reading; warm-up starts now."""
        uart = self.uart
        if self.set_pin is not None:
            self.set_pin.value(1)
        if self.pm_kind == "pms5003":
            uart.write(pms5003.WAKE)
            uart.write(pms5003.PASSIVE_MODE)
        else:
            uart.write(sds011.WORK)
            uart.write(sds011.query_mode_command())
        uart.write(self.request)
        self.woke_ms = now_ms

    def warming_up(self, now_ms):
        return ticks_diff(now_ms, self.woke_ms) < self.warmup_ms

    # -- one sample ----------------------------------------------------------------
    def read(self, bank, now_ms):
        env_bits, rh = self._read_env(bank)
        bits = self._read_pm(bank, now_ms, rh) | env_bits
        return self.counters.count(sensing.finish(bits))

    def _read_env(self, bank):
        """(status bits, relative humidity or -1 when unknown)."""
        env = self.env
        if env is None:
            return 0, -1.0
        aux = regmap.STATUS_AUX_SHIFT
        if not env.read():
            fault = regmap.STATUS_CHECKSUM if env.crc_failed else regmap.STATUS_ABSENT
            return regmap.STATUS_SPLIT | (fault << aux), -1.0
        bits = 0
        bank.set_input("temperature", env.temperature)
        bank.set_input("humidity", env.humidity)
        bank.set_input("pressure", env.pressure if env.has_pressure else 0)
        if self.env_stuck.update(env.fingerprint()):
            bits |= regmap.STATUS_SPLIT | (regmap.STATUS_STUCK << aux)
        if not env.in_range():
            bits |= regmap.STATUS_SPLIT | (regmap.STATUS_RANGE << aux)
        rh = env.humidity
        if rh > bank.get_holding_raw("rh_flag_threshold") / 10:
            bits |= regmap.STATUS_HUMID
        return bits, rh

    def _read_pm(self, bank, now_ms, rh):
        parser = self.parser
        sensing.drain(self.uart, self.rx, parser)
        fresh = parser.frames != self._frames_seen
        failed = parser.checksum_errors != self._crc_seen
        self._frames_seen = parser.frames
        self._crc_seen = parser.checksum_errors
        if not fresh:
            self.absent_run += 1
            if self.absent_run >= ABSENT_RESTART:
                self.absent_run = 0
                self.restarts += 1
                self.wake(now_ms)
            else:
                self.uart.write(self.request)
            return regmap.STATUS_CHECKSUM if failed else regmap.STATUS_ABSENT
        self.absent_run = 0
        self.uart.write(self.request)
        p = self.pms
        s = self.sds
        fingerprint = 0
        if p is not None:
            self.pm1 = p.pm1
            self.pm25 = p.pm25
            self.pm10 = p.pm10
            for w in p.words:
                fingerprint = sensing.fold(fingerprint, w)
        elif s is not None:
            self.pm1 = 0.0  # the SDS011 does not measure PM1.0
            self.pm25 = s.pm25
            self.pm10 = s.pm10
            fingerprint = sensing.fold(s.pm25_x10, s.pm10_x10)
        bits = regmap.STATUS_OK
        if self.pm_stuck.update(fingerprint):
            bits |= regmap.STATUS_STUCK
        if self.pm25 > self.max_ug or self.pm10 > self.max_ug:
            bits |= regmap.STATUS_RANGE
        if self.warming_up(now_ms):
            bits |= regmap.STATUS_WARMUP
        pm1 = self.pm1
        pm25 = self.pm25
        pm10 = self.pm10
        if rh >= 0 and bank.get_holding_raw("rh_correction") == 1:
            kappa = bank.get_holding_raw("kappa") / 1000
            pm1 = humidity.correct(pm1, rh, kappa)
            pm25 = humidity.correct(pm25, rh, kappa)
            pm10 = humidity.correct(pm10, rh, kappa)
        bank.set_input("pm1", pm1)
        bank.set_input("pm25", pm25)
        bank.set_input("pm10", pm10)
        return bits


def make_env(settings, io):
    """The humidity sensor the settings ask for (or find), started; None for none."""
    choice = sensing.setting(settings, "env", "auto")
    if choice == "none":
        return None
    i2c = io.i2c(
        sensing.setting(settings, "i2c", 0), sensing.setting(settings, "scl", 22), sensing.setting(settings, "sda", 21)
    )
    address = settings.get("env_address")
    if choice == "sht3x":
        env = Sht3x(i2c, address or 0x44)
        if not env.start():
            io.log("dust: SHT3x not answering at " + hex(env.address))
        return env
    if choice == "bme280":
        env = Bme280(i2c, address or 0x76)
        if not env.start():
            io.log("dust: BME280 not answering at " + hex(env.address))
        return env
    if choice != "auto":
        raise ValueError("dust sensor: unknown env " + str(choice))
    for a in (0x44, 0x45):
        env = Sht3x(i2c, a)
        if env.start():
            return env
    for a in (0x76, 0x77):
        env = Bme280(i2c, a)
        if env.start():
            return env
    io.log("dust: no SHT3x or BME280 found; temperature, humidity and pressure read 0")
    return None


def make_sensor(settings, io):
    pm_kind = sensing.setting(settings, "pm", "pms5003")
    uart = io.uart(
        sensing.setting(settings, "uart", 1),
        9600,
        0,
        sensing.setting(settings, "tx", 33),
        sensing.setting(settings, "rx", 32),
        256,
    )
    set_pin = None
    if pm_kind == "pms5003" and settings.get("set") is not None:
        set_pin = io.output_pin(settings["set"], 1)
    env = make_env(settings, io)
    return DustSensor(
        pm_kind,
        uart,
        io.clock().ticks_ms(),
        set_pin,
        env,
        int(sensing.setting(settings, "warmup_s", pms5003.WARMUP_MS // 1000)) * 1000,
        int(sensing.setting(settings, "stuck_samples", sensing.STUCK_SAMPLES)),
    )
