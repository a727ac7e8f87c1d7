# Humidity flag and the (unconfirmed form) kappa-Koehler correction.
# MicroPython-compatible (no pytest import, no f-string specs).

from firmware import humidity, regmap


def close(a, b, tol=1e-9):
    return abs(a - b) <= tol


def test_growth_factor_by_hand():
    # RH 50 %: aw = 0.5, 1/aw - 1 = 1, C = 1 + 0.3/1.65 = 1.181818...
    assert close(humidity.growth_factor(50.0, 0.3), 1.0 + 0.3 / 1.65)
    # RH 90 %: 1/0.9 - 1 = 1/9, C = 1 + 9 * 0.3/1.65 = 2.636363...
    assert close(humidity.growth_factor(90.0, 0.3), 1.0 + 9.0 * 0.3 / 1.65)
    # kappa 0 means no hygroscopic growth at any RH.
    assert close(humidity.growth_factor(90.0, 0.0), 1.0)


def test_dry_air_is_not_corrected():
    assert humidity.growth_factor(0.0) == 1.0
    assert humidity.correct(35.0, 0.0) == 35.0


def test_a_humidity_too_small_to_divide_is_dry_air():
    # 5e-324 / 100 is 0.0 in double precision (1/aw raised ZeroDivisionError); single precision reads it as 0.
    tiny = float("5e-324")
    assert humidity.growth_factor(tiny) == 1.0
    assert humidity.correct(35.0, tiny) == 35.0


def test_correct_divides_by_the_growth_factor():
    pm = humidity.correct(100.0, 50.0, 0.3)
    assert close(pm, 100.0 / (1.0 + 0.3 / 1.65))
    assert 84.6 < pm < 84.7


def test_correction_grows_with_humidity_and_kappa():
    last = 0.0
    for rh in (10.0, 40.0, 70.0, 85.0, 95.0):
        c = humidity.growth_factor(rh, 0.3)
        assert c > last
        last = c
    assert humidity.growth_factor(80.0, 0.6) > humidity.growth_factor(80.0, 0.3)


def test_saturation_is_capped():
    capped = humidity.growth_factor(95.0, 0.3)
    # 1/0.95 - 1 = 1/19: C = 1 + 19 * 0.3/1.65
    assert close(capped, 1.0 + 19.0 * 0.3 / 1.65)
    assert humidity.growth_factor(100.0, 0.3) == capped
    assert humidity.growth_factor(120.0, 0.3) == capped
    assert humidity.growth_factor(99.0, 0.3, rh_max=99.0) > capped


def test_high_humidity_flag():
    assert not humidity.is_humid(75.0)
    assert humidity.is_humid(75.1)
    assert humidity.is_humid(60.0, threshold=50.0)
    assert humidity.status_bits(80.0) == regmap.STATUS_HUMID
    assert humidity.status_bits(74.9) == 0
    assert humidity.status_bits(40.0, 30.0) == regmap.STATUS_HUMID
