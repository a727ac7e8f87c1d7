"""The spike filter skips the MAD when a value is within the floor of the median (issue 13, fifth pass).

The threshold is max(n_sigmas * 1.4826 * MAD, floor): never below the floor, so the shortcut cannot
change a flag. Random series (quantised levels, steps, spikes, NaN and infinities with the range check
left out) are judged by the filter and by the definition written out, and the flags must agree.
"""

from __future__ import annotations

import math
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import Quality, Reading
from gateway.process import create_processor
from gateway.process.limits import LimitsResolver

values = st.lists(
    st.one_of(st.sampled_from([10.0, 10.1, 10.2, 12.0, 30.0, 80.0, math.nan, math.inf, -math.inf]),
              st.floats(0.0, 200.0)),
    min_size=1,
    max_size=60,
)


def expected_flags(series: list[float], window: int, sigmas: float, floor: float) -> list[bool]:
    kept: list[float] = []
    out = []
    for value in series:
        spike = False
        if len(kept) >= window:
            recent = kept[-window:]
            middle = statistics.median(recent)
            mad = statistics.median([abs(x - middle) for x in recent])
            spike = abs(value - middle) > max(sigmas * 1.4826 * mad, floor)
        kept.append(value)
        out.append(spike)
    return out


@settings(max_examples=200, deadline=None)
@given(values)
def test_the_spike_filter_flags_as_its_definition(series: list[float]) -> None:
    limits = LimitsResolver()
    hampel = create_processor("hampel", limits)
    floor = limits.site.quality.hampel_floor["pm10"]
    flags = []
    for i, value in enumerate(series):
        (out,) = hampel.process(Reading("d1", "dust", "pm10", value, "ug/m3", Quality.NORMAL, 1000.0 + i, i + 1))
        flags.append(out.quality is not Quality.NORMAL)
    quality = limits.site.quality
    assert flags == expected_flags(series, quality.hampel_window, quality.hampel_sigmas, floor)
