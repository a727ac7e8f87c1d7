"""One gateway per queue and store: an exclusive lock file beside each.

Two gateways started with the same configuration both wrote the same queue
and store (duplicate rows, phantom outages) while only one owned the serial
port. The lock is an ``flock(2)`` on ``<file>.lock``: the kernel releases it
when the process ends, even on ``kill -9`` or a power cut (the lock file
stays, harmlessly, and holds the PID of the last holder). It is per open
file, so a second lock from the same process is refused too.

A network file system may not honour flock: keep the state on a local disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType


class InstanceLockError(RuntimeError):
    """The lock is held by another process, or the lock file cannot be made (the message says which)."""

    def __init__(self, message: str, holder: int | None = None) -> None:
        super().__init__(message)
        self.holder = holder


def lock_path(data_file: Path) -> Path:
    """Beside the file itself: a symlink to another gateway's store must find that gateway's lock."""
    real = Path(os.path.realpath(data_file))
    return real.with_name(real.name + ".lock")


def describe_process(pid: int) -> str:
    """"process 1234 (sitewatch run --config ...)", or without the command when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"process {pid}"
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    # "python3 /opt/sitewatch/.venv/bin/sitewatch run ...": show "sitewatch run ...".
    if len(words) > 1 and Path(words[0]).name.startswith("python") and not words[1].startswith("-"):
        words = words[1:]
    shown = " ".join(Path(words[0]).name if i == 0 else w for i, w in enumerate(words))
    return f"process {pid} ({shown})" if shown else f"process {pid}"


class InstanceLock:
    """Held from acquire() until release() (or the process's end)."""

    def __init__(self, data_file: Path, what: str) -> None:
        self.data_file = data_file
        self.path = lock_path(data_file)
        self.what = what  # "queue" or "store", for the message
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as error:
            raise InstanceLockError(
                f"{self.path}: cannot create the {self.what}'s lock file: {error.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = describe_process(holder) if holder else "another process"
            raise InstanceLockError(
                f"{self.data_file}: the {self.what} is in use by {who} (lock {self.path}): one gateway per "
                f"{self.what}; stop the other one (systemctl stop sitewatch-gateway) or give this one other paths",
                holder,
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)  # the next holder writes its own PID; a stale one would mislead
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class InstanceLocks:
    """The locks of one gateway: its queue and, when enabled, its store; all or none."""

    def __init__(self, files: list[tuple[Path, str]]) -> None:
        self.locks = [InstanceLock(path, what) for path, what in files]

    def acquire(self) -> None:
        taken: list[InstanceLock] = []
        try:
            for lock in self.locks:
                lock.acquire()
                taken.append(lock)
        except BaseException:
            for lock in taken:
                lock.release()
            raise

    def release(self) -> None:
        for lock in reversed(self.locks):
            lock.release()
