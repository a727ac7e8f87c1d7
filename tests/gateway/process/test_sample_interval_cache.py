"""SampleIntervals keeps each node's measured interval until the node's next sample (issue 13).

The kept answer must be what measuring afresh gives, through restarts (sequence back to 1), samples
fetched late, repeated samples and the span's oldest sample falling out.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.process.aggregate import SampleIntervals

steps = st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from([0, 1, 1, 1, 2, -40]),
                           st.sampled_from([1.0, 1.0, 0.5, 2.0, 0.0, -3.0])), max_size=80)


@given(steps)
def test_the_kept_interval_is_the_measured_one(plan: list[tuple[str, int, float]]) -> None:
    kept, fresh = SampleIntervals(), SampleIntervals()
    sequence = {"a": 0, "b": 0}
    t = {"a": 100.0, "b": 200.0}
    for node, step, dt in plan:
        sequence[node] = max(0, sequence[node] + step)
        t[node] += dt
        for intervals in (kept, fresh):
            intervals.observe(node, sequence[node], t[node])
        for other in ("a", "b"):
            fresh._measured.clear()  # measured afresh every time
            assert kept.get(other) == fresh.get(other)
