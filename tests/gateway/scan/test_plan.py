"""The scan's planners, sans-IO: probes, timeouts, what a reply means, the line-setting search."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocols import modbus_rtu_master as rtu
from gateway.scan.plan import (
    IDENTIFY_ATTEMPTS,
    SILENCE,
    Heard,
    Probe,
    SerialSettings,
    SettingsSearch,
    UnitSweep,
    candidate_settings,
    classify,
    estimated_baud,
    identify_timeouts,
    probe_request,
    probe_timeout,
    rank_by_evidence,
)

ALL = candidate_settings()
BLIND = len(ALL) * 247  # every setting for every unit id


def test_the_probe_is_a_read_of_holding_register_0() -> None:
    assert probe_request(17).frame == rtu.with_crc(bytes.fromhex("1103 0000 0001"))


def test_probe_timeouts_follow_the_character_time() -> None:
    # Reply wire time (7 characters of 11 bits) plus 20 characters of turnaround, or the latency floor.
    assert probe_timeout(2400) == pytest.approx(27 * 11 / 2400)
    assert probe_timeout(9600) == pytest.approx(27 * 11 / 9600)
    assert probe_timeout(115200) == pytest.approx(7 * 11 / 115200 + 0.020)
    assert probe_timeout(115200, latency=0.005) == pytest.approx(7 * 11 / 115200 + 0.005)
    assert probe_timeout(2400) > 10 * probe_timeout(115200, latency=0.001)


def test_identity_reads_wait_longer_at_each_try() -> None:
    # A unit that answered a probe is there: its identity read gets several tries, each twice as patient.
    assert IDENTIFY_ATTEMPTS >= 3
    waits = identify_timeouts(9600, reply_bytes=9)
    assert waits == pytest.approx([29 * 11 / 9600 * 2**n for n in range(IDENTIFY_ATTEMPTS)])
    assert identify_timeouts(115200, latency=0.1)[0] == pytest.approx(probe_timeout(115200, 0.1))
    assert sum(identify_timeouts(9600)) < 0.5  # a unit silent to it costs under half a second at 9600 baud


def test_classify_vectors() -> None:
    request = probe_request(5)
    reply = rtu.encode_reply(request, rtu.Registers((5,)))
    exception = rtu.encode_reply(request, rtu.ExceptionReply(2))
    assert classify(request, b"") == SILENCE
    assert classify(request, reply) == Heard("answer", 7, zeros=reply.count(0))
    assert classify(request, exception) == Heard("answer", 5, zeros=exception.count(0), exception=2)
    assert classify(request, b"\x00\xff" + reply) == Heard("answer", 9, zeros=1 + reply.count(0))  # behind a tail
    assert classify(request, reply[:-1] + bytes([reply[-1] ^ 1])).kind == "garbage"
    assert classify(request, b"\x00\x00\x8c\x08") == Heard("garbage", 4, zeros=2)
    other = rtu.encode_reply(probe_request(6), rtu.Registers((6,)))
    assert classify(request, other).kind == "garbage"  # unit 6 answering is not unit 5


def test_unit_sweep_stops_after_the_silent_run_and_retries_garbage_once() -> None:
    sweep = UnitSweep(range(1, 248), stop_after_silence=3)
    answers = {1: Heard("answer", 7), 2: Heard("answer", 7), 4: Heard("garbage", 3)}
    asked = []
    while (unit := sweep.next_unit()) is not None:
        asked.append(unit)
        sweep.record(unit, answers.get(unit, SILENCE))
    assert asked == [1, 2, 3, 4, 4, 5, 6, 7]
    assert sweep.answered == [1, 2]
    assert sweep.garbled == [4]
    assert sweep.requests == 8
    with pytest.raises(ValueError, match="sweep is at unit None"):
        sweep.record(8, SILENCE)


def test_candidates_put_the_given_settings_first_without_repeats() -> None:
    first = [SerialSettings(4800, "N"), SerialSettings(9600, "N")]
    candidates = candidate_settings(first=first)
    assert candidates[:3] == [SerialSettings(4800), SerialSettings(9600), SerialSettings(9600, "E")]
    assert len(candidates) == len(set(candidates)) == 21


def test_garbage_ranks_the_nearest_baud_rates_first() -> None:
    # A device at 57600 heard at 9600: six times faster, so about 7/6 of a character came.
    heard = Heard("garbage", 1)
    assert estimated_baud(heard, 9600) == pytest.approx(67200)
    ranked = rank_by_evidence(ALL, heard, SerialSettings(9600))
    assert {s.baud for s in ranked[:3]} == {57600}
    # Garbage as long as the reply: the baud rate is right, the parity is not.
    ranked = rank_by_evidence(ALL, Heard("garbage", 7), SerialSettings(19200, "E"))
    assert {s.baud for s in ranked[:3]} == {19200}


def device_at(true: SerialSettings, unit: int, bytes_at: dict[int, int] | None = None):
    """A lone device, as the simulator models it: answers at its setting; garbage at others when addressed."""

    def heard(probe: Probe) -> Heard:
        if probe.unit != unit:
            return SILENCE
        if probe.settings == true:
            return Heard("answer", 7)
        size = max(1, round(7 * probe.settings.baud / true.baud)) if bytes_at is None else bytes_at[probe.settings.baud]
        return Heard("garbage", min(size, 40))

    return heard


def run_search(search: SettingsSearch, device) -> Probe | None:  # type: ignore[no-untyped-def]
    while (probe := search.next_probe()) is not None:
        search.record(probe, device(probe))
    return search.found


@settings(max_examples=60, deadline=None)
@given(true=st.sampled_from(ALL), unit=st.integers(1, 247))
def test_the_search_finds_any_setting_and_id_far_from_blind(true: SerialSettings, unit: int) -> None:
    search = SettingsSearch(ALL)
    assert run_search(search, device_at(true, unit)) == Probe(true, unit)
    # Likely ids everywhere (63), at most one sweep of the first setting (244), then the unit alone (<= 20),
    # and the answer once more to confirm it.
    assert search.requests <= 3 * 21 + 244 + 20 + 1
    assert search.requests < BLIND / 15


def test_a_likely_id_is_pinned_in_a_few_probes() -> None:
    search = SettingsSearch(ALL)
    found = run_search(search, device_at(SerialSettings(57600, "O"), 1))
    assert found == Probe(SerialSettings(57600, "O"), 1)
    # Garbage at the first probe (9600 8N1, unit 1), then 57600 with each parity at most, then the confirmation.
    assert search.requests <= 1 + 3 + 1
    assert [p.settings.baud for p, _ in search.evidence][1:] == [57600] * (search.requests - 1)


def test_a_device_that_only_garbles_is_given_up_and_the_search_goes_on() -> None:
    # Two devices: unit 2 answers garbage at every setting (a broken transceiver); unit 9 at 4800 8E1.
    garbler = device_at(SerialSettings(1, "N"), 2, bytes_at=dict.fromkeys((2400, 4800, 9600, 19200, 38400,
                                                                             57600, 115200), 3))
    good = device_at(SerialSettings(4800, "E"), 9)

    def both(probe: Probe) -> Heard:
        first = garbler(probe)
        return first if first is not SILENCE else good(probe)

    search = SettingsSearch(ALL)
    assert run_search(search, both) == Probe(SerialSettings(4800, "E"), 9)
    asked_unit_2 = [p for p, _ in search.evidence if p.unit == 2]
    assert len(asked_unit_2) == 21  # every setting once, then never again
    assert search.requests < BLIND / 10


def test_nothing_on_the_bus_ends_after_every_probe() -> None:
    search = SettingsSearch(ALL[:2], probe_ids=(1,), ids=range(1, 11))
    assert run_search(search, lambda probe: SILENCE) is None
    assert search.requests == 2 * 10
    assert search.phase == "done"


def test_a_probe_out_of_turn_is_refused() -> None:
    search = SettingsSearch(ALL)
    with pytest.raises(ValueError, match="recorded, but the search is at"):
        search.record(Probe(SerialSettings(2400), 99), SILENCE)


def test_every_probe_is_made_once() -> None:
    search = SettingsSearch(ALL[:3], probe_ids=(1, 2), ids=range(1, 6))
    asked = []
    while (probe := search.next_probe()) is not None:
        asked.append(probe)
        search.record(probe, SILENCE)
    assert sorted(asked) == sorted(Probe(s, u) for s, u in itertools.product(ALL[:3], range(1, 6)))


def test_unit_sweep_goes_past_a_known_unit_before_stopping_at_silence() -> None:
    sweep = UnitSweep(range(1, 248), stop_after_silence=2, known=[9])
    while (unit := sweep.next_unit()) is not None:
        sweep.record(unit, Heard("answer", 7) if unit == 9 else SILENCE)
    assert sweep.answered == [9]
    assert max(sweep.results) == 11


def test_a_late_reply_does_not_name_the_wrong_setting() -> None:
    # Unit 5 runs at 4800 8E1. Its garbage at 9600 8N1 points at 4800; at 4800 8N1 a reply that came too
    # late for an earlier probe lands in the window and looks like a proper answer. The confirmation
    # finds it out, and the search goes on to 4800 8E1.
    true = SerialSettings(4800, "E")
    device = device_at(true, 5)
    stray = {Probe(SerialSettings(4800, "N"), 5): [Heard("answer", 7)]}

    def late(probe: Probe) -> Heard:
        queued = stray.get(probe)
        return queued.pop(0) if queued else device(probe)

    search = SettingsSearch(ALL, probe_ids=(5,))
    assert run_search(search, late) == Probe(true, 5)
    answers = [p for p, h in search.evidence if h.answered]
    assert answers == [Probe(SerialSettings(4800, "N"), 5), Probe(true, 5), Probe(true, 5)]


def test_a_silent_unit_is_pinned_once_more_then_given_up() -> None:
    # Garbage from unit 1 at 9600 8N1, silence at every other setting: each asked twice, then given up.
    def once(probe: Probe) -> Heard:
        return Heard("garbage", 7) if probe == Probe(SerialSettings(9600), 1) else SILENCE

    search = SettingsSearch(ALL, probe_ids=(1,), ids=range(1, 3))
    assert run_search(search, once) is None
    asked = [p for p, _ in search.evidence]
    assert asked == [Probe(SerialSettings(9600), 1)]
    assert search.requests == 1 + 2 * 20 + 21  # unit 2 at every setting in the sweep


# -- an empty bus, and the quick sweep ------------------------------------------------------------------------


def patient_line_time(probes: int, settings: SerialSettings) -> float:
    """What `probes` probes nobody answers cost at `settings` when each waits the full probe timeout."""
    baud = settings.baud
    return probes * (rtu.wire_time(8, baud) + probe_timeout(baud) + rtu.t35(baud))


def test_an_empty_bus_is_searched_in_a_third_of_the_line_time_of_patient_probes() -> None:
    """Review: `scan --auto` on an empty bus took over 5 minutes, every probe of the 5187 waiting its timeout.

    Bound on the planned line time (request, wait, t3.5 of each probe), not on a clock: the likely ids keep
    their timeout, the sweep's probes wait 2 characters (a late reply is caught and rechecked)."""
    search = SettingsSearch(ALL)
    assert run_search(search, lambda probe: SILENCE) is None
    assert search.requests == BLIND  # nothing is left out: a device silent at wrong settings is still found
    patient = sum(patient_line_time(247, s) for s in ALL)
    assert patient > 300  # what it was: over 5 minutes
    assert search.line_time < patient / 3, (search.line_time, patient)
    assert search.line_time < 100


def test_a_device_silent_at_every_wrong_setting_is_still_found_by_the_quick_sweep() -> None:
    true = SerialSettings(2400, "O")  # the last setting tried, at an id far from the likely ones

    def silent_elsewhere(probe: Probe) -> Heard:
        return Heard("answer", 7) if probe == Probe(true, 200) else SILENCE

    search = SettingsSearch(ALL)
    assert run_search(search, silent_elsewhere) == Probe(true, 200)
    confirm = search.evidence[-1][0]
    assert not confirm.quick  # the quick probe's answer was asked again patiently before it counted


def test_a_late_reply_in_the_quick_sweep_has_its_probes_asked_again_patiently() -> None:
    # Unit 50 at 19200 8E1 answers slowly: its reply lands in the window of the quick probe of unit 52.
    true = SerialSettings(19200, "E")
    asked: list[Probe] = []

    def slow(probe: Probe) -> Heard:
        asked.append(probe)
        if probe.settings != true:
            return SILENCE
        if probe.quick:
            return Heard("garbage", 7) if probe.unit == 52 else SILENCE
        return Heard("answer", 7) if probe.unit == 50 else SILENCE

    search = SettingsSearch(ALL)
    assert run_search(search, slow) == Probe(true, 50)
    patient = [p.unit for p in asked if p.settings == true and not p.quick and p.unit > 3]  # after the likely ids
    assert patient[:3] == [52, 51, 50]  # the probe that heard it, then those before it, newest first
    assert patient[-1] == 50  # and the answer confirmed


def test_bytes_heard_after_a_settings_last_quick_probe_recheck_its_last_units() -> None:
    search = SettingsSearch(ALL[:1], probe_ids=(1,), ids=range(1, 6))
    while (probe := search.next_probe()) is not None:  # every probe made, nothing heard
        search.record(probe, SILENCE)
    last = Probe(ALL[0], 5, quick=True)
    search.heard_at(last)  # the driver listened after the last one and heard bytes
    rechecked = []
    while (probe := search.next_probe()) is not None:
        rechecked.append(probe)
        search.record(probe, SILENCE)
    # A reply may come up to a probe timeout (29 ms at 9600 baud) late: over the last three quick probes (15 ms each).
    assert [p.unit for p in rechecked] == [5, 4, 3] and not any(p.quick for p in rechecked)
