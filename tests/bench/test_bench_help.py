"""Every benchmark starts: `--help` imports it whole and prints its usage (a bench that no longer imports, as
bench/hj212.py did after a constant it used was renamed, fails here rather than when someone needs its figures)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def test_the_benchmarks_are_all_here() -> None:
    assert {"cpu_per_poll.py", "pipeline.py", "mqtt.py", "hj212.py", "link_cpu.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_benchmark_prints_its_usage(script: str) -> None:
    proc = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True,
                          timeout=120, cwd=BENCH.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout, proc.stdout
