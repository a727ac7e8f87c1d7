"""Drive the independent Modbus master `mbpoll` (Debian package) against a port."""

from __future__ import annotations

import re
import shutil
import subprocess

_VALUE = re.compile(r"^\[(\d+)\]:\s+(-?\d+)", re.MULTILINE)

# mbpoll -t codes: 0 coils, 3 input registers, 4 holding registers.
TABLE = {"coil": "0", "input": "3", "holding": "4"}


def mbpoll(port: str, unit: int, table: str, address: int, *values: int, count: int = 1,
           baud: int = 9600, timeout: float = 5.0) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("mbpoll")
    if exe is None:
        raise RuntimeError("mbpoll is not installed: run `make test`, which installs it (Debian package mbpoll)")
    # -0: 0-based references, matching firmware/regmap.py; -1: one poll only. The timeout is generous (5 s,
    # mbpoll allows 10): the simulated node answers from a thread of the test process, which a loaded host can
    # keep off the CPU for over a second (a coil write timed out at 1 s under stress-ng); a test of silence
    # passes its own.
    cmd = [exe, "-m", "rtu", "-a", str(unit), "-b", str(baud), "-P", "none", "-d", "8", "-s", "1",
           "-t", TABLE[table], "-0", "-r", str(address), "-1", "-o", str(timeout)]
    if not values:
        cmd += ["-c", str(count)]
    cmd.append(port)
    cmd += [str(v) for v in values]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def read(port: str, unit: int, table: str, address: int, count: int, baud: int = 9600) -> dict[int, int]:
    proc = mbpoll(port, unit, table, address, count=count, baud=baud)
    if proc.returncode != 0:
        raise AssertionError(f"mbpoll failed ({proc.returncode}): {proc.stdout[-500:]} {proc.stderr}")
    found = {int(a): int(v) for a, v in _VALUE.findall(proc.stdout)}
    if len(found) != count:
        raise AssertionError(f"mbpoll returned {len(found)} of {count} values:\n{proc.stdout}")
    return found
