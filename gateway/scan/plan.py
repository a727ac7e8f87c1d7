"""`sitewatch scan`, sans-IO: what to ask next, how long to wait, what an answer means.

Nothing here touches a port or a clock. The driver (gateway/scan/run.py) asks a
planner for the next probe, puts it on the line, classifies what came back
with :func:`classify` and tells the planner. Two planners:

- :class:`UnitSweep`: unit ids in order at one line setting, stopping once the
  operator's number of consecutive silent ids has passed.
- :class:`SettingsSearch`: a lone device at an unknown baud rate and parity
  (docs/operator-guide.md, "Finding what is on a bus", explains the strategy):
  likely ids at every setting first, then a sweep of every id at the likeliest
  setting, and as soon as a unit answers with garbage, that unit alone at the
  other settings, the closest baud rate to what the garbage suggests first.

A probe is a read of one holding register at address 0: a read changes
nothing, and every Modbus device answers it, with the register or with an
exception (illegal function or address); either proves a unit is there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from gateway.protocols import modbus_rtu_master as rtu

PARITIES = ("N", "E", "O")
# Baud rates a scan tries, in the order it tries them at equal evidence: the common ones first.
SCAN_BAUDS = (9600, 19200, 4800, 2400, 38400, 57600, 115200)
# Parities in the order tried: 8N1 is what most vendor transmitters ship with, 8E1 the Modbus default.
SCAN_PARITIES = ("N", "E", "O")
DEFAULT_PROBE_IDS = (1, 2, 3)  # factory ids first: nearly every device ships as unit 1
UNIT_IDS = range(1, 248)
PROBE_REPLY_BYTES = rtu.read_registers(1, rtu.READ_HOLDING_REGISTERS, 0, 1).reply_length
# A reply must start within this many character times of the request's end (device turnaround) ...
TURNAROUND_CHARACTERS = 20
# ... or this long, whichever is longer: a USB adapter's latency timer (FTDI: 16 ms) and the host.
DEFAULT_LATENCY = 0.020  # s


@dataclass(frozen=True, slots=True, order=True)
class SerialSettings:
    """Baud rate and parity of a line (8 data bits, 1 stop bit)."""

    baud: int
    parity: str = "N"

    def __post_init__(self) -> None:
        if self.baud <= 0:
            raise ValueError(f"baud rate {self.baud} is not positive")
        if self.parity not in PARITIES:
            raise ValueError(f"parity {self.parity!r} is not one of N, E, O")

    def __str__(self) -> str:
        return f"{self.baud} 8{self.parity}1"


def candidate_settings(
    bauds: Sequence[int] = SCAN_BAUDS, parities: Sequence[str] = SCAN_PARITIES, first: Iterable[SerialSettings] = ()
) -> list[SerialSettings]:
    """Every setting to try, likeliest first: `first` (e.g. the profiles' defaults), then 9600 8N1, 9600 8E1 ..."""
    ordered: list[SerialSettings] = []
    for settings in [*first, *(SerialSettings(b, p) for b in bauds for p in parities)]:
        if settings not in ordered:
            ordered.append(settings)
    return ordered


def probe_request(unit: int) -> rtu.Request:
    return rtu.read_registers(unit, rtu.READ_HOLDING_REGISTERS, 0, 1)


def probe_timeout(baud: int, latency: float = DEFAULT_LATENCY, reply_bytes: int = PROBE_REPLY_BYTES) -> float:
    """How long after the request's end on the wire a reply must have come: its wire time plus the turnaround.

    From the baud rate's character time: at 2400 baud a 7-byte reply alone takes 32 ms, at 115200 0.7 ms.
    """
    return rtu.wire_time(reply_bytes, baud) + max(TURNAROUND_CHARACTERS * rtu.character_time(baud), latency)


# A unit that answered a probe is there: a lost reply to its identity read (a busy host, noise) is asked
# again this many times in all, each wait twice the last, before the scan guesses from vendor profiles.
IDENTIFY_ATTEMPTS = 4


def identify_timeouts(baud: int, latency: float = DEFAULT_LATENCY, reply_bytes: int = PROBE_REPLY_BYTES) -> list[float]:
    """The waits of the identity read's attempts: the probe's timeout for this reply, then doubling.

    At 9600 baud and the default latency, for a 2-register reply: about 33, 66, 133 and 266 ms, half a second for a unit
    that never answers it (a vendor device silent on input registers).
    """
    first = probe_timeout(baud, latency, reply_bytes)
    return [first * 2**attempt for attempt in range(IDENTIFY_ATTEMPTS)]


# The sweep's quick probes (every id at every setting, nothing heard yet) wait this many characters for a reply
# to start instead of the probe timeout: on an empty bus the timeouts were the scan (5187 probes, 5 minutes).
# A reply that comes later is not lost: it is read before the next request or in its window (or after the
# setting's last probe, the line is listened to for a probe timeout), and the probes it may belong to are made
# again patiently.
QUICK_WAIT_CHARACTERS = 2
QUICK_WAIT_MIN = 0.001  # s: a select() timeout shorter than this is the host's scheduling, not a wait


def quick_timeout(baud: int) -> float:
    return max(QUICK_WAIT_CHARACTERS * rtu.character_time(baud), QUICK_WAIT_MIN)


def line_time(request: rtu.Request, baud: int, timeout: float) -> float:
    """The line time of one probe nobody answers: the request on the wire, the wait, and t3.5 of silence."""
    return rtu.wire_time(len(request.frame), baud) + timeout + rtu.t35(baud)


def quiet_time(baud: int) -> float:
    """Silence that ends a garbled reply: t3.5, but at least 5 ms (adapters deliver bytes in bursts)."""
    return max(rtu.t35(baud), 0.005)


# -- what came back ----------------------------------------------------------------

HeardKind = Literal["answer", "garbage", "silence"]


@dataclass(frozen=True, slots=True)
class Heard:
    """What one probe brought back."""

    kind: HeardKind
    size: int = 0  # bytes received
    zeros: int = 0  # 0x00 bytes among them (characters with parity or framing errors, when checking parity)
    exception: int | None = None  # an answer that was a Modbus exception: its code

    @property
    def answered(self) -> bool:
        return self.kind == "answer"


SILENCE = Heard("silence")


def classify(request: rtu.Request, data: bytes) -> Heard:
    """An answer (a reply or an exception from the unit asked, CRC good), garbage, or silence."""
    if not data:
        return SILENCE
    zeros = data.count(0)
    # The reply may sit behind stray bytes (another device's tail): take the first frame that checks out.
    for start in range(len(data)):
        if data[start] != request.unit:
            continue
        n = rtu.reply_length(request, data[start : start + 2])
        if n is None or n <= 0 or start + n > len(data):
            continue
        reply = rtu.parse_reply(request, data[start : start + n])
        if isinstance(reply, rtu.ExceptionReply):
            return Heard("answer", len(data), zeros, reply.code)
        if not isinstance(reply, rtu.FrameError):
            return Heard("answer", len(data), zeros)
    return Heard("garbage", len(data), zeros)


def estimated_baud(heard: Heard, at: int, reply_bytes: int = PROBE_REPLY_BYTES) -> float:
    """The baud rate the garbage suggests the device sends at.

    A device sending n characters at baud b fills n * 11 / b seconds of line; a receiver at baud a cuts
    that time into characters of its own, about n * a / b of them (more when it is faster, fewer when
    slower). So b ~ a * n / received. Rough (a burst of ones yields no character at all), but enough
    to try the near baud rates first.
    """
    return at * reply_bytes / max(heard.size, 1)


def rank_by_evidence(
    candidates: Sequence[SerialSettings], heard: Heard, at: SerialSettings
) -> list[SerialSettings]:
    """The candidates closest (in log baud) to what garbage heard at `at` suggests first; order kept otherwise."""
    estimate = estimated_baud(heard, at.baud)

    def distance(settings: SerialSettings) -> float:
        return abs(math.log2(settings.baud / estimate))

    # Same baud, other parity, when the garbage is as long as the reply: a parity mismatch keeps the timing.
    return sorted(candidates, key=lambda s: (round(distance(s), 1), candidates.index(s)))


# -- planners ------------------------------------------------------------------------


@dataclass
class UnitSweep:
    """Unit ids in order at one setting; stops after `stop_after_silence` silent ids in a row (0: never).

    known: units already known to answer (the one a settings search found): the sweep goes on at least
    until it has passed them, however many silent ids lie before them.
    """

    ids: Sequence[int] = UNIT_IDS
    stop_after_silence: int = 0
    known: Sequence[int] = ()
    retries: int = 1  # probes again a unit that answered garbage, this many times
    results: dict[int, Heard] = field(default_factory=dict)
    requests: int = 0
    _index: int = 0
    _silent_run: int = 0
    _tries: int = 0

    def next_unit(self) -> int | None:
        if self._index >= len(self.ids):
            return None
        unit = self.ids[self._index]
        quiet_enough = self.stop_after_silence and self._silent_run >= self.stop_after_silence
        if quiet_enough and unit > max(self.known, default=0):
            return None
        return unit

    def record(self, unit: int, heard: Heard) -> None:
        if unit != self.next_unit():
            raise ValueError(f"unit {unit} recorded, but the sweep is at unit {self.next_unit()}")
        self.requests += 1
        if heard.kind == "garbage" and self._tries < self.retries:
            self._tries += 1  # a collision or noise: ask again before calling it
            return
        self.results[unit] = heard
        self._silent_run = self._silent_run + 1 if heard.kind == "silence" else 0
        self._index += 1
        self._tries = 0

    @property
    def done(self) -> bool:
        return self.next_unit() is None

    @property
    def answered(self) -> list[int]:
        return [unit for unit, heard in self.results.items() if heard.answered]

    @property
    def garbled(self) -> list[int]:
        return [unit for unit, heard in self.results.items() if heard.kind == "garbage"]


Phase = Literal["likely", "pin", "recheck", "sweep", "confirm", "done"]


@dataclass(frozen=True, slots=True, order=True)
class Probe:
    settings: SerialSettings
    unit: int
    quick: bool = field(default=False, compare=False)  # a sweep probe: waits quick_timeout, not probe_timeout


class SettingsSearch:
    """Find the line setting of a device whose baud rate, parity and unit id are unknown.

    1. likely: each of `probe_ids` at every candidate setting, likeliest setting first.
    2. sweep (if nothing was heard): every other id at one setting after another, likeliest first.
    3. pin: as soon as a unit answers garbage, that unit at the settings not yet tried for it,
       ranked by the garbage (:func:`rank_by_evidence`); a unit that answers garbage everywhere is
       given up and the search goes on where it was. A unit that fell silent there is asked once more
       (it is known to be on the line: its reply was lost, or came too late).
    4. confirm: a proper answer is asked for again at the same setting before it counts: a reply that
       came late (a slow device, a busy host) can arrive while the next setting is being probed and
       would name the wrong setting; it does not come twice.
    Done when a unit answered properly twice (found) or every probe was made (not found).

    The sweep's probes are quick (:func:`quick_timeout`): on a bus where nothing is heard the sweep is
    most of the probes, and their timeouts were most of the time. Whatever a quick probe hears, or the
    line brings after a setting's last one (:meth:`heard_at`), is checked patiently: garbage makes the
    probe's unit and the units probed just before it at that setting (whose late reply it may be) be
    asked again with the probe timeout (phase "recheck"), whose garbage then pins as in step 3; an
    answer is confirmed with a patient probe.
    """

    def __init__(
        self,
        candidates: Sequence[SerialSettings],
        probe_ids: Sequence[int] = DEFAULT_PROBE_IDS,
        ids: Sequence[int] = UNIT_IDS,
        latency: float = DEFAULT_LATENCY,
    ) -> None:
        if not candidates:
            raise ValueError("no line settings to try")
        self.latency = latency
        self.line_time = 0.0  # s: the line time of the probes made, as if nobody answered (sum of line_time)
        self._skimmed: list[Probe] = []  # quick probes made, in order
        self._recheck: list[Probe] = []
        self.candidates = list(candidates)
        self.probe_ids = [u for u in probe_ids if u in ids]
        self.sweep_ids = [u for u in ids if u not in self.probe_ids]
        self.requests = 0
        self.found: Probe | None = None
        self.found_heard: Heard | None = None
        self.evidence: list[tuple[Probe, Heard]] = []  # every probe that heard something
        self._queue: list[Probe] = [Probe(s, u) for s in self.candidates for u in self.probe_ids]
        self._sweep_at = 0  # index into candidates of the setting being swept
        self._sweep_next = 0  # index into sweep_ids
        self._pinning: list[Probe] = []
        self._given_up: set[int] = set()
        self._tried: set[Probe] = set()
        self._confirming: Probe | None = None
        self._asked_again: set[Probe] = set()  # pin probes repeated after a silence
        self.phase: Phase = "likely"

    def next_probe(self) -> Probe | None:
        if self.found is not None:
            self.phase = "done"
            return None
        if self._confirming is not None:
            self.phase = "confirm"
            return self._confirming
        while True:
            if self._pinning:
                self.phase = "pin"
                probe = self._pinning[0]
            elif self._recheck:
                self.phase = "recheck"
                probe = self._recheck[0]
            elif self._queue:
                self.phase = "likely"
                probe = self._queue[0]
            else:
                self.phase = "sweep"
                probe_or_none = self._next_sweep()
                if probe_or_none is None:
                    self.phase = "done"
                    return None
                probe = probe_or_none
            if probe in self._tried or (probe.unit in self._given_up and not self._pinning):
                self._drop(probe)
                continue
            return probe

    def _next_sweep(self) -> Probe | None:
        while self._sweep_at < len(self.candidates):
            if self._sweep_next < len(self.sweep_ids):
                return Probe(self.candidates[self._sweep_at], self.sweep_ids[self._sweep_next], quick=True)
            self._sweep_at += 1
            self._sweep_next = 0
        return None

    def _drop(self, probe: Probe) -> None:
        if self._pinning and self._pinning[0] == probe:
            self._pinning.pop(0)
            if not self._pinning:
                self._given_up.add(probe.unit)
        elif self._recheck and self._recheck[0] == probe:
            self._recheck.pop(0)
        elif self._queue and self._queue[0] == probe:
            self._queue.pop(0)
        else:
            self._sweep_next += 1

    def record(self, probe: Probe, heard: Heard) -> None:
        if probe != self.next_probe():
            raise ValueError(f"{probe} recorded, but the search is at {self.next_probe()}")
        self.requests += 1
        request = probe_request(probe.unit)
        wait = quick_timeout(probe.settings.baud) if probe.quick else probe_timeout(probe.settings.baud, self.latency)
        self.line_time += line_time(request, probe.settings.baud, wait)
        if self._confirming is not None:
            self._confirming = None
            if heard.answered:
                self.evidence.append((probe, heard))
                self.found, self.found_heard = probe, heard
                self._pinning.clear()
            return  # not confirmed: the first answer was a stray; go on where the search was
        if probe.quick:
            self._skimmed.append(probe)
            self._drop(probe)
            if heard.kind == "silence":
                return
            self.evidence.append((probe, heard))
            if heard.answered:
                self._confirming = Probe(probe.settings, probe.unit)  # patiently, before it counts
            else:
                self.heard_at(probe)
            return
        pinning = self.phase == "pin"
        self._tried.add(probe)
        self._drop(probe)
        if heard.kind == "silence":
            if pinning and probe not in self._asked_again:
                self._asked_again.add(probe)
                self._tried.discard(probe)
                self._given_up.discard(probe.unit)
                self._pinning.insert(0, probe)
            return
        self.evidence.append((probe, heard))
        if heard.answered:
            self._confirming = probe
            return
        if not self._pinning and probe.unit not in self._given_up:
            rest = [s for s in self.candidates if Probe(s, probe.unit) not in self._tried]
            self._pinning = [Probe(s, probe.unit) for s in rank_by_evidence(rest, heard, probe.settings)]

    def heard_at(self, probe: Probe) -> None:
        """Bytes came during quick probe `probe` or after it: its unit, then the units quick-probed before it at
        its setting whose replies may still have been on their way, are asked again patiently."""
        timeout = probe_timeout(probe.settings.baud, self.latency)
        quick = line_time(probe_request(probe.unit), probe.settings.baud, quick_timeout(probe.settings.baud))
        back = math.ceil(timeout / quick) + 1  # quick probes made while a reply to an earlier one could come
        recent = [p for p in reversed(self._skimmed) if p.settings == probe.settings][:back]
        for earlier in recent:
            patient = Probe(earlier.settings, earlier.unit)
            if patient not in self._tried and patient not in self._recheck:
                self._recheck.append(patient)
