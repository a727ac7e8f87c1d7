"""A workload for counting instructions of the pipeline path, a figure the machine's load does not move.

CPU time on the shared development machine varies by a third from run to run (other work on the
same cores evicts the caches); the number of instructions executed does not. This runs the first
SECONDS simulated seconds of `bench/pipeline.py`'s stream (32 nodes) through the default pipeline
and writes every record's queue body (no SQLite), or, with `--setup-only`, only builds the stream
and the pipeline. With `--queue`, the records go, once per simulated second as the gateway's writer
does, into `DurableQueue.append` of a new queue file under /tmp (SQLite included: the bodies, the
INSERTs, the commit). Under valgrind the difference of a run and a `--setup-only` run (with the same
`--queue` or not), divided by the readings printed, is the instructions per reading:

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/pipeline_ir.py [SECONDS (200)] [--setup-only] [--no-bodies | --queue]

("Collected" on valgrind's last line; about 20 s per run). Not a benchmark with a target: a way to
compare two versions of the code on a loaded machine (docs/performance.md, third pass).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline as bench  # bench/pipeline.py: the same stream

from gateway.deliver.queue import DurableQueue
from gateway.deliver.records import Record, to_json
from gateway.model import Reading
from gateway.pipeline import Pipeline, SprayPlan, build_pipeline
from gateway.process.limits import LimitsResolver


def feed_queue(pipeline: Pipeline, batches: list[tuple[float, list[Reading]]], queue: DurableQueue) -> int:
    """bench/pipeline.py's end-to-end loop: one append per simulated second. Returns the records appended."""
    pending: list[Record] = []
    appended = 0
    next_second = bench.START + 1
    for now, readings in batches:
        pending.extend(pipeline.feed(readings, now))
        if now >= next_second:
            pending.extend(pipeline.tick(now))
            appended += queue.append(pending)
            pending = []
            next_second += 1
    return appended + queue.append(pending)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seconds", type=int, nargs="?", default=200, help="simulated seconds of the stream")
    parser.add_argument("--setup-only", action="store_true", help="build the stream and the pipeline only")
    parser.add_argument("--no-bodies", action="store_true", help="do not write the records' queue bodies")
    parser.add_argument("--queue", action="store_true", help="append the records to a durable queue under /tmp")
    args = parser.parse_args()
    bench.SIM_SECONDS = args.seconds
    batches = bench.synthetic_batches()
    pipeline = build_pipeline(LimitsResolver(), spray=SprayPlan())
    if args.queue:
        with tempfile.TemporaryDirectory(prefix="sitewatch-ir-") as folder:
            queue = DurableQueue(Path(folder) / "queue.sqlite3", ["sqlite"])
            if not args.setup_only:
                appended = feed_queue(pipeline, batches, queue)
                print(f"{appended} records appended")
            queue.close()
    elif not args.setup_only:
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
