# Holding-register configuration persisted to flash, and the boot counter.
#
# The configuration is a small JSON file, {"kind": 1, "flashed_unit_id": 7,
# "holding": {"unit_id": 7, "sample_interval": 1000, ...}}, keyed by register
# name so that a firmware with more (or fewer) registers still reads it.
#
# Writes are atomic: the new content goes to NAME.tmp, then os.rename() puts
# it in place, so a power cut leaves either the old or the new file, never a
# half-written one. LittleFS (the ESP32 default) renames over an existing file;
# FAT does not, and there the old file is removed first: a cut between the
# two steps leaves only NAME.tmp, which load() then uses.
#
# Loading validates every value against the register map's range; a file
# that cannot be parsed, belongs to another node kind, or holds a value out
# of range is not applied at all (defaults stay in force), and the reason is
# kept in `status` and counted in `load_errors`.
#
# The unit ID: the flasher writes the board's unit ID into node.json and the
# node passes it here as default_unit_id. It is the unit ID of the factory
# state (a factory reset must not move a node to address 1 where another node
# may answer). A unit ID changed over Modbus is stored and wins over it, until
# the board is flashed with a different unit ID: the file remembers which
# flashed ID it was saved under, and a new one takes over.

import json
import os

from firmware import regmap

CONFIG_FILE = "config.json"
BOOT_FILE = "boot_count"

# status values
LOADED = 0  # the stored configuration is in force
MISSING = 1  # nothing stored yet: defaults
CORRUPT = 2  # unreadable file: defaults
INVALID = 3  # another kind's file or a value out of range: defaults
STATUS_NAMES = ("loaded", "missing", "corrupt", "invalid")

# Holding registers that are commands, not settings: never stored. A write
# of one still marks the configuration dirty, as a command may change
# settings (zero_baseline sets the stored baseline_pitch / baseline_roll).
COMMANDS = ("factory_reset", "zero_baseline")
# Holding registers that are working state, not settings: never stored, and
# writing them costs no flash write (the gateway moves history_seq on every
# history fetch).
VOLATILE = ("history_seq",)


def join(root, name):
    if not root:
        return name
    if root.endswith("/"):
        return root + name
    return root + "/" + name


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def write_atomic(path, text):
    """Replace the file at path with text, so that it is never seen half-written."""
    tmp = path + ".tmp"
    f = open(tmp, "w")
    try:
        f.write(text)
    finally:
        f.close()
    try:
        os.rename(tmp, path)
    except OSError:
        # A file system that refuses to rename over an existing file.
        try:
            os.remove(path)
        except OSError:
            pass
        os.rename(tmp, path)


def read_text(path):
    """The file's text, or None when neither it nor its .tmp sibling exists."""
    for candidate in (path, path + ".tmp"):
        try:
            f = open(candidate)
        except OSError:
            continue
        try:
            return f.read()
        finally:
            f.close()
    return None


def _is_int(value):
    # JSON true/false arrive as bool, which must not pass for a register value.
    return type(value) is int


def parse_config(text, kind, rows):
    """Validate a stored configuration.

    Returns (status, values, flashed_unit_id) where values maps register name
    to raw value. Unknown names are ignored (a register a newer or older
    firmware had); a known name with a value out of range rejects the file.
    """
    try:
        doc = json.loads(text)
    except ValueError:
        return CORRUPT, None, 0
    if not isinstance(doc, dict):
        return CORRUPT, None, 0
    holding = doc.get("holding")
    flashed = doc.get("flashed_unit_id", 0)
    if doc.get("kind") != kind or not isinstance(holding, dict) or not _is_int(flashed):
        return INVALID, None, 0
    values = {}
    for row in rows:
        name = row[0]
        if name in COMMANDS or name in VOLATILE or name not in holding:
            continue
        raw = holding[name]
        if not _is_int(raw) or raw < row[5] or raw > row[6]:
            return INVALID, None, 0
        values[name] = raw
    return LOADED, values, flashed


class ConfigStore:
    """Keeps a RegisterBank's holding registers on flash.

    root: the directory of the files ("" on the board, a temp dir in tests),
    or None for a node without persistence (the simulator): the store then
    still carries out factory resets, it just writes nothing.

    The bank is passed to each call rather than kept, so a store exists
    before the node's bank does (main.py counts the boot first).
    """

    def __init__(self, root=None):
        self.root = root
        self.default_unit_id = 0
        self.status = MISSING
        self.dirty = False
        # What the file holds, so that rewriting the same values costs no flash write.
        self._stored = ""
        # Counters.
        self.load_errors = 0
        self.save_errors = 0
        self.saves = 0
        self.factory_resets = 0

    def path(self, name):
        return join(self.root, name)

    # -- configuration ---------------------------------------------------------------
    def _apply_factory_defaults(self, bank):
        bank.load_defaults()
        if self.default_unit_id:
            bank.set_holding_raw("unit_id", self.default_unit_id)

    def load(self, bank, default_unit_id=0):
        """Put the factory state, then the stored configuration if it is valid, into bank."""
        self.default_unit_id = default_unit_id
        self._apply_factory_defaults(bank)
        self.status = MISSING
        if self.root is None:
            return self.status
        text = None
        try:
            text = read_text(self.path(CONFIG_FILE))
        except (OSError, UnicodeError):
            self.status = CORRUPT
        if text is not None:
            status, values, flashed = parse_config(text, bank.kind, bank.holding_rows)
            self.status = status
            if values is not None:
                for name in values:
                    bank.set_holding_raw(name, values[name])
                self._stored = json.dumps(self.document(bank))
                if self.default_unit_id and flashed != self.default_unit_id:
                    # Flashed with a new unit ID since this was saved: it takes over.
                    bank.set_holding_raw("unit_id", self.default_unit_id)
                    self.dirty = True
        if self.status == CORRUPT or self.status == INVALID:
            self.load_errors += 1
        return self.status

    def holding_written(self, bank, name):
        """The bank's on_holding_written hook (via the node): a register changed over Modbus."""
        if name in VOLATILE:
            return
        if name == "factory_reset":
            if bank.get_holding_raw("factory_reset") == regmap.FACTORY_RESET_KEY:
                self.factory_reset(bank)
            # A command register reads back as 0.
            bank.set_holding_raw("factory_reset", 0)
            return
        self.dirty = True

    def factory_reset(self, bank):
        self._apply_factory_defaults(bank)
        self.factory_resets += 1
        self.dirty = True

    def document(self, bank):
        holding = {}
        for row in bank.holding_rows:
            name = row[0]
            if name not in COMMANDS and name not in VOLATILE:
                holding[name] = bank.get_holding_raw(name)
        return {"kind": bank.kind, "flashed_unit_id": self.default_unit_id, "holding": holding}

    def save(self, bank):
        """Write the configuration now. A failure is counted, never raised (the node keeps serving)."""
        self.dirty = False
        if self.root is None:
            return True
        text = json.dumps(self.document(bank))
        if text == self._stored:
            # A gateway that rewrites its settings on every poll must not wear out the flash.
            return True
        try:
            write_atomic(self.path(CONFIG_FILE), text)
        except OSError:
            self.save_errors += 1
            return False
        self._stored = text
        self.saves += 1
        return True

    def save_if_dirty(self, bank):
        """Called by the main loop after the reply went out, so flash writes never delay it."""
        if self.dirty:
            return self.save(bank)
        return False

    # -- boot counter ---------------------------------------------------------------------
    def count_boot(self):
        """Increment and persist the number of boots; return the new count."""
        if self.root is None:
            return 1
        path = self.path(BOOT_FILE)
        count = 0
        text = None
        try:
            text = read_text(path)
        except (OSError, UnicodeError):
            self.load_errors += 1
        if text is not None:
            try:
                count = int(text.strip())
            except ValueError:
                count = 0
                self.load_errors += 1
            if count < 0:
                count = 0
                self.load_errors += 1
        count += 1
        try:
            write_atomic(path, str(count))
        except OSError:
            self.save_errors += 1
        return count
