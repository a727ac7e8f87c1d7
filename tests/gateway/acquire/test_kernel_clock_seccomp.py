"""Under a real seccomp filter that refuses the @clock calls (as the unit's does), timedated is asked instead.

The child process loads the filter with libseccomp (the library systemd itself uses), refusing
adjtimex and clock_adjtime (glibc's adjtimex is the latter) with EPERM, as
``SystemCallFilter=@system-service`` plus ``ProtectClock=yes`` do. systemd-timedated cannot run
here (systemd is not PID 1): a stand-in timedatectl answers.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.gateway.acquire.test_timestamps import fake_timedatectl

CHILD = textwrap.dedent(
    """
    import ctypes, ctypes.util, errno, sys
    lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2")
    lib.seccomp_init.restype = ctypes.c_void_p
    ctx = ctypes.c_void_p(lib.seccomp_init(ctypes.c_uint32(0x7FFF0000)))  # SCMP_ACT_ALLOW
    for name in (b"adjtimex", b"clock_adjtime"):
        nr = lib.seccomp_syscall_resolve_name(name)
        assert lib.seccomp_rule_add(ctx, ctypes.c_uint32(0x00050000 | errno.EPERM), nr, 0) == 0  # SCMP_ACT_ERRNO
    assert lib.seccomp_load(ctx) == 0

    from gateway.acquire.kernel_clock import KernelClockError, KernelSyncProbe, read_kernel_clock
    from gateway.acquire.timestamps import ClockValidity
    try:
        read_kernel_clock()
        print("adjtimex allowed")
    except KernelClockError as error:
        print("adjtimex refused:", error.errno == errno.EPERM)
    probe = KernelSyncProbe(timedatectl=sys.argv[1])
    valid = ClockValidity(require_sync=True, synced=probe)
    print("valid:", valid(), "via timedated:", probe.via_timedated)
    """
)


def test_a_seccomp_refusal_of_adjtimex_falls_back_to_timedated(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", CHILD, fake_timedatectl(tmp_path, "yes")], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["adjtimex refused: True", "valid: True via timedated: True"], done.stdout
