"""Revised windows give back the hold an invalid first emission restarted (docs/revisions.md, "Alarms").

Found by stress run s5a: in the typhoon's decay a poll timed out, the 2-min mean it belonged to closed
invalid (one sample of two), and the work-at-height alarm's 600-s hold restarted; the backfill revised the
window to a calm value a moment later, but alarms acted on first emissions only, so the alarm stayed raised
ten minutes longer than the wind did.
"""

from __future__ import annotations

from gateway.model import Quality
from gateway.pipeline import AlarmStage
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent, AlarmMachine, AlarmSet, EventState, Levels, Severity
from gateway.process.limits import LimitsResolver
from gateway.process.registry import create_alarms

LEVELS = Levels(9.0, margin=1.0, hold_s=600.0)  # clears below 8 after 600 s
CLEARED = EventState.CLEARED


def raised_then_calm(machine: AlarmMachine) -> None:
    assert machine.update(10.0, 0.0, LEVELS)  # raised at 0
    for t in (60.0, 120.0, 180.0, 240.0):
        assert machine.update(7.0, t, LEVELS) == []  # calm from 60


def states(events: list[AlarmEvent]) -> list[tuple[Severity, EventState, float]]:
    return [(e.severity, e.state, e.time) for e in events]


def test_a_gap_revised_calm_gives_the_hold_back_and_the_next_reading_clears_on_time() -> None:
    told, untold = AlarmMachine("a", "w", "c"), AlarmMachine("a", "w", "c")
    for machine in (told, untold):
        raised_then_calm(machine)
        machine.invalid(300.0)
        machine.invalid(360.0)
        assert machine.update(7.0, 420.0, LEVELS) == []
    told.revised(7.5, 300.0, LEVELS)
    told.revised(7.0, 360.0, LEVELS)
    assert states(told.update(7.0, 660.0, LEVELS)) == [(Severity.ALARM, CLEARED, 660.0)]  # 600 s after 60
    assert untold.update(7.0, 660.0, LEVELS) == []  # the hold restarted at 420: it clears at 1020
    assert states(untold.update(7.0, 1020.0, LEVELS)) == [(Severity.ALARM, CLEARED, 1020.0)]


def test_the_hold_stays_restarted_unless_every_reading_of_the_gap_and_every_value_since_was_calm() -> None:
    def after(revisions: list[tuple[float, float]], later: list[tuple[float, float]]) -> list[AlarmEvent]:
        machine = AlarmMachine("a", "w", "c")
        raised_then_calm(machine)
        machine.invalid(300.0)
        machine.invalid(360.0)
        for t, value in later:
            machine.update(value, t, LEVELS)
        for t, value in revisions:
            machine.revised(value, t, LEVELS)
        return machine.update(7.0, 700.0, LEVELS)

    calm = [(420.0, 7.0)]
    assert after([(300.0, 7.0), (360.0, 7.0)], calm)  # the control: cleared (700 - 60 >= 600)
    assert after([(300.0, 7.0)], calm) == []  # one reading of the gap is still unknown
    assert after([(300.0, 8.5), (360.0, 7.0)], calm) == []  # a revised value in the band: not calm
    assert after([(300.0, 7.0), (360.0, 7.0)], [(420.0, 8.5), (480.0, 7.0)]) == []  # a value since was not calm
    assert after([(300.0, 7.0), (999.0, 7.0), (360.0, 7.0)], calm)  # a revision of another time: ignored


def test_a_revision_raises_nothing_and_an_older_gap_is_not_given_back() -> None:
    machine = AlarmMachine("a", "w", "c")
    raised_then_calm(machine)
    machine.invalid(300.0)
    machine.update(7.0, 360.0, LEVELS)
    machine.invalid(420.0)  # a second gap: the first one's hold was restarted again since
    machine.update(7.0, 480.0, LEVELS)
    machine.revised(7.0, 300.0, LEVELS)
    assert machine.update(7.0, 700.0, LEVELS) == []
    machine.revised(7.0, 420.0, LEVELS)  # the latest gap: its hold ran from 360 (the values before it)
    assert states(machine.update(7.0, 960.0, LEVELS)) == [(Severity.ALARM, CLEARED, 960.0)]
    # A revision far above the limit raises nothing: it corrects the past.
    machine.invalid(1020.0)
    machine.revised(30.0, 1020.0, LEVELS)
    assert machine.state is None and machine.update(7.0, 1080.0, LEVELS) == []


def mean(start: float, value: float | None, valid: bool = True, revision: int = 0) -> Aggregate:
    quality = Quality.NORMAL if valid else Quality.COMMUNICATION_FAILURE
    return Aggregate("wind-mast", "wind", "wind_2min_speed_mean", "wind_speed", "speed_mean", "2min", start,
                     start + 120.0, value, "m/s", 2 if valid else 1, 2, valid, quality, revision)


def test_the_alarm_stage_hands_revisions_to_the_machines_and_emits_nothing_for_them() -> None:
    limits = LimitsResolver()
    stage = AlarmStage(AlarmSet(create_alarms("work_at_height_wind", limits), limits))  # 10.8, clear < 9.8, 600 s
    events: list[AlarmEvent] = []

    def feed(*records: Aggregate) -> None:
        events.extend(r for r in stage(list(records), 0.0) if isinstance(r, AlarmEvent))

    feed(mean(0.0, 11.5))
    assert states(events) == [(Severity.ALARM, EventState.RAISED, 0.0)]
    feed(mean(120.0, 8.0), mean(240.0, 8.0))  # calm from 120
    feed(mean(360.0, 6.0, valid=False))  # a sample came late: the window closed invalid
    feed(mean(360.0, 8.5, revision=1))  # the backfill brought it: revised, calm
    assert len(events) == 1  # a revision emits nothing
    feed(mean(480.0, 8.0), mean(600.0, 8.0))
    feed(mean(720.0, 8.0))  # 600 s after 120: as if the sample had come on time
    assert states(events)[1:] == [(Severity.ALARM, CLEARED, 720.0)]
