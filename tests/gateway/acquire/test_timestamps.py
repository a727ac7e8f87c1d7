"""Timestamps on a gateway without a real-time clock: fake clocks, no waiting."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest

from gateway.acquire.kernel_clock import (
    STA_UNSYNC,
    TIME_ERROR,
    KernelClock,
    KernelClockError,
    KernelSyncProbe,
    kernel_clock_synchronised,
    read_kernel_clock,
    sync_daemon_present,
    synchronised,
)
from gateway.acquire.timestamps import BUILD_TIME_FLOOR, Clock, ClockValidity, Stamper
from gateway.model import Quality, Reading

REAL_NOW = 1_790_000_000.0  # 2026-09-21


class FakeTime:
    """A wall clock that starts at 1970 (a Pi at boot) and a monotonic clock, both set by the test."""

    def __init__(self) -> None:
        self.mono_now = 50.0
        self.wall_now = 50.0  # seconds after 1970-01-01: no RTC

    def wall(self) -> float:
        return self.wall_now

    def mono(self) -> float:
        return self.mono_now

    def sync(self, wall: float) -> None:
        self.wall_now = wall


def reading(channel: str) -> Reading:
    return Reading("dust-1", "dust", channel, 1.0, "ug/m3", Quality.NORMAL, 0.0, 1)


class KernelSync:
    """The kernel's "synchronised" verdict (adjtimex), switched by the test as chrony or timesyncd would."""

    def __init__(self) -> None:
        self.synced = False
        self.asked = 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.synced


def test_clock_validity_needs_a_time_after_the_build_floor() -> None:
    t = FakeTime()
    valid = ClockValidity(require_sync=None, wall=t.wall, synced=KernelSync(), daemon_present=lambda: False)
    assert not valid.require_sync  # no time-synchronisation daemon here: the floor decides
    assert not valid()
    t.sync(BUILD_TIME_FLOOR - 1)
    assert not valid()
    t.sync(REAL_NOW)
    assert valid()


def test_clock_validity_waits_for_the_kernel_where_a_sync_daemon_runs() -> None:
    t = FakeTime()
    t.sync(REAL_NOW - 86_400 * 30)  # fake-hwclock: a month-old time, later than the floor
    kernel = KernelSync()
    valid = ClockValidity(wall=t.wall, synced=kernel, daemon_present=lambda: True, mono=t.mono)
    assert valid.require_sync
    assert not valid()
    kernel.synced = True  # chrony (or timesyncd) cleared STA_UNSYNC
    assert not valid() and kernel.asked == 1  # asked at most once a second (ASK_EVERY_S), not at every stamp
    t.mono_now += 1.0
    assert valid() and kernel.asked == 2
    kernel.synced = False  # once valid, it stays valid: the kernel keeps the time between NTP answers
    assert valid()


def test_require_sync_always_waits_for_the_kernel_even_without_a_known_daemon() -> None:
    t = FakeTime()
    t.sync(REAL_NOW)
    kernel = KernelSync()
    valid = ClockValidity(require_sync=True, wall=t.wall, synced=kernel, daemon_present=lambda: False, mono=t.mono)
    assert not valid()
    kernel.synced = True
    t.mono_now += 1.0
    assert valid()


def test_the_kernel_verdict_follows_sta_unsync_and_time_error() -> None:
    assert synchronised(KernelClock(state=0, status=0x2001, maxerror_us=10_000))  # TIME_OK, STA_PLL|STA_NANO
    assert not synchronised(KernelClock(state=TIME_ERROR, status=STA_UNSYNC, maxerror_us=16_000_000))
    assert not synchronised(KernelClock(state=0, status=STA_UNSYNC, maxerror_us=16_000_000))
    assert not synchronised(KernelClock(state=TIME_ERROR, status=0, maxerror_us=16_000_000))
    assert synchronised(KernelClock(state=1, status=0x0010, maxerror_us=100))  # TIME_INS: leap second ahead


def test_adjtimex_reads_this_machines_clock_status_without_privilege() -> None:
    clock = read_kernel_clock()
    assert 0 <= clock.state <= TIME_ERROR
    assert clock.maxerror_us >= 0
    # The kernel answers TIME_ERROR whenever STA_UNSYNC is set: a status read at the wrong offset would not agree.
    assert not clock.status & STA_UNSYNC or clock.state == TIME_ERROR
    assert kernel_clock_synchronised() == synchronised(clock)


def test_sync_daemon_presence_is_any_of_its_runtime_folders(tmp_path: Path) -> None:
    assert not sync_daemon_present((tmp_path / "chrony", tmp_path / "timesync"))
    (tmp_path / "chrony").mkdir()
    assert sync_daemon_present((tmp_path / "chrony", tmp_path / "timesync"))


def test_readings_are_stamped_at_once_while_the_clock_is_valid() -> None:
    t = FakeTime()
    t.sync(REAL_NOW)
    stamper = Stamper(Clock(t.wall, t.mono, lambda: True))
    out = stamper.stamp(t.mono_now - 0.25, [reading("pm10")])
    assert [r.timestamp for r in out] == [REAL_NOW - 0.25]


def test_readings_wait_for_a_valid_clock_and_get_their_true_time() -> None:
    t = FakeTime()
    valid = ClockValidity(require_sync=False, wall=t.wall)
    stamper = Stamper(Clock(t.wall, t.mono, valid))
    taken = []
    for i in range(3):
        t.mono_now += 1.0
        taken.append(t.mono_now - 0.1)
        assert stamper.stamp(taken[-1], [reading(f"c{i}")]) == []  # held, never stamped 1970
    assert stamper.held_count == 3
    t.mono_now += 10.0
    t.sync(REAL_NOW)  # NTP: the wall clock jumps from 1970 to now
    out = stamper.stamp(t.mono_now, [reading("now")])
    assert [r.channel for r in out] == ["c0", "c1", "c2", "now"]
    for r, mono in zip(out, [*taken, t.mono_now], strict=True):
        assert r.timestamp == REAL_NOW - (t.mono_now - mono)
    assert all(r.timestamp > BUILD_TIME_FLOOR for r in out)
    assert stamper.held_count == 0


def test_held_readings_are_released_by_an_empty_batch() -> None:
    t = FakeTime()
    valid = [False]
    stamper = Stamper(Clock(t.wall, t.mono, lambda: valid[0]))
    stamper.stamp(t.mono_now, [reading("pm10")])
    t.sync(REAL_NOW)
    valid[0] = True
    assert [r.channel for r in stamper.stamp(t.mono_now, [])] == ["pm10"]


def test_the_hold_is_bounded_and_drops_the_oldest() -> None:
    t = FakeTime()
    stamper = Stamper(Clock(t.wall, t.mono, lambda: False), max_held=4)
    for i in range(5):
        stamper.stamp(float(i), [reading(f"a{i}"), reading(f"b{i}")])
    assert stamper.held_count == 4 and stamper.dropped == 6
    assert [mono for _, mono, _ in stamper.held] == [3.0, 4.0]


class Journal:
    """What a durable hold is told: batches held, and up to which serial they are gone."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, float, list[str]]] = []
        self.gone_upto: list[int] = []

    def held(self, serial: int, taken_mono: float, readings: list[Reading]) -> None:
        self.batches.append((serial, taken_mono, [r.channel for r in readings]))

    def gone(self, upto: int) -> None:
        self.gone_upto.append(upto)


def test_a_journal_hears_of_every_held_batch_and_of_what_is_gone() -> None:
    t = FakeTime()
    valid = [False]
    journal = Journal()
    stamper = Stamper(Clock(t.wall, t.mono, lambda: valid[0]), max_held=4, journal=journal)
    for i in range(3):
        stamper.stamp(float(i), [reading(f"a{i}"), reading(f"b{i}")])
    assert journal.batches == [(1, 0.0, ["a0", "b0"]), (2, 1.0, ["a1", "b1"]), (3, 2.0, ["a2", "b2"])]
    assert journal.gone_upto == [1]  # dropped past max_held: gone too
    t.sync(REAL_NOW)
    valid[0] = True
    assert len(stamper.stamp(t.mono_now, [])) == 4
    assert journal.gone_upto == [1, 3]


def test_batches_of_an_earlier_run_are_released_with_the_offset_of_the_valid_clock() -> None:
    t = FakeTime()
    valid = [False]
    journal = Journal()
    stamper = Stamper(Clock(t.wall, t.mono, lambda: valid[0]), journal=journal)
    stamper.preload(7, 10.0, [reading("pm10")])
    stamper.stamp(12.0, [reading("pm25")])
    assert journal.batches == [(8, 12.0, ["pm25"])]  # serials go on from the preloaded ones
    t.mono_now = 20.0
    t.sync(REAL_NOW)
    valid[0] = True
    out = stamper.stamp(t.mono_now, [])
    assert [(r.channel, r.timestamp) for r in out] == [("pm10", REAL_NOW - 10.0), ("pm25", REAL_NOW - 8.0)]
    assert journal.gone_upto == [8]


def test_the_not_valid_warning_names_the_bus_and_the_drop_names_it_too(caplog: pytest.LogCaptureFixture) -> None:
    t = FakeTime()
    stamper = Stamper(Clock(t.wall, t.mono, lambda: False), max_held=2, bus="rs485-north")
    with caplog.at_level(logging.WARNING, logger="gateway.acquire.timestamps"):
        stamper.stamp(1.0, [reading("pm10"), reading("pm25")])
        stamper.stamp(2.0, [reading("pm10")])
    lines = [r.getMessage() for r in caplog.records]
    assert any("bus rs485-north: wall clock is not valid" in line for line in lines), lines
    assert any("bus rs485-north: holding more than 2 readings" in line for line in lines), lines


def test_a_full_hold_says_so_once_per_ten_minutes_not_at_every_poll(caplog: pytest.LogCaptureFixture) -> None:
    """Audit: once the hold was full, every poll dropped its oldest batch and logged an ERROR line (one a second
    per bus at 1 s polls, all night while NTP is unreachable); the count lives in status's drops.held_overflow."""
    t = FakeTime()
    stamper = Stamper(Clock(t.wall, t.mono, lambda: False), max_held=2, bus="bus0")
    with caplog.at_level(logging.ERROR, logger="gateway.acquire.timestamps"):
        for i in range(300):  # five minutes of 1 s polls past a full hold
            t.mono_now = 50.0 + i
            stamper.stamp(t.mono_now, [reading("pm10")])
        assert stamper.dropped == 298
        assert len(caplog.records) == 1, [r.getMessage() for r in caplog.records]
        t.mono_now += 600.0
        stamper.stamp(t.mono_now, [reading("pm10")])
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "(299 in all)" in lines[1], lines


def test_a_kernel_that_cannot_be_asked_is_said_once_and_the_clock_stays_not_valid(
    caplog: pytest.LogCaptureFixture,
) -> None:
    t = FakeTime()
    t.sync(REAL_NOW)

    def forbidden() -> bool:
        raise KernelClockError(1, "adjtimex: Operation not permitted")

    valid = ClockValidity(require_sync=True, wall=t.wall, synced=forbidden, daemon_present=lambda: True, mono=t.mono)
    with caplog.at_level(logging.ERROR, logger="gateway.acquire.timestamps"):
        assert not valid()
        t.mono_now += 1.0
        assert not valid()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and 'require_sync = "never"' in lines[0] and "Operation not permitted" in lines[0]


def fake_timedatectl(folder: Path, answer: str, status: int = 0) -> str:
    """systemd-timedated cannot run here (systemd is not PID 1): a stand-in that answers as timedatectl does."""
    script = folder / "timedatectl"
    script.write_text(f'#!/bin/sh\n[ "$*" = "show --property=NTPSynchronized --value" ] || exit 2\n'
                      f'echo {answer}\necho "Failed to connect to bus" >&2\nexit {status}\n')
    script.chmod(0o755)
    return str(script)


def refused() -> KernelClock:
    raise KernelClockError(errno.EPERM, "adjtimex: Operation not permitted")


def test_where_a_system_call_filter_refuses_adjtimex_timedated_is_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "no").mkdir()
    (tmp_path / "yes").mkdir()
    probe = KernelSyncProbe(read=refused, timedatectl=fake_timedatectl(tmp_path / "no", "no"))
    with caplog.at_level(logging.INFO, logger="gateway.acquire.kernel_clock"):
        assert probe() is False
    assert probe.via_timedated and "asking systemd-timedated" in caplog.text
    probe.timedatectl = fake_timedatectl(tmp_path / "yes", "yes")
    assert probe() is True


def test_a_timedated_that_cannot_answer_is_an_error_naming_it(tmp_path: Path) -> None:
    probe = KernelSyncProbe(read=refused, timedatectl=fake_timedatectl(tmp_path, "", status=1))
    with pytest.raises(KernelClockError, match="timedatectl show: exit status 1: Failed to connect to bus"):
        probe()
    with pytest.raises(KernelClockError, match="No such file"):
        KernelSyncProbe(read=refused, timedatectl=str(tmp_path / "nope"))()


def test_adjtimex_is_asked_first_and_timedated_only_when_refused(tmp_path: Path) -> None:
    probe = KernelSyncProbe(timedatectl=str(tmp_path / "never-run"))
    assert probe() == kernel_clock_synchronised() and not probe.via_timedated


def test_a_preemption_between_the_clock_reads_does_not_enter_the_offset() -> None:
    # The thread is kept off the CPU between its two clock reads (40 ms, as seen on a loaded 2-core host):
    # `wall() - mono()` would date every reading of that poll 40 ms early. The offset is read again.
    true_offset = 1_700_000_000.0
    now = [100.0]
    stalls = iter([0.040])  # the first read of the wall clock is followed by a stall

    def mono() -> float:
        return now[0]

    def wall() -> float:
        value = now[0] + true_offset
        now[0] += next(stalls, 0.0)
        return value

    clock = Clock(wall=wall, mono=mono, valid=lambda: True)
    assert clock.offset() == true_offset
    stamper = Stamper(clock)
    stalls = iter([0.040])
    (r,) = stamper.stamp(99.5, [reading("pm10")])
    assert r.timestamp == 99.5 + true_offset


def test_a_simulated_clock_read_twice_has_no_offset_from_itself() -> None:
    # The integration runs use one simulated clock for both: read in turn while it runs at 120x, the old
    # difference was the time between the two reads, times 120.
    ticks = iter(float(i) * 0.1 for i in range(100))
    clock = Clock(wall=lambda: next(ticks), mono=lambda: next(ticks), valid=lambda: True)
    assert clock.offset() == 0.0
