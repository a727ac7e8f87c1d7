# Wind speed from pulses, vane sectors, 3 s gusts. MicroPython-compatible.

import sys

from firmware import wind
from firmware.wind import GustTracker, PulseCounter


def test_pulse_counter_counts_and_takes():
    c = PulseCounter()
    for _ in range(25):
        c.irq(None)
    assert c.take() == 25
    assert c.take() == 0
    for _ in range(7):
        c.irq(None)
    assert c.take() == 7


def test_pulse_counter_wraps_without_losing_pulses():
    c = PulseCounter()
    c.count = wind.COUNT_MASK - 2
    c.take()
    for _ in range(5):
        c.irq(None)
    assert c.count == 2  # wrapped inside the small-int range
    assert c.take() == 5


def test_irq_allocates_nothing():
    c = PulseCounter()
    c.irq(None)
    if sys.implementation.name == "micropython":
        import gc

        gc.collect()
        before = gc.mem_alloc()
        for _ in range(1000):
            c.irq(None)
        assert gc.mem_alloc() == before
    else:
        for _ in range(1000):
            c.irq(None)
    assert c.take() == 1001


def test_known_frequency_to_speed():
    # 30 pulses in 1.5 s = 20 Hz; 0.0462 m/s per Hz + 0.21 m/s -> 1.134 m/s.
    f = wind.frequency(30, 1500)
    assert abs(f - 20.0) < 1e-9
    assert abs(wind.speed(f, 0.0462, 0.21) - 1.134) < 1e-9
    # The node's default: factor 0.1 m/s/Hz, no offset.
    assert abs(wind.speed(wind.frequency(100, 1000), 0.1, 0.0) - 10.0) < 1e-9


def test_still_cup_is_calm_not_the_offset():
    assert wind.speed(0.0, 0.0462, 0.21) == 0.0
    assert wind.frequency(0, 1000) == 0.0
    assert wind.frequency(5, 0) == 0.0


def test_vane_sectors():
    full = 4095
    assert wind.vane_direction(0, full) == 0.0
    assert wind.vane_direction(1024, full) == 90.0  # 90.02 deg
    assert wind.vane_direction(2048, full) == 180.0
    assert wind.vane_direction(3071, full) == 270.0
    # 22.5 deg steps: 30 deg is nearer 22.5 (NNE) than 45 (NE).
    assert wind.sector(30.0) == 1
    assert wind.sector(34.0) == 2
    assert wind.sector_degrees(2) == 45.0
    assert wind.vane_direction(341, full) == 22.5  # 29.98 deg


def test_vane_wraps_at_north():
    full = 4095
    # 355 deg and 5 deg are both north; 348.75 deg is the N/NNW boundary.
    assert wind.vane_direction(4039, full) == 0.0  # 355.1 deg
    assert wind.vane_direction(4095, full) == 0.0  # 360 deg
    assert wind.sector(348.0) == 15
    assert wind.sector(349.0) == 0
    assert wind.sector(-5.0) == 0
    assert wind.sector(715.0) == 0


def test_vane_mounting_offset():
    full = 4095
    # A vane mounted 90 deg off: its zero points east.
    assert wind.vane_direction(0, full, 90.0) == 90.0
    assert wind.vane_direction(3071, full, 90.0) == 0.0  # 270 + 90 wraps to north
    assert abs(wind.vane_degrees(3071, full, 100.0) - 9.98) < 0.01  # 369.98 deg
    assert wind.vane_direction(2048, full, 10.0) == 180.0  # 190.0 deg
    assert wind.vane_direction(2048, full, 20.0) == 202.5  # 200.0 deg


def test_eight_sectors():
    assert wind.vane_direction(512, 4095, 0.0, 8) == 45.0
    assert wind.sector(22.0, 8) == 0
    assert wind.sector(23.0, 8) == 1


def test_gust_is_max_of_3s_running_means():
    g = GustTracker(sample_ms=1000, span_ms=3000)
    assert g.window == 3
    for v in (2.0, 4.0):
        g.push(v)
    assert g.take() is None  # no full 3 s window yet
    for v in (6.0, 10.0, 2.0, 2.0):
        g.push(v)
    # Running means: (2,4,6)=4, (4,6,10)=6.667, (6,10,2)=6, (10,2,2)=4.667
    assert abs(g.take() - 20.0 / 3.0) < 1e-5
    assert g.take() is None
    g.push(2.0)
    assert abs(g.take() - 2.0) < 1e-5  # only the newest window (2, 2, 2) since the last take


def test_gust_window_of_quarter_second_samples():
    g = GustTracker(sample_ms=250, span_ms=3000)
    assert g.window == 12
    for _ in range(12):
        g.push(5.0)
    # A 1 s burst of 17 m/s (4 samples) raises the 3 s mean by 4 * 12 / 12 = 4.
    for _ in range(4):
        g.push(17.0)
    assert abs(g.take() - 9.0) < 1e-5
    assert abs(g.mean - 9.0) < 1e-5


def test_gust_ring_is_reused_not_grown():
    g = GustTracker()
    ring = g.ring
    for i in range(100):
        g.push(float(i % 7))
    assert g.ring is ring
    assert len(g.ring) == 3
    # last three pushes: 97 % 7 = 6, 98 % 7 = 0, 99 % 7 = 1
    assert abs(g.mean - 7.0 / 3.0) < 1e-5
