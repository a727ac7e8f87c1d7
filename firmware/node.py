# A sensor node: register bank + Modbus slave + one sensor, with the
# bookkeeping every node does (sample sequence, sample age, status,
# diagnostics). No I/O here: the board's main loop (firmware/main.py) or the
# simulator feeds it ticks and frames.
#
# A sensor is any object with read(bank, now_ms) -> status bits: it stores
# its measurements with bank.set_input(name, value) and returns
# regmap.STATUS_OK (plus flag bits) when they are valid.

from firmware import regmap
from firmware.clock import ticks_diff
from firmware.modbus_rtu import RtuSlave
from firmware.regbank import RegisterBank


class Node:
    def __init__(self, kind, sensor, boot_ms, unit_id=0, boot_count=1):
        self.kind = kind
        self.sensor = sensor
        self.bank = RegisterBank(kind)
        if unit_id:
            self.bank.set_holding_raw("unit_id", unit_id)
        self.slave = RtuSlave(self.bank.get_holding_raw("unit_id"), self.bank)
        self.boot_ms = boot_ms
        self.seq = 0
        self.sample_ms = boot_ms
        self.next_sample_ms = boot_ms
        self.sensor_errors = 0
        self.bank.set_input_raw("boot_count", boot_count & 0xFFFF)
        self.bank.set_input_raw("sensor_status", regmap.STATUS_ABSENT)

    @property
    def unit_id(self):
        return self.slave.unit_id

    def sample_due(self, now_ms):
        return ticks_diff(now_ms, self.next_sample_ms) >= 0

    def sample(self, now_ms):
        """Read the sensor once and publish the sample in the registers."""
        bank = self.bank
        try:
            status = self.sensor.read(bank, now_ms)
        except Exception:  # a driver bug must not stop the node answering
            status = regmap.STATUS_ABSENT
        if not status & regmap.STATUS_OK:
            self.sensor_errors += 1
        self.seq += 1
        self.sample_ms = now_ms
        bank.set_input_raw("sample_seq", self.seq)
        bank.set_input_raw("sensor_status", status)
        bank.set_input_raw("sensor_errors", self.sensor_errors & 0xFFFF)
        self.next_sample_ms = now_ms + bank.get_holding_raw("sample_interval")

    def handle(self, frame, length, now_ms):
        """One request frame in; reply length in self.slave.tx out (0: silent)."""
        bank = self.bank
        slave = self.slave
        age = ticks_diff(now_ms, self.sample_ms)
        bank.set_input_raw("sample_age", age if age < 0xFFFF else 0xFFFF)
        bank.set_input_raw("uptime", ticks_diff(now_ms, self.boot_ms) // 1000)
        bank.set_input_raw("frames_ok", slave.frames_ok & 0xFFFF)
        bank.set_input_raw("crc_errors", slave.crc_errors & 0xFFFF)
        return slave.handle(frame, length)
