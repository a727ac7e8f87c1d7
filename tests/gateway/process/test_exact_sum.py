"""Exact sums as whole numbers of 2^-1074 (gateway/process/wind.py) give math.fsum's float in any order."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from gateway.process.wind import ExactSum, exact, exact_value

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


@given(st.lists(st.one_of(finite, st.sampled_from([5e-324, -5e-324, 2.2250738585072014e-308, 0.0, -0.0, 1e16, 1.0])),
                max_size=60), st.randoms(use_true_random=False))
def test_exact_sums_are_fsum_in_any_order(terms: list[float], rng: random.Random) -> None:
    total = ExactSum()
    for x in rng.sample(terms, len(terms)):
        total.add(x)
    assert total.value == math.fsum(terms)


@given(finite)
def test_a_float_is_kept_exactly(x: float) -> None:
    assert exact_value(exact(x)) == x
