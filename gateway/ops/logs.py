"""Logging for `sitewatch run`: journal priorities under systemd, timestamps on a terminal, no library noise.

* Under systemd, stderr is a stream to the journal ($JOURNAL_STREAM names its
  device and inode): each line starts with ``<N>``, its syslog priority, so
  ``journalctl -p warning`` works; the journal adds the time itself.
* Elsewhere: ``2026-12-03T14:25:59.123+0000 WARNING gateway.acquire.poller: ...``.
* pymodbus logs every frame at DEBUG, "Repeating...." lines and frame dumps in
  its errors: it is silent unless asked for (``--log-modbus``), whatever the
  gateway's level; asyncio and the MQTT libraries stay at WARNING.
* Secrets never reach a line: HJ 212 passwords (``PW=``) and ``password=`` /
  ``token=`` values (and the robots' ``key=``, ``access_token=``, ``sign=`` in URLs)
  are masked by a filter on the handler.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from typing import TextIO

# Python's levels -> syslog priorities (sd-daemon(3): <3> err, <4> warning, <6> info, <7> debug).
PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}
NOISY_LIBRARIES = ("pymodbus", "asyncio", "aiomqtt", "paho", "mqtt")
# In URL queries too: the WeCom robot's key=, the DingTalk robot's access_token= and sign= (urllib3 logs request
# lines at DEBUG). "\b" would not find "token=" after "access_": "_" is a word character.
_SECRET = re.compile(r"(?i)(?<![a-z0-9])(PW=|password=|passwd=|(?:access_)?token=|secret=|key=|sign=)"
                     r"(?!value\b)([^;&\s,\"]+)")  # "not key=value" (an HJ 212 parse error) is no secret


def priority_of(level: int) -> int:
    for threshold in sorted(PRIORITY, reverse=True):
        if level >= threshold:
            return PRIORITY[threshold]
    return 7


def mask_secrets(text: str) -> str:
    return _SECRET.sub(lambda m: m.group(1) + "***", text)


class SecretFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = mask_secrets(text)
        if masked != text:
            record.msg, record.args = masked, None
        return True


class JournalFormatter(logging.Formatter):
    """``<4>gateway.acquire.poller: bus bus0 node dust-1: timeout: ...`` (the journal adds time and unit)."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{priority_of(record.levelno)}>"
        # A traceback spans lines: each gets the priority, or the journal files the rest as info.
        return "\n".join(prefix + line for line in text.splitlines())


class TerminalFormatter(logging.Formatter):
    """ISO 8601 with milliseconds and the UTC offset, then level, logger and message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        local = time.localtime(record.created)
        return time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{int(record.msecs):03d}" + time.strftime("%z", local)


def to_journal(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    """Is `stream` systemd's journal stream? ($JOURNAL_STREAM is "device:inode" of it.)"""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return info.st_dev == int(device) and info.st_ino == int(inode)


_HANDLER_NAME = "sitewatch"


def configure(level: str | int, stream: TextIO | None = None, log_modbus: bool = False,
              environ: dict[str, str] | None = None) -> logging.Handler:
    """Set up the root logger for the service (again: replaces the handler it set before)."""
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JournalFormatter() if to_journal(out, environ) else TerminalFormatter())
    handler.addFilter(SecretFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME or not root.handlers]:
        root.removeHandler(old)
    root.addHandler(handler)
    set_level(level, log_modbus)
    return handler


def set_level(level: str | int, log_modbus: bool = False) -> None:
    """The gateway's level (reloadable); the noisy libraries stay at WARNING unless log_modbus."""
    logging.getLogger().setLevel(level)
    for name in NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    # pymodbus repeats at WARNING ("Repeating....") and appends frame dumps to its errors; the gateway logs
    # what came of each transaction itself (gateway/acquire), so pymodbus is silent unless asked for.
    logging.getLogger("pymodbus").setLevel(logging.NOTSET if log_modbus else logging.CRITICAL)


SEVERITY_WORDS = {"prewarning": "PRE-WARNING", "alarm": "ALARM"}


def alarm_line(alarm: str, severity: str, state: str, node: str, channel: str, reason: str) -> str:
    """"ALARM raised: crane_wind on wind-1/wind_gust_3s: ..." (the severity first: what a safety officer reads)."""
    return f"{SEVERITY_WORDS.get(str(severity), str(severity).upper())} {state}: {alarm} on {node}/{channel}: {reason}"
