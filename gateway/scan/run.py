"""`sitewatch scan`, the I/O: a serial port, probes on it, the planners of gateway/scan/plan.py driving them.

The port is opened as the gateway opens it (gateway/acquire/link.py open_serial:
raw, exclusive, parity checking on for E and O, so a character with a parity or
framing error reads as 0x00) and reopened when the line setting changes. One
exchange: wait t3.5 of silence, drop stale input, write the request, collect
bytes until the expected reply is complete, the line falls silent after some
bytes, or the timeout passes with none.
"""

from __future__ import annotations

import contextlib
import os
import select
import termios
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.acquire.link import open_serial
from gateway.profiles.vendor import VendorProfile
from gateway.protocols import modbus_rtu_master as rtu
from gateway.scan.identify import (
    IDENTITY_READ,
    UNIT_ID_READ,
    Match,
    match_profiles,
    profile_reads,
    sitewatch_kind,
)
from gateway.scan.plan import (
    DEFAULT_LATENCY,
    IDENTIFY_ATTEMPTS,
    Heard,
    Probe,
    SerialSettings,
    SettingsSearch,
    UnitSweep,
    classify,
    identify_timeouts,
    probe_request,
    probe_timeout,
    quick_timeout,
    quiet_time,
)


class SerialLine:
    """One serial port at one line setting at a time; counts every request it sends."""

    def __init__(self, port: str, latency: float = DEFAULT_LATENCY) -> None:
        self.port = port
        self.latency = latency
        self.settings: SerialSettings | None = None
        self.requests = 0
        self._fd = -1
        self._free_at = 0.0

    def use(self, settings: SerialSettings) -> None:
        if settings == self.settings and self._fd >= 0:
            return
        self.close()
        self._fd = open_serial(self.port, settings.baud, settings.parity, 1)
        self.settings = settings
        self._free_at = time.monotonic() + rtu.t35(settings.baud)

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = -1
        self.settings = None

    def __enter__(self) -> SerialLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exchange(self, request: rtu.Request, timeout: float | None = None, keep_stale: bool = False) -> bytes:
        """Send one request; the bytes that came back (b"" for silence).

        keep_stale: bytes that arrived since the last exchange (a late reply) come first in what is returned,
        instead of being dropped as a stray's.
        """
        settings = self.settings
        if settings is None or self._fd < 0:
            raise RuntimeError("SerialLine.exchange before use(settings)")
        baud = settings.baud
        if timeout is None:
            timeout = probe_timeout(baud, self.latency, request.reply_length)
        wait = self._free_at - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # t3.5 of silence before a request: the line's rule, not a test's luck
        data = bytearray(self._waiting() if keep_stale else b"")
        termios.tcflush(self._fd, termios.TCIFLUSH)
        os.write(self._fd, request.frame)
        self.requests += 1
        end_of_request = time.monotonic() + rtu.wire_time(len(request.frame), baud)
        deadline = end_of_request + timeout
        quiet = quiet_time(baud)
        last = time.monotonic() if data else 0.0
        while True:
            now = time.monotonic()
            if data:
                if len(data) >= request.reply_length and rtu.crc_ok(data[-request.reply_length :]):
                    break
                if len(data) >= rtu.EXCEPTION_LENGTH and rtu.crc_ok(data[-rtu.EXCEPTION_LENGTH :]):
                    break
                left = last + quiet - now
            else:
                left = deadline - now
            if left <= 0:
                break
            ready, _, _ = select.select([self._fd], [], [], left)
            if ready:
                chunk = os.read(self._fd, 512)
                data += chunk
                last = time.monotonic()
        self._free_at = (last if data else time.monotonic()) + rtu.t35(baud)
        return bytes(data)

    def _waiting(self) -> bytes:
        """The bytes already received and not read (none: b""), without waiting."""
        data = bytearray()
        while select.select([self._fd], [], [], 0)[0]:
            chunk = os.read(self._fd, 512)
            if not chunk:
                break
            data += chunk
        return bytes(data)

    def listen(self, seconds: float) -> bytes:
        """Whatever the line brings within `seconds` (until it falls quiet once bytes came): a late reply."""
        settings = self.settings
        if settings is None or self._fd < 0:
            raise RuntimeError("SerialLine.listen before use(settings)")
        data = bytearray(self._waiting())
        deadline = time.monotonic() + seconds
        last = time.monotonic()
        while True:
            left = (last + quiet_time(settings.baud) if data else deadline) - time.monotonic()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                break
            data += os.read(self._fd, 512)
            last = time.monotonic()
        if data:
            self._free_at = last + rtu.t35(settings.baud)
        return bytes(data)

    def probe(self, unit: int, quick: bool = False) -> Heard:
        """A probe of `unit`; quick: a sweep's (plan.quick_timeout), which keeps a late reply to an earlier one."""
        request = probe_request(unit)
        if not quick:
            return classify(request, self.exchange(request))
        settings = self.settings
        assert settings is not None
        return classify(request, self.exchange(request, quick_timeout(settings.baud), keep_stale=True))

    def read_patiently(
        self, unit: int, function: int, address: int, count: int, timeouts: Sequence[float | None]
    ) -> tuple[rtu.Reply | None, int]:
        """One read, asked again after silence or a bad frame with each of `timeouts` in turn (None: the
        baud's probe timeout); the last reply parsed (None for silence) and how many tries it took."""
        request = rtu.read_registers(unit, function, address, count)
        reply: rtu.Reply | None = None
        tries = 0
        for timeout in timeouts:
            tries += 1
            reply = self._parse(request, self.exchange(request, timeout))
            if reply is not None and not isinstance(reply, rtu.FrameError):
                break
        return reply, tries

    @staticmethod
    def _parse(request: rtu.Request, data: bytes) -> rtu.Reply | None:
        if not data:
            return None
        for start in range(len(data)):  # the reply may sit behind stray bytes
            n = rtu.reply_length(request, data[start : start + 2]) if data[start] == request.unit else None
            if n is not None and 0 < n <= len(data) - start:
                reply = rtu.parse_reply(request, data[start : start + n])
                if not isinstance(reply, rtu.FrameError):
                    return reply
        return rtu.parse_reply(request, data)


Progress = Callable[[int, str], None]  # (requests so far, what is being done)


def sweep_units(line: SerialLine, settings: SerialSettings, sweep: UnitSweep, progress: Progress | None = None) -> None:
    line.use(settings)
    while (unit := sweep.next_unit()) is not None:
        if progress is not None:
            progress(sweep.requests, f"unit {unit} at {settings}")
        sweep.record(unit, line.probe(unit))


def search_settings(line: SerialLine, search: SettingsSearch, progress: Progress | None = None) -> Probe | None:
    last_quick: Probe | None = None  # the quick probe just made: a reply to it may still be on its way
    while True:
        probe = search.next_probe()
        if last_quick is not None and (probe is None or not probe.quick or probe.settings != last_quick.settings):
            # Before leaving a setting's quick probes (reopening the port drops what arrives): listen once.
            late = line.listen(probe_timeout(last_quick.settings.baud, line.latency))
            search.line_time += probe_timeout(last_quick.settings.baud, line.latency)
            heard_after, last_quick = last_quick, None
            if late:
                search.heard_at(heard_after)
                continue
        if probe is None:
            return search.found
        if progress is not None:
            progress(search.requests, f"{search.phase}: unit {probe.unit} at {probe.settings}")
        line.use(probe.settings)
        search.record(probe, line.probe(probe.unit, probe.quick))
        last_quick = probe if probe.quick else None


@dataclass
class Identity:
    """What one answering unit is."""

    unit: int
    settings: SerialSettings
    sitewatch: str | None = None  # a sitewatch node's kind
    matches: list[Match] = field(default_factory=list)  # vendor profiles that fit, best first
    identified: bool = True  # False: only its presence is known (scan --no-identify)
    identity_tries: int = 0  # tries the sitewatch identity read took (0: not asked)
    identity_lost: bool = False  # it went unanswered (silence or garbage) in every try

    @property
    def label(self) -> str:
        if self.sitewatch is not None:
            retried = f" (identity read answered on try {self.identity_tries})" if self.identity_tries > 1 else ""
            return f"sitewatch {self.sitewatch} node{retried}"
        lost = f"; no valid reply to the node_kind read in {self.identity_tries} tries" if self.identity_lost else ""
        if self.matches:
            best = self.matches[0]
            return f"{best.profile} ({best.kind}), {best.confidence:.0%} sure{lost}"
        return ("unknown device (no profile fits)" + lost) if self.identified else "answers"


def identify(line: SerialLine, unit: int, profiles: Sequence[VendorProfile]) -> Identity:
    """A unit that answered a probe: a sitewatch node if it says so, else the vendor profiles its registers fit.

    The unit is known to be there, so a lost reply to any of its reads is asked again, more patiently
    each time (plan.identify_timeouts): a sitewatch node whose node_kind read was lost twice on a busy
    host would otherwise be named after a vendor profile, a vendor device after none. A device silent to
    reads it does not support costs about half a second each at 9600 baud.
    """
    settings = line.settings
    if settings is None:
        raise RuntimeError("identify before use(settings)")

    def patiently(read: tuple[int, int, int]) -> tuple[rtu.Reply | None, int]:
        reply_length = rtu.read_registers(unit, *read).reply_length
        return line.read_patiently(unit, *read, identify_timeouts(settings.baud, line.latency, reply_length))

    identity, tries = patiently(IDENTITY_READ)
    own_id, _ = patiently(UNIT_ID_READ) if isinstance(identity, rtu.Registers) else (None, 0)
    kind = sitewatch_kind(unit, identity, own_id)
    if kind is not None:
        return Identity(unit, settings, sitewatch=kind, identity_tries=tries)
    lost = tries == IDENTIFY_ATTEMPTS and (identity is None or isinstance(identity, rtu.FrameError))
    replies: Mapping[tuple[int, int, int], rtu.Reply | None] = {
        read: patiently(read)[0] for read in profile_reads(profiles)  # a lost reply would rule a profile out
    }
    return Identity(
        unit, settings, matches=match_profiles(profiles, replies, settings), identity_tries=tries, identity_lost=lost
    )
