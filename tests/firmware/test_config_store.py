# Persisted configuration: round trip, corrupt files, atomic writes, factory
# reset, boot counter. MicroPython-compatible (no pytest): under MicroPython
# the files live in the WebAssembly build's in-memory file system.

import json
import os

from firmware import config_store, regmap
from firmware.config_store import ConfigStore, write_atomic
from firmware.node import BOOT_CONFIG, Node
from firmware.regbank import RegisterBank
from tests.firmware.mp_support import with_crc

_dirs = [0]


def fresh_dir():
    """An empty directory of its own for one test."""
    try:
        import tempfile

        return tempfile.mkdtemp(prefix="sitewatch-config-")
    except ImportError:
        _dirs[0] += 1
        path = "/cfgtest" + str(_dirs[0])
        os.mkdir(path)
        return path


def remove_dir(path):
    for name in os.listdir(path):
        os.remove(path + "/" + name)
    os.rmdir(path)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def read(path):
    with open(path) as f:
        return f.read()




def reply(node, request):
    n = node.handle(request, len(request), 0)
    return bytes(node.slave.tx[:n])


class GoodSensor:
    def read(self, bank, now_ms):
        return regmap.STATUS_OK


def dust_node(root, unit_id=0):
    return Node(regmap.KIND_DUST, GoodSensor(), 0, unit_id=unit_id, store=ConfigStore(root))


def stored_document(root, kind=regmap.KIND_DUST, flashed=0, **values):
    doc = {"kind": kind, "flashed_unit_id": flashed, "holding": values}
    write(root + "/" + config_store.CONFIG_FILE, json.dumps(doc))


# -- round trip -----------------------------------------------------------------------
def test_modbus_write_is_persisted_and_loaded_at_the_next_boot():
    root = fresh_dir()
    try:
        node = dust_node(root, unit_id=5)
        assert node.store.status == config_store.MISSING
        request = with_crc(5, 6, 0, 3, 0x01, 0xF4)  # sample_interval 500 ms
        assert reply(node, request) == request
        assert node.store.dirty
        assert node.store.save_if_dirty(node.bank)
        assert not node.store.dirty
        assert not node.store.save_if_dirty(node.bank)
        again = dust_node(root, unit_id=5)
        assert again.store.status == config_store.LOADED
        assert again.bank.get_holding_raw("sample_interval") == 500
        assert again.unit_id == 5
    finally:
        remove_dir(root)


def test_rewriting_the_same_values_does_not_touch_the_flash():
    root = fresh_dir()
    try:
        node = dust_node(root, unit_id=5)
        request = with_crc(5, 6, 0, 3, 0x01, 0xF4)
        reply(node, request)
        node.store.save_if_dirty(node.bank)
        assert node.store.saves == 1
        reply(node, request)
        assert node.store.save_if_dirty(node.bank)
        assert node.store.saves == 1
        # Nor after a reboot, when the values came from the file.
        again = dust_node(root, unit_id=5)
        reply(again, request)
        again.store.save_if_dirty(again.bank)
        assert again.store.saves == 0
        reply(again, with_crc(5, 6, 0, 3, 0x01, 0xF5))
        again.store.save_if_dirty(again.bank)
        assert again.store.saves == 1
    finally:
        remove_dir(root)


def test_signed_32_bit_values_round_trip():
    root = fresh_dir()
    try:
        store = ConfigStore(root)
        bank = RegisterBank(regmap.KIND_TILT)
        store.load(bank)
        bank.set_holding_raw("baseline_pitch", -12345)
        store.save(bank)
        bank2 = RegisterBank(regmap.KIND_TILT)
        assert ConfigStore(root).load(bank2) == config_store.LOADED
        assert bank2.get_holding_raw("baseline_pitch") == -12345
    finally:
        remove_dir(root)


def test_unit_id_set_over_modbus_survives_until_a_new_unit_id_is_flashed():
    root = fresh_dir()
    try:
        node = dust_node(root, unit_id=5)
        reply(node, with_crc(5, 6, 0, 0, 0, 9))  # unit_id 9 (applies after restart)
        node.store.save_if_dirty(node.bank)
        assert dust_node(root, unit_id=5).unit_id == 9
        # Flashed again with unit 6: the flasher's ID takes over, and is stored.
        reflashed = dust_node(root, unit_id=6)
        assert reflashed.unit_id == 6
        reflashed.store.save_if_dirty(reflashed.bank)
        assert dust_node(root, unit_id=6).unit_id == 6
    finally:
        remove_dir(root)


# -- bad files ---------------------------------------------------------------------------
def test_corrupt_file_falls_back_to_defaults_and_is_reported():
    root = fresh_dir()
    try:
        write(root + "/" + config_store.CONFIG_FILE, '{"kind": 1, "holding": {"sample_inter')
        node = dust_node(root, unit_id=3)
        assert node.store.status == config_store.CORRUPT
        assert node.store.load_errors == 1
        assert node.bank.get_holding_raw("sample_interval") == 1000
        assert node.unit_id == 3
        node.self_test(0)
        assert node.boot_flags & BOOT_CONFIG
    finally:
        remove_dir(root)


def test_out_of_range_value_rejects_the_whole_file():
    root = fresh_dir()
    try:
        stored_document(root, sample_interval=500, kappa=5000)  # kappa maximum is 2000
        node = dust_node(root)
        assert node.store.status == config_store.INVALID
        assert node.store.load_errors == 1
        assert node.bank.get_holding_raw("sample_interval") == 1000
        assert node.bank.get_holding_raw("kappa") == 300
        node.self_test(0)
        assert node.boot_flags & BOOT_CONFIG
    finally:
        remove_dir(root)


def test_wrong_types_and_other_kinds_are_invalid():
    root = fresh_dir()
    try:
        stored_document(root, sample_interval=True)
        assert dust_node(root).store.status == config_store.INVALID
        stored_document(root, sample_interval="500")
        assert dust_node(root).store.status == config_store.INVALID
        stored_document(root, kind=regmap.KIND_WIND, sample_interval=500)
        assert dust_node(root).store.status == config_store.INVALID
        write(root + "/" + config_store.CONFIG_FILE, "[1, 2]")
        assert dust_node(root).store.status == config_store.CORRUPT
    finally:
        remove_dir(root)


def test_unknown_and_missing_names_are_tolerated():
    # A file from a firmware with other registers: known values apply, the rest keep defaults.
    root = fresh_dir()
    try:
        stored_document(root, sample_interval=250, retired_register=7)
        node = dust_node(root)
        assert node.store.status == config_store.LOADED
        assert node.bank.get_holding_raw("sample_interval") == 250
        assert node.bank.get_holding_raw("kappa") == 300
    finally:
        remove_dir(root)


# -- atomic writes -----------------------------------------------------------------------------
def test_save_leaves_no_temporary_file_and_replaces_the_old_one():
    root = fresh_dir()
    try:
        path = root + "/" + config_store.CONFIG_FILE
        write_atomic(path, "old")
        write_atomic(path, "new")
        assert read(path) == "new"
        assert sorted(os.listdir(root)) == [config_store.CONFIG_FILE]
    finally:
        remove_dir(root)


class PowerCut(Exception):
    pass


class FileSystem:
    """os as config_store sees it, with a rename that can fail like a given file system."""

    def __init__(self, rename_mode):
        self.mode = rename_mode
        self.renames = 0

    def rename(self, old, new):
        self.renames += 1
        if self.mode == "cut":
            raise PowerCut()
        if self.mode == "fat":
            try:
                os.stat(new)
            except OSError:
                return os.rename(old, new)
            raise OSError(17)  # EEXIST: FAT does not rename over a file
        return os.rename(old, new)

    def remove(self, path):
        return os.remove(path)

    def stat(self, path):
        return os.stat(path)


def with_file_system(fs, action):
    real = config_store.os
    config_store.os = fs
    try:
        return action()
    finally:
        config_store.os = real


def test_new_content_goes_to_a_temporary_file_first():
    root = fresh_dir()
    try:
        path = root + "/" + config_store.CONFIG_FILE
        write_atomic(path, "old")
        try:
            with_file_system(FileSystem("cut"), lambda: write_atomic(path, "new"))
        except PowerCut:
            pass
        else:
            raise AssertionError("rename was not reached")
        assert read(path) == "old"
        assert read(path + ".tmp") == "new"
    finally:
        remove_dir(root)


def test_file_system_that_cannot_rename_over_a_file():
    root = fresh_dir()
    try:
        path = root + "/" + config_store.CONFIG_FILE
        write_atomic(path, "old")
        fs = FileSystem("fat")
        with_file_system(fs, lambda: write_atomic(path, "new"))
        assert fs.renames == 2
        assert read(path) == "new"
        assert sorted(os.listdir(root)) == [config_store.CONFIG_FILE]
    finally:
        remove_dir(root)


def test_interrupted_write_keeps_the_previous_configuration():
    # Power cut while NAME.tmp was being written: the real file is untouched.
    root = fresh_dir()
    try:
        stored_document(root, sample_interval=250)
        write(root + "/" + config_store.CONFIG_FILE + ".tmp", '{"kind": 1, "hold')
        node = dust_node(root)
        assert node.store.status == config_store.LOADED
        assert node.bank.get_holding_raw("sample_interval") == 250
    finally:
        remove_dir(root)


def test_cut_between_remove_and_rename_recovers_the_new_file():
    # On a file system that cannot rename over a file, the old one is removed
    # first; a cut right then leaves only the complete NAME.tmp.
    root = fresh_dir()
    try:
        doc = {"kind": regmap.KIND_DUST, "flashed_unit_id": 0, "holding": {"sample_interval": 400}}
        write(root + "/" + config_store.CONFIG_FILE + ".tmp", json.dumps(doc))
        node = dust_node(root)
        assert node.store.status == config_store.LOADED
        assert node.bank.get_holding_raw("sample_interval") == 400
    finally:
        remove_dir(root)


def test_failed_save_is_counted_not_raised():
    store = ConfigStore("/no/such/directory/anywhere")
    bank = RegisterBank(regmap.KIND_DUST)
    store.load(bank)
    store.dirty = True
    assert not store.save_if_dirty(bank)
    assert store.save_errors == 1
    assert not store.dirty


# -- factory reset -------------------------------------------------------------------------------
def test_factory_reset_restores_defaults_and_the_flashed_unit_id():
    root = fresh_dir()
    try:
        node = dust_node(root, unit_id=5)
        reply(node, with_crc(5, 6, 0, 3, 0x01, 0xF4))  # sample interval 500
        reply(node, with_crc(5, 6, 0, 0, 0, 9))  # unit id 9
        node.store.save_if_dirty(node.bank)
        key = regmap.FACTORY_RESET_KEY
        request = with_crc(5, 6, 0, 4, key >> 8, key & 0xFF)
        assert reply(node, request) == request
        assert node.store.factory_resets == 1
        assert node.bank.get_holding_raw("sample_interval") == 1000
        assert node.bank.get_holding_raw("unit_id") == 5
        assert node.bank.get_holding_raw("factory_reset") == 0
        node.store.save_if_dirty(node.bank)
        again = dust_node(root, unit_id=5)
        assert again.bank.get_holding_raw("sample_interval") == 1000
        assert again.unit_id == 5
    finally:
        remove_dir(root)


def test_factory_reset_register_ignores_a_wrong_key():
    node = dust_node(None, unit_id=5)
    reply(node, with_crc(5, 6, 0, 3, 0x01, 0xF4))
    node.store.dirty = False
    request = with_crc(5, 6, 0, 4, 0x12, 0x34)
    assert reply(node, request) == request
    assert node.store.factory_resets == 0
    assert node.bank.get_holding_raw("sample_interval") == 500
    assert node.bank.get_holding_raw("factory_reset") == 0
    assert not node.store.dirty


def test_node_without_persistence_still_resets_and_writes_nothing():
    node = dust_node(None, unit_id=2)
    reply(node, with_crc(2, 6, 0, 3, 0x01, 0xF4))
    key = regmap.FACTORY_RESET_KEY
    reply(node, with_crc(2, 6, 0, 4, key >> 8, key & 0xFF))
    assert node.bank.get_holding_raw("sample_interval") == 1000
    assert node.store.save_if_dirty(node.bank)
    assert node.store.saves == 0


# -- boot counter ------------------------------------------------------------------------------
def test_boot_counter_counts_and_persists():
    root = fresh_dir()
    try:
        assert ConfigStore(root).count_boot() == 1
        assert ConfigStore(root).count_boot() == 2
        assert ConfigStore(root).count_boot() == 3
        assert read(root + "/" + config_store.BOOT_FILE) == "3"
        node = Node(regmap.KIND_DUST, GoodSensor(), 0, boot_count=ConfigStore(root).count_boot())
        assert node.bank.get_input("boot_count") == 4
    finally:
        remove_dir(root)


def test_corrupt_boot_counter_restarts_and_is_counted():
    root = fresh_dir()
    try:
        write(root + "/" + config_store.BOOT_FILE, "x7")
        store = ConfigStore(root)
        assert store.count_boot() == 1
        assert store.load_errors == 1
        assert ConfigStore(root).count_boot() == 2
    finally:
        remove_dir(root)
