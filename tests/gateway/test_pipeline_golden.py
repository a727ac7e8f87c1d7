"""The default pipeline makes, record for record and byte for byte, what it made before issue 13's third pass.

See tests/gateway/pipeline_golden.py for the stream and how the fixture was made. A difference names
the first block of records that differs: print both versions' records with `--lines` and diff them.
"""

from __future__ import annotations

from pathlib import Path

from tests.gateway.pipeline_golden import digests

FIXTURE = Path(__file__).with_name("pipeline_golden.digests")


def test_the_pipeline_makes_the_same_records_as_before() -> None:
    expected = FIXTURE.read_text().splitlines()
    made = digests()
    counts = [line for line in made if line.startswith("count ")]
    assert counts == [line for line in expected if line.startswith("count ")]
    for old, new in zip(expected, made, strict=True):
        assert new == old, f"the records from line {new.split()[1]} on differ"
