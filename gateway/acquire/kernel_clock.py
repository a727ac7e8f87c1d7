"""Is the system clock synchronised? Asked of the kernel (adjtimex), so every NTP client counts.

chrony, systemd-timesyncd, ntpd and ntpsec all tell the kernel when they have
disciplined the clock: they clear ``STA_UNSYNC`` in its time status, and the
kernel then stops answering ``TIME_ERROR``. Reading that status (adjtimex with
no modes set changes nothing and needs no privilege) is therefore the one
test that holds under any of them; a daemon-specific flag file (timesyncd's
/run/systemd/timesync/synchronized) is not written by chrony.

``synchronised`` is the sans-IO rule; ``read_kernel_clock`` is the system call.

Under the shipped systemd unit the system call itself is refused: its
``SystemCallFilter=@system-service`` and ``ProtectClock=yes`` leave out the
@clock group, adjtimex included, even for reading (systemd issue 26413).
``KernelSyncProbe`` then asks systemd-timedated (``timedatectl show``), whose
``NTPSynchronized`` is the same kernel verdict, read by adjtimex in its own
process; the unit keeps its hardening.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import logging
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

log = logging.getLogger(__name__)

# From <sys/timex.h>.
TIME_ERROR = 5  # adjtimex's return state: the clock is not synchronised
STA_UNSYNC = 0x0040  # status bit: the clock is not synchronised

# Where a time-synchronisation daemon keeps its runtime state: one of them exists where one runs.
# Used by require_sync = "auto" to tell a gateway that will be synchronised from a bench machine that never will.
SYNC_DAEMON_DIRS = (
    Path("/run/systemd/timesync"),  # systemd-timesyncd
    Path("/run/chrony"),  # chrony
    Path("/run/ntpd.pid"),  # ntpd / ntpsec
    Path("/var/lib/ntpsec"),
)


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """struct timex as glibc declares it (longs are the machine's word; the tail is reserved padding)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("reserved", ctypes.c_int * 16),  # 11 in glibc; more costs nothing and guards other ABIs
    ]


@dataclass(frozen=True)
class KernelClock:
    """What adjtimex said: its return state and the status bits."""

    state: int
    status: int
    maxerror_us: int  # the kernel's estimate of the maximum error (grows by 500 ppm while unsynchronised)


def synchronised(clock: KernelClock) -> bool:
    """The kernel's own verdict: not TIME_ERROR and STA_UNSYNC clear."""
    return clock.state != TIME_ERROR and not clock.status & STA_UNSYNC


class KernelClockError(OSError):
    pass


@functools.cache
def _adjtimex() -> Callable[[Any], int]:
    """glibc's adjtimex (the ABI whose struct _Timex describes, also on 32-bit ARM with a 64-bit time_t)."""
    try:
        function = ctypes.CDLL(None, use_errno=True).adjtimex
    except AttributeError:
        raise KernelClockError(errno.ENOSYS, "adjtimex: not in this C library") from None
    function.restype = ctypes.c_int
    return cast(Callable[[Any], int], function)


def read_kernel_clock() -> KernelClock:
    """adjtimex(2) with modes = 0: reads the kernel's time status, changes nothing."""
    timex = _Timex()
    state = int(_adjtimex()(ctypes.byref(timex)))
    if state < 0:
        err = ctypes.get_errno()
        raise KernelClockError(err, f"adjtimex: {os.strerror(err)}")
    return KernelClock(state, int(timex.status), int(timex.maxerror))


def kernel_clock_synchronised() -> bool:
    """The kernel's verdict by adjtimex; raises KernelClockError if the kernel cannot be asked."""
    return synchronised(read_kernel_clock())


def timedated_synchronised(timedatectl: str = "timedatectl", timeout: float = 10.0) -> bool:
    """systemd-timedated's NTPSynchronized property (the kernel's verdict, asked by timedated)."""
    try:
        done = subprocess.run([timedatectl, "show", "--property=NTPSynchronized", "--value"], capture_output=True,
                              text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise KernelClockError(errno.EIO, f"{timedatectl} show: {error}") from None
    answer = done.stdout.strip()
    if done.returncode != 0 or answer not in ("yes", "no"):
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"answered {answer!r}"
        raise KernelClockError(errno.EIO, f"{timedatectl} show: exit status {done.returncode}: {reason}")
    return answer == "yes"


class KernelSyncProbe:
    """Is the clock synchronised: adjtimex, or systemd-timedated where a system call filter refuses adjtimex."""

    def __init__(
        self, read: Callable[[], KernelClock] = read_kernel_clock, timedatectl: str = "timedatectl"
    ) -> None:
        self.read = read
        self.timedatectl = timedatectl
        self.via_timedated = False

    def __call__(self) -> bool:
        if not self.via_timedated:
            try:
                return synchronised(self.read())
            except KernelClockError as error:
                if error.errno not in (errno.EPERM, errno.ENOSYS):
                    raise
                self.via_timedated = True
                log.info("adjtimex is refused here (%s; the unit's system call filter): asking systemd-timedated "
                         "whether the clock is synchronised", error.strerror)
        return timedated_synchronised(self.timedatectl)


def sync_daemon_present(dirs: tuple[Path, ...] = SYNC_DAEMON_DIRS) -> bool:
    """Does a time-synchronisation daemon run (or has one run since boot) on this machine?"""
    return any(path.exists() for path in dirs)
