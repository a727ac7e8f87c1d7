# Helpers shared by the firmware's MicroPython-compatible test modules.
# Plain MicroPython (no pytest, no typing): tests/support/micropython.py copies
# this file next to the test module it runs under MicroPython.

import os

from firmware.modbus_rtu import crc16

_made = [0]


def fresh_dir(prefix):
    """An empty folder: a temporary one under CPython, one in the in-memory FS under MicroPython."""
    try:
        import tempfile

        return tempfile.mkdtemp(prefix="sitewatch-" + prefix + "-")
    except ImportError:
        _made[0] += 1
        path = "/" + prefix + "test" + str(_made[0])
        os.mkdir(path)
        return path


def remove_dir(path):
    for name in os.listdir(path):
        os.remove(path + "/" + name)
    os.rmdir(path)


def with_crc(*body):
    """A Modbus RTU frame: the bytes given plus their CRC-16/MODBUS, low byte first."""
    buf = bytearray(body)
    crc = crc16(buf, len(buf))
    buf.append(crc & 0xFF)
    buf.append(crc >> 8)
    return bytes(buf)
