# The register bank of one node: the memory the Modbus slave serves.
#
# Built from firmware.regmap for a node kind. Storage is preallocated
# (array('H') and bytearray), so serving a request allocates nothing.
#
# Input registers live in two tables: `inputs` (address 0 .. input_count - 1:
# diagnostics and measurements) and `window` (the history window, address
# regmap.HISTORY_BASE on). The addresses between them are not registers: a
# read that touches them is refused with exception 2, as is one past the
# window. The window's content is produced on demand: the slave calls
# on_window_read(offset, count) before it copies from the window, and the
# node fills it from its history ring then.

from array import array

from firmware import regmap

# Exception codes a bank hands back to the slave.
OK = 0
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3


class RegisterBank:
    def __init__(self, kind):
        self.kind = kind
        self.input_rows = regmap.input_registers(kind)
        self.holding_rows = regmap.holding_registers(kind)
        self.coil_rows = regmap.coils(kind)
        self.inputs = array("H", [0] * regmap.input_count(kind))
        self.holdings = array("H", [0] * regmap.holding_count(kind))
        self.coils = bytearray(regmap.coil_count(kind))
        self.window_base = regmap.HISTORY_BASE
        self.window = array("H", [0] * regmap.history_window_words(kind))
        # Per holding address: the row that starts there, or the row whose
        # second word it is (so a 32-bit value can be written as two words).
        self._holding_at = [None] * len(self.holdings)
        for row in self.holding_rows:
            for i in range(regmap.FORMAT_WORDS[row[2]]):
                self._holding_at[row[1] + i] = row
        self._input_by_name = {}
        for row in self.input_rows:
            self._input_by_name[row[0]] = row
        self._holding_by_name = {}
        for row in self.holding_rows:
            self._holding_by_name[row[0]] = row
        # Called with (name) after a holding register was written over Modbus.
        self.on_holding_written = None
        # Called with (address, on) after a coil was written over Modbus.
        self.on_coil_written = None
        # Called with (offset in window, count) before a read of the history window is answered.
        self.on_window_read = None
        self.load_defaults()
        self.set_input_raw("fw_version", regmap.FIRMWARE_VERSION)
        self.set_input_raw("node_kind", kind)

    # -- values by name ------------------------------------------------------
    def load_defaults(self):
        for row in self.holding_rows:
            self._store(self.holdings, row[1], row[2], row[7] & 0xFFFFFFFF)

    def set_input_raw(self, name, raw):
        row = self._input_by_name[name]
        self._store(self.inputs, row[1], row[2], raw)

    def set_input(self, name, value):
        """Store a physical value, scaled and clamped to the register format."""
        row = self._input_by_name[name]
        self._store(self.inputs, row[1], row[2], regmap.encode(value, row[2], row[3]))

    def get_input(self, name):
        row = self._input_by_name[name]
        raw = regmap.decode_raw(regmap.words_to_raw(self.inputs, row[1], row[2]), row[2])
        return raw / row[3] if row[3] != 1 else raw

    def get_holding_raw(self, name):
        row = self._holding_by_name[name]
        return regmap.decode_raw(regmap.words_to_raw(self.holdings, row[1], row[2]), row[2])

    def get_holding(self, name):
        row = self._holding_by_name[name]
        raw = self.get_holding_raw(name)
        return raw / row[3] if row[3] != 1 else raw

    def set_holding_raw(self, name, raw):
        row = self._holding_by_name[name]
        self._store(self.holdings, row[1], row[2], raw & 0xFFFFFFFF)

    def _store(self, table, address, fmt, raw):
        if regmap.FORMAT_WORDS[fmt] == 1:
            table[address] = raw & 0xFFFF
        else:
            table[address] = (raw >> 16) & 0xFFFF
            table[address + 1] = raw & 0xFFFF

    # -- the slave's interface -------------------------------------------------
    def check_holding(self, address, value):
        """Exception code for writing value to one holding register word, or OK."""
        if address >= len(self._holding_at):
            return ILLEGAL_ADDRESS
        row = self._holding_at[address]
        if row is None:
            return ILLEGAL_ADDRESS
        if regmap.FORMAT_WORDS[row[2]] == 2:
            # Range of a 32-bit value is checked on its low word, once the
            # whole value is known: see check_holding_block.
            return OK
        raw = regmap.decode_raw(value, row[2])
        if raw < row[5] or raw > row[6]:
            return ILLEGAL_VALUE
        return OK

    def check_holding_block(self, address, count, frame, offset):
        """Validate a multi-register write before any of it is applied.

        frame[offset:] holds count big-endian words. A 32-bit register must be
        written whole (both words in the same request) and its value in range.
        """
        for i in range(count):
            a = address + i
            value = (frame[offset + 2 * i] << 8) | frame[offset + 2 * i + 1]
            code = self.check_holding(a, value)
            if code:
                return code
            row = self._holding_at[a]
            if regmap.FORMAT_WORDS[row[2]] == 2:
                first = row[1]
                if first < address or first + 1 >= address + count:
                    return ILLEGAL_ADDRESS
                if a == first:
                    high = value
                    p = offset + 2 * (i + 1)
                    low = (frame[p] << 8) | frame[p + 1]
                    raw = regmap.decode_raw((high << 16) | low, row[2])
                    if raw < row[5] or raw > row[6]:
                        return ILLEGAL_VALUE
        return OK

    def write_holding(self, address, value):
        self.holdings[address] = value
        row = self._holding_at[address]
        # Announce a 32-bit value once its low word is in.
        if self.on_holding_written is not None and address == row[1] + regmap.FORMAT_WORDS[row[2]] - 1:
            self.on_holding_written(row[0])

    def write_coil(self, address, on):
        self.coils[address] = 1 if on else 0
        if self.on_coil_written is not None:
            self.on_coil_written(address, on)
