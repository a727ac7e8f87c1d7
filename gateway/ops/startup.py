"""Before the gateway starts: can its files be made, and is the configuration sensible? Exit statuses.

Start-up failures are one line each (the path, the reason, what to do) and a
distinct exit status, so systemd can tell a configuration error (which a
restart cannot fix: ``RestartPreventExitStatus=78``) from a passing one.

``problems`` are errors (the gateway cannot run); ``warnings`` are printed by
``config check`` and logged at start but do not stop it (a serial adapter not
plugged in yet, an alarm that can never fire for a node).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from firmware import regmap
from gateway.acquire.decode import KIND_BY_NAME
from gateway.acquire.poller import NodeConfig
from gateway.ops.config import GatewayConfig
from gateway.pipeline import default_alarms
from gateway.profiles.gust import GUST_CHANNEL
from gateway.profiles.quantities import QUANTITY_UNITS

# Exit statuses of `sitewatch run` (sysexits.h values, which systemd also shows by name).
EXIT_OK = 0
EXIT_FAILURE = 1  # an unexpected error while running (a bug: the traceback is in the log)
EXIT_IO = 74  # EX_IOERR: the queue or store could not be opened or written at start; a restart may help
EXIT_IN_USE = 75  # EX_TEMPFAIL: another gateway holds the queue or store; a restart after it stopped works
EXIT_CONFIG = 78  # EX_CONFIG: the configuration is wrong or names unusable paths; fix it, restarting won't

# File systems that hold no files of their own (procfs, sysfs): nothing can be created under them.
_NO_STORAGE_HINT = "a kernel file system (like /proc or /sys) that cannot hold files"


@dataclass(frozen=True)
class Finding:
    key: str  # the configuration key, or the path
    problem: str

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}"


def data_files(config: GatewayConfig) -> list[tuple[str, Path]]:
    """(config key, file) of what the gateway writes: the queue, and the store when enabled."""
    files = [("queue.path", config.queue_path)]
    if config.store_enabled:
        files.insert(0, ("store.path", config.store_path))
    return files


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path("/")


def _no_storage(path: Path) -> bool:
    try:
        return os.statvfs(path).f_blocks == 0 and not Path(path).is_relative_to("/dev/shm")
    except OSError:
        return False


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_location(key: str, file: Path) -> tuple[list[Finding], list[Finding]]:
    """Without changing anything: could the gateway create and write `file`? (problems, warnings).

    An error when it never could (a file where a folder must be, a read-only or
    kernel file system); a warning when only this user cannot (`config check` run
    as another user than the service's, which writes its StateDirectory).
    """
    file = file if file.is_absolute() else Path.cwd() / file
    where = f"{key} ({file})"
    if file.is_dir():
        return [Finding(where, "is a folder: name a file in it")], []
    if file.exists() and not file.is_file():  # /dev/null, a FIFO, a serial port: SQLite cannot use it
        return [Finding(where, "is not a regular file (a device or a FIFO): name a database file, "
                               "e.g. /var/lib/sitewatch/readings.sqlite3")], []
    folder = file.parent
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        return [Finding(where, f"{existing} is not a folder, so {folder} cannot be created")], []
    if existing.resolve().is_relative_to("/dev") and not existing.resolve().is_relative_to("/dev/shm"):
        return [Finding(where, f"{existing} is under /dev, which holds device nodes in memory (lost at reboot): "
                               f"choose a folder on the SD card or SSD, e.g. /var/lib/sitewatch")], []
    if _no_storage(existing):
        return [Finding(where, f"{existing} is on {_NO_STORAGE_HINT}: choose a folder on the SD card or SSD, "
                               f"e.g. /var/lib/sitewatch")], []
    if _read_only(existing):
        return [Finding(where, f"{existing} is on a read-only file system: choose a writable folder, "
                               f"e.g. /var/lib/sitewatch")], []
    target = file if file.exists() else existing
    if not os.access(target, os.W_OK | (os.X_OK if target.is_dir() else 0)):
        return [], [Finding(where, f"{target} is not writable by this user (uid {os.getuid()}): fine if the "
                                   f"service's user can write it (the unit's StateDirectory is /var/lib/sitewatch)")]
    return [], []


def prepare_location(key: str, file: Path) -> None:
    """At start: create the folder and prove a file can be written there. Raises StartupError (one line)."""
    problems, _ = check_location(key, file)
    if problems:
        raise StartupError(str(problems[0]), EXIT_CONFIG)
    folder = file.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".sitewatch-probe-"):
            pass
        if file.exists() and not os.access(file, os.R_OK | os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    except OSError as error:
        reason = error.strerror or str(error)
        fix = ("give the service's user write access (the unit's StateDirectory=sitewatch makes /var/lib/sitewatch)"
               if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else "choose another folder")
        raise StartupError(f"{key} ({file}): cannot write in {folder}: {reason}: {fix}", EXIT_CONFIG) from None


class StartupError(RuntimeError):
    """A start-up failure: one line for the log, and the exit status that says what kind."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------------------
# Warnings about a configuration that parses but may not do what was meant.
# ---------------------------------------------------------------------------------------


def _kind_channels(kind: str) -> tuple[set[str], tuple[str, ...]]:
    """A kind's raw channels, and the prefixes of the aggregates made from them ("pm10_", "wind_", "noise_")."""
    raw = {row[0] for row in regmap.MEASUREMENTS[KIND_BY_NAME[kind]]}
    prefixes = tuple(sorted({f"{name}_" for name in raw} | {f"{name.split('_')[0]}_" for name in raw} | {f"{kind}_"}))
    return raw, prefixes


def has_channel(kind: str, channel: str) -> bool:
    """Can a node of this kind produce this channel (a reading, or an aggregate of one)?"""
    raw, prefixes = _kind_channels(kind)
    return channel in raw or channel.startswith(prefixes)


def node_has_channel(node: NodeConfig, channel: str) -> bool:
    """has_channel for a configured node; a vendor device has only its profile's quantities (and the gust
    the gateway forms for it), not every channel of its kind."""
    if node.profile is None:
        return has_channel(node.kind, channel)
    raw = set(node.profile.quantities) | ({GUST_CHANNEL} if node.profile.gust == "gateway" else set())
    if channel in QUANTITY_UNITS:  # a reading's channel: the device supplies it or not
        return channel in raw
    prefixes = tuple({f"{name}_" for name in raw} | {f"{name.split('_')[0]}_" for name in raw})
    return channel.startswith(prefixes)


def spray_warnings(config: GatewayConfig) -> list[Finding]:
    """A vendor dust monitor drives no spray of its own: it has no coil the gateway may write."""
    if not config.spray.enabled:
        return []
    return [
        Finding(f"spray.coils.{node.name}",
                f"dust device {node.name!r} (profile {node.profile.name}) has no spray coil: its PM10 means switch "
                "no spray, each switch is recorded as a failed actuation; map it to a node with a spray_relay coil "
                "in [spray] coils, or set [spray] enabled = false")
        for bus in config.buses for node in bus.nodes
        if node.profile is not None and node.kind == "dust" and node.name not in config.spray.coils
    ]


def serial_port_warnings(config: GatewayConfig) -> list[Finding]:
    out = []
    for i, bus in enumerate(config.buses):
        if bus.transport != "rtu" or os.path.exists(bus.port):
            continue
        out.append(Finding(f"bus[{i}].port", f"{bus.port} does not exist (yet): the gateway retries opening it; "
                                             f"plug the adapter in, or check the name in /dev/serial/by-id/"))
    return out


def unprivileged_port_start() -> int:
    """The lowest port a process without CAP_NET_BIND_SERVICE may bind (Linux's default 1024)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text().strip())
    except (OSError, ValueError):
        return 1024


def status_port_warnings(config: GatewayConfig, unprivileged_from: int | None = None) -> list[Finding]:
    """The unit drops every capability: a status port below the kernel's unprivileged start cannot be bound."""
    lowest = unprivileged_port_start() if unprivileged_from is None else unprivileged_from
    port = config.status.port
    if port == 0 or port >= lowest:
        return []
    return [Finding("status.port", f"{port} is below {lowest} (net.ipv4.ip_unprivileged_port_start): the systemd unit "
                                   f"runs without CAP_NET_BIND_SERVICE, so the status page will not listen; use a port "
                                   f"from {lowest} on (e.g. 8080), or lower that sysctl")]


def alarm_warnings(config: GatewayConfig) -> list[Finding]:
    out = []
    configured = [spec.type for spec in config.processing.alarm]
    if config.processing.alarm != default_alarms():
        left_out = [spec.type for spec in default_alarms() if spec.type not in configured]
        if left_out:
            out.append(Finding("processing.alarm", "[[processing.alarm]] replaces the default alarm list; not active "
                                                   f"now: {', '.join(left_out)} (add them back to keep them)"))
    alarms = config.build_pipeline().alarms
    nodes = {name: node for name, (_, node) in config.nodes().items()}
    for definition in alarms.definitions if alarms is not None else ():
        for name in definition.nodes:
            node = nodes.get(name)
            if node is not None and not any(node_has_channel(node, c) for c in definition.channels):
                out.append(Finding(f"processing.alarm ({definition.name})",
                                   f"node {name!r} is a {node.kind} node without {', '.join(definition.channels)}: "
                                   f"this alarm never fires for it"))
    return out


def location_findings(config: GatewayConfig) -> tuple[list[Finding], list[Finding]]:
    problems: list[Finding] = []
    warnings: list[Finding] = []
    for key, file in data_files(config):
        p, w = check_location(key, file)
        problems += p
        warnings += w
    return problems, warnings


def all_warnings(config: GatewayConfig) -> list[Finding]:
    return [*serial_port_warnings(config), *alarm_warnings(config), *spray_warnings(config),
            *status_port_warnings(config)]


def lock_files(config: GatewayConfig) -> list[tuple[Path, str]]:
    return [(file, key.split(".")[0]) for key, file in data_files(config)]


def unique(findings: Iterable[Finding]) -> list[Finding]:
    return list(dict.fromkeys(findings))
