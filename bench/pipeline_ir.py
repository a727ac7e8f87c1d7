"""A workload for counting instructions of the pipeline path, a figure the machine's load does not move.

CPU time on the shared development machine varies by a third from run to run (other work on the
same cores evicts the caches); the number of instructions executed does not. This runs the first
SECONDS simulated seconds of `bench/pipeline.py`'s stream (32 nodes) through the default pipeline
and writes every record's queue body (no SQLite), or, with `--setup-only`, only builds the stream
and the pipeline. Under valgrind the difference of the two, divided by the readings printed, is
the instructions per reading:

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/pipeline_ir.py [SECONDS (200)] [--setup-only] [--no-bodies]

("Collected" on valgrind's last line; about 20 s per run). Not a benchmark with a target: a way to
compare two versions of the code on a loaded machine (docs/performance.md, third pass).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline as bench  # bench/pipeline.py: the same stream

from gateway.deliver.records import to_json
from gateway.pipeline import SprayPlan, build_pipeline
from gateway.process.limits import LimitsResolver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seconds", type=int, nargs="?", default=200, help="simulated seconds of the stream")
    parser.add_argument("--setup-only", action="store_true", help="build the stream and the pipeline only")
    parser.add_argument("--no-bodies", action="store_true", help="do not write the records' queue bodies")
    args = parser.parse_args()
    bench.SIM_SECONDS = args.seconds
    batches = bench.synthetic_batches()
    pipeline = build_pipeline(LimitsResolver(), spray=SprayPlan())
    if not args.setup_only:
        next_second = bench.START + 1
        for now, readings in batches:
            out = pipeline.feed(readings, now)
            if now >= next_second:
                out += pipeline.tick(now)
                next_second += 1
            if not args.no_bodies:
                for record in out:
                    to_json(record)
    print(f"{sum(len(b) for _, b in batches)} readings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
