# A sensor node: register bank + Modbus slave + one sensor, with the
# bookkeeping every node does (sample sequence, sample age, status,
# diagnostics). No I/O here: the board's main loop (firmware/main.py) or the
# simulator feeds it ticks and frames.
#
# A sensor is any object with read(bank, now_ms) -> status bits: it stores
# its measurements with bank.set_input(name, value) and returns
# regmap.STATUS_OK (plus flag bits) when they are valid. A sensor may also
# have on_holding_written(bank, name), called when a holding register of the
# node changed over Modbus (before it is persisted), e.g. the tilt node's
# zero_baseline command.
#
# A sensor may also have poll(bank, now_ms), called by tick() on every turn
# of the main loop: the place for work between samples (a 125 ms sound
# level, the 250 ms wind steps of the 3 s gust, draining a UART).
#
# Optional parts, for the board (the simulator may leave them out):
#   store: a config_store.ConfigStore; it loads the persisted holding
#          registers before the slave takes its unit ID, and persists writes.
#   relay: a relay.Relay, switched by the coil "spray_relay".
#
# History: every sample (sequence, time, status, measurement words) also
# goes into a preallocated ring (firmware/history.py). The gateway reads it
# through the history window (regmap.HISTORY_BASE): it writes the first
# sequence number it wants to the holding register "history_seq", then reads
# input registers in the window; the window is filled from the ring only
# when a read touches it (on_window_read), with each record's age computed
# at that moment. Nothing in the request path allocates.

from firmware import config_store, hal, regmap
from firmware.clock import ticks_add, ticks_diff
from firmware.config_store import ConfigStore
from firmware.history import History
from firmware.modbus_rtu import RtuSlave
from firmware.regbank import RegisterBank

# Bits of Node.boot_flags: what the boot self-test found.
BOOT_REGMAP = 0x0001  # the register map is inconsistent: no sample is published as valid
BOOT_SENSOR = 0x0002  # the sensor gave no valid sample yet (cleared by the first one)
BOOT_CONFIG = 0x0004  # the stored configuration was unreadable or invalid: defaults in force
BOOT_WATCHDOG = 0x0008  # the previous run ended in a watchdog reset

# The main loop feeds the watchdog only while the node made progress (a
# request answered or a valid sample) within this window.
HEALTH_WINDOW_MS = 5 * 60 * 1000

# Samples kept for the history window: 10 minutes at the default 1 s interval.
HISTORY_CAPACITY = 600

# Sample times are kept modulo 2**30 ms, the period of the ESP32's
# ticks_ms(), so that they fit the ring's u32 slots and stay small ints on
# the board; ages are differences modulo the same period (valid up to 12
# days, far beyond what the ring holds).
TICKS_MASK = 0x3FFFFFFF


def rows_problems(inputs, holdings, coils):
    """Consistency problems of one kind's register tables, as a list of messages."""
    problems = []
    for table, label in ((inputs, "input"), (holdings, "holding")):
        used = {}
        names = {}
        for row in table:
            name = row[0]
            if name in names:
                problems.append(label + " " + name + ": duplicate name")
            names[name] = True
            fmt = row[2]
            if fmt < 0 or fmt >= len(regmap.FORMAT_WORDS):
                problems.append(label + " " + name + ": unknown format")
                continue
            if row[3] <= 0:
                problems.append(label + " " + name + ": scale must be positive")
            for a in range(row[1], row[1] + regmap.FORMAT_WORDS[fmt]):
                if a in used:
                    problems.append(label + " " + name + ": overlaps " + used[a])
                used[a] = name
            if label == "holding":
                bits = 16 * regmap.FORMAT_WORDS[fmt]
                signed = fmt == regmap.S16 or fmt == regmap.S32
                low = -(1 << (bits - 1)) if signed else 0
                high = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
                lo, hi, default = row[5], row[6], row[7]
                if not (low <= lo <= hi <= high):
                    problems.append(label + " " + name + ": range does not fit the format")
                if not (lo <= default <= hi):
                    problems.append(label + " " + name + ": default out of range")
            elif row[1] < regmap.MEASUREMENT_BASE and row not in regmap.DIAGNOSTICS:
                problems.append(label + " " + name + ": measurement below MEASUREMENT_BASE")
    seen = {}
    for row in coils:
        if row[1] in seen:
            problems.append("coil " + row[0] + ": duplicate address")
        seen[row[1]] = True
    return problems


def regmap_problems(kind):
    return rows_problems(regmap.input_registers(kind), regmap.holding_registers(kind), regmap.coils(kind))


def _has_row(rows, name):
    for row in rows:
        if row[0] == name:
            return True
    return False


class Node:
    def __init__(
        self, kind, sensor, boot_ms, unit_id=0, boot_count=1, store=None, relay=None, history_capacity=HISTORY_CAPACITY
    ):
        self.kind = kind
        self.sensor = sensor
        self.bank = RegisterBank(kind)
        if unit_id:
            self.bank.set_holding_raw("unit_id", unit_id)
        self.store = store if store is not None else ConfigStore(None)
        self.store.load(self.bank, unit_id)
        self.slave = RtuSlave(self.bank.get_holding_raw("unit_id"), self.bank)
        self.boot_ms = boot_ms
        self.now_ms = boot_ms
        self.seq = 0
        self.sample_ms = boot_ms
        self.next_sample_ms = boot_ms
        self.sensor_errors = 0
        self.last_good_ms = boot_ms
        self.last_frame_ms = boot_ms
        self.boot_flags = 0
        # Uptime as whole seconds plus a millisecond remainder: a plain ms
        # count would leave MicroPython's small-int range after 12 days, and
        # ticks_diff() against boot_ms is only valid for half the tick period.
        self._up_s = 0
        self._up_ms = 0
        self._up_last = boot_ms
        # The history ring and the layout of its window.
        self.history = History(history_capacity, regmap.measurement_words(kind))
        self._record_words = regmap.history_record_words(kind)
        setattr(self.bank, "on_window_read", self._fill_window)
        self.poll_errors = 0
        self._sensor_poll = getattr(sensor, "poll", None)
        self.bank.set_input_raw("boot_count", boot_count & 0xFFFF)
        self.bank.set_input_raw("sensor_status", regmap.STATUS_ABSENT)
        self._sensor_hook = getattr(sensor, "on_holding_written", None)
        # setattr: RegisterBank declares its hooks as None until someone listens.
        setattr(self.bank, "on_holding_written", self._holding_written)
        # The relay follows the coil "spray_relay", if this kind has one.
        self.relay = None
        self.relay_coil = -1
        if relay is not None and _has_row(self.bank.coil_rows, "spray_relay"):
            self.relay = relay
            self.relay_coil = regmap.find(self.bank.coil_rows, "spray_relay")[1]
            setattr(self.bank, "on_coil_written", self._coil_written)
            self.bank.coils[self.relay_coil] = 1 if relay.on else 0
        # Optional diagnostic register (published only if the register map has it).
        self._boot_flags_register = _has_row(self.bank.input_rows, "boot_flags")

    @property
    def unit_id(self):
        return self.slave.unit_id

    # -- boot ----------------------------------------------------------------------
    def self_test(self, now_ms, reset_cause=0):
        """Boot self-test: register map, stored configuration, sensor presence.

        The result is kept in boot_flags (and the "boot_flags" input register
        when the map has one); its effect on sensor_status: a broken register
        map keeps STATUS_OK off for good, an absent sensor shows as
        STATUS_ABSENT from the first sample taken here. Returns the register
        map problems (for the console).
        """
        flags = 0
        problems = regmap_problems(self.kind)
        if problems:
            flags |= BOOT_REGMAP
        status = self.store.status
        if status == config_store.CORRUPT or status == config_store.INVALID:
            flags |= BOOT_CONFIG
        if reset_cause == hal.WDT_RESET:
            flags |= BOOT_WATCHDOG
        self.boot_flags = flags
        self.sample(now_ms)
        if not self.bank.get_input("sensor_status") & regmap.STATUS_OK:
            self._set_boot_flags(self.boot_flags | BOOT_SENSOR)
        else:
            self._set_boot_flags(self.boot_flags)
        return problems

    def _set_boot_flags(self, flags):
        self.boot_flags = flags
        if self._boot_flags_register:
            self.bank.set_input_raw("boot_flags", flags)

    # -- sampling ------------------------------------------------------------------
    def sample_due(self, now_ms):
        return ticks_diff(now_ms, self.next_sample_ms) >= 0

    def sample(self, now_ms):
        """Read the sensor once and publish the sample in the registers."""
        bank = self.bank
        try:
            status = self.sensor.read(bank, now_ms)
        except Exception:  # a driver bug must not stop the node answering
            status = regmap.STATUS_ABSENT
        if self.boot_flags & BOOT_REGMAP:
            status &= ~regmap.STATUS_OK
        if status & regmap.STATUS_OK:
            self.last_good_ms = now_ms
            if self.boot_flags & BOOT_SENSOR:
                self._set_boot_flags(self.boot_flags & ~BOOT_SENSOR)
        else:
            self.sensor_errors += 1
        self.seq += 1
        self.sample_ms = now_ms
        status &= 0xFFFF
        bank.set_input_raw("sample_seq", self.seq)
        bank.set_input_raw("sensor_status", status)
        bank.set_input_raw("sensor_errors", self.sensor_errors & 0xFFFF)
        history = self.history
        history.push(self.seq, now_ms & TICKS_MASK, bank.inputs, regmap.MEASUREMENT_BASE, status)
        bank.set_input_raw("history_oldest", history.oldest())
        self.next_sample_ms = ticks_add(now_ms, bank.get_holding_raw("sample_interval"))

    # -- the bus -------------------------------------------------------------------
    def handle(self, frame, length, now_ms):
        """One request frame in; reply length in self.slave.tx out (0: silent)."""
        bank = self.bank
        slave = self.slave
        self.now_ms = now_ms
        age = ticks_diff(now_ms, self.sample_ms)
        bank.set_input_raw("sample_age", age if age < 0xFFFF else 0xFFFF)
        self._advance(now_ms)
        bank.set_input_raw("uptime", self._up_s)
        bank.set_input_raw("frames_ok", slave.frames_ok & 0xFFFF)
        bank.set_input_raw("crc_errors", slave.crc_errors & 0xFFFF)
        answered = slave.frames_ok
        n = slave.handle(frame, length)
        if slave.frames_ok != answered:
            self.last_frame_ms = now_ms
        return n

    def _advance(self, now_ms):
        d = ticks_diff(now_ms, self._up_last)
        if d <= 0:
            return
        self._up_last = now_ms
        ms = self._up_ms + d
        if ms >= 1000:
            self._up_s += ms // 1000
            ms %= 1000
        self._up_ms = ms

    @property
    def uptime_s(self):
        return self._up_s

    def _fill_window(self, offset, count):
        """The bank's on_window_read hook: put the records a read touches into the window.

        Record r shows sample history_seq + r, or zeros (an empty record) when
        the ring does not hold it. Only the records the read overlaps are
        written. Allocates nothing (as long as the numbers are small ints).
        """
        bank = self.bank
        window = bank.window
        history = self.history
        rw = self._record_words
        width = history.width
        words = history.words
        start = bank.get_holding_raw("history_seq")
        now = self.now_ms & TICKS_MASK
        header = regmap.HISTORY_HEADER_WORDS
        for r in range(offset // rw, (offset + count - 1) // rw + 1):
            base = r * rw
            seq = start + r
            slot = history.slot_of(seq) if seq else -1
            if slot < 0:
                for k in range(rw):
                    window[base + k] = 0
                continue
            window[base] = (seq >> 16) & 0xFFFF
            window[base + 1] = seq & 0xFFFF
            age = (now - history.stamps[slot]) & TICKS_MASK
            window[base + 2] = age >> 16
            window[base + 3] = age & 0xFFFF
            window[base + 4] = history.statuses[slot]
            src = slot * width
            base += header
            for k in range(width):
                window[base + k] = words[src + k]

    def _holding_written(self, name):
        if self._sensor_hook is not None:
            self._sensor_hook(self.bank, name)
        self.store.holding_written(self.bank, name)

    def _coil_written(self, address, on):
        relay = self.relay
        if relay is not None and address == self.relay_coil:
            relay.set(on, self.now_ms)

    # -- housekeeping --------------------------------------------------------------
    def tick(self, now_ms):
        """Time-driven duties between requests: the relay's maximum on-time, the sensor's poll()."""
        relay = self.relay
        if relay is not None and relay.poll(now_ms):
            self.bank.coils[self.relay_coil] = 0
        self._advance(now_ms)
        poll = self._sensor_poll
        if poll is not None:
            try:
                poll(self.bank, now_ms)
            except Exception:  # a driver bug must not stop the node answering (it shows in the samples)
                self.poll_errors += 1

    def healthy(self, now_ms, window_ms=HEALTH_WINDOW_MS):
        """True while the node made progress recently: the main loop feeds the watchdog only then.

        Progress is a request answered or a valid sample. A node with an
        absent sensor on a bus nobody polls is restarted after the window,
        which may revive a sensor UART that hung; boot_count shows it.
        """
        if ticks_diff(now_ms, self.last_frame_ms) < window_ms:
            return True
        return ticks_diff(now_ms, self.last_good_ms) < window_ms
