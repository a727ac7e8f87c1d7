"""Disk writes and fsyncs of the durable queue and the local store for a 32-node site polled every second.

The real path, in real time: synthetic polls (32 nodes, 8 of each kind, each polled once a second,
spread over the second as one bus owner per 16 nodes does) go through the default pipeline and
the gateway's writer (gateway/deliver/writer.py, group commit) into the durable queue, and a
Delivery moves them to the SQLite store sink every second, as ``sitewatch run`` does. No serial
line: the polls are made up (bench/pipeline.py's values), so that only the disk path is measured.

Each commit interval runs in a child process under ``strace -f -ttt -e trace=fsync,fdatasync``
(strace must be installed: it is the fsync counter). Printed per interval: commits of the queue
per second, fsyncs per second, bytes written to the disk per second (``write_bytes`` of
/proc/self/io: pages the process dirtied in the page cache, i.e. what reaches the device) and
what that projects to per day, and the growth of both files per node per day (the operator's
disk budget: the store keeps it for good, the queue for ``retention_days``). Runs shorter
than a minute close no aggregation window: aggregates (a few per cent of the records) are not in
these figures. Interval 0 is the old behaviour: one commit
per poll.

The last row delivers to the store every 5 s instead of every second (``deliver_interval_s``): the
store's index pages are rewritten once per delivery. Target: at the defaults (500 ms, 1 s), at most
5 fsyncs per second and at most 1/3 of the bytes a commit per poll writes. Exits 1 if missed.

    python bench/disk_io.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pipeline import CHANNELS, NODES_PER_KIND, UNITS, value
from gateway.deliver.dispatch import Delivery
from gateway.deliver.queue import DurableQueue
from gateway.deliver.sqlite_store import SqliteSink
from gateway.deliver.writer import QueueWriter
from gateway.model import Quality, Reading
from gateway.pipeline import SprayPlan, build_pipeline
from gateway.process.limits import LimitsResolver

# (queue commit interval ms, store delivery interval s); the first is the old writer, the third the default.
RUNS = ((0, 1.0), (250, 1.0), (500, 1.0), (1000, 1.0), (500, 5.0))
DEFAULT = (500, 1.0)
FSYNC_TARGET = 5.0  # per second, at the default interval
BYTES_TARGET = 1 / 3  # of what a commit per poll writes
NODES = 4 * NODES_PER_KIND


def io_counters() -> dict[str, int]:
    pairs = (line.split(":") for line in Path("/proc/self/io").read_text().splitlines())
    return {key.strip(): int(number) for key, number in pairs}


def file_bytes(path: Path) -> int:
    return sum(Path(str(path) + s).stat().st_size for s in ("", "-wal") if Path(str(path) + s).exists())


async def site(folder: Path, interval_ms: int, deliver_s: float, seconds: float) -> dict[str, float]:
    queue_path, store_path = folder / "queue.sqlite3", folder / "store.sqlite3"
    queue = DurableQueue(queue_path, ["sqlite"])
    sink = SqliteSink("sqlite", str(store_path))
    delivery = Delivery(queue, sink, batch=500, interval=deliver_s)
    writer = QueueWriter(queue, interval_ms / 1000.0, on_written=delivery.wake.set)
    pipeline = build_pipeline(LimitsResolver(), spray=SprayPlan())
    nodes = [(f"{kind}-{i + 1}", kind) for kind in CHANNELS for i in range(NODES_PER_KIND)]
    rng = random.Random(1)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(writer.run(stop)), asyncio.create_task(delivery.run(stop))]
    before = io_counters()
    started = time.monotonic()
    started_wall = time.time()
    polls = 0
    while time.monotonic() - started < seconds:
        second = polls // NODES
        node, kind = nodes[polls % NODES]
        await asyncio.sleep(max(0.0, started + polls / NODES - time.monotonic()))
        now = time.time()
        readings = [Reading(node, kind, c, value(c, now, rng), UNITS[c], Quality.NORMAL, now, second + 1)
                    for c in CHANNELS[kind]]
        writer.add(pipeline.feed(readings, now))
        if polls % NODES == NODES - 1:
            writer.add(pipeline.tick(now))
        polls += 1
    stop.set()
    await asyncio.gather(*tasks)
    await writer.flush()
    await delivery.flush(30.0)
    elapsed = time.monotonic() - started
    ended_wall = time.time()
    after = io_counters()
    # The files' size without their WAL, which holds the same pages again until a checkpoint.
    for db in (queue._db, sink.store._db):
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    result = {
        "seconds": elapsed,
        "from": started_wall,
        "to": ended_wall,
        "polls": polls,
        "records": queue.stats.appended,
        "commits": queue.stats.commits,
        "write_bytes": after["write_bytes"] - before["write_bytes"],
        "wchar": after["wchar"] - before["wchar"],
        "queue_bytes": file_bytes(queue_path),
        "store_bytes": file_bytes(store_path),
        "stored": sink.readings_stored,
    }
    queue.close()
    sink.close()
    return result


def child(interval_ms: int, deliver_s: float, seconds: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="sitewatch-disk-io-"))
    try:
        print(json.dumps(asyncio.run(site(folder, interval_ms, deliver_s, seconds))))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fsyncs(strace_log: str, start: float, end: float) -> int:
    """fsync + fdatasync calls between start and end (epoch seconds) in `strace -f -ttt` output.

    Opening the files (creating the tables) and the final checkpoint are left out: steady state only.
    """
    total = 0
    for line in strace_log.splitlines():
        fields = line.split(maxsplit=2)
        if len(fields) == 3 and fields[2].startswith(("fsync(", "fdatasync(")) and start <= float(fields[1]) <= end:
            total += 1
    return total


def run(interval_ms: int, deliver_s: float, seconds: float) -> dict[str, float]:
    strace = shutil.which("strace")
    if strace is None:
        raise SystemExit("strace is not installed: it counts the fsyncs (apt-get install strace)")
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as summary:
        out = subprocess.run(
            [strace, "-f", "-ttt", "-e", "trace=fsync,fdatasync", "-o", summary.name, sys.executable, __file__,
             "--child", str(interval_ms), "--deliver", str(deliver_s), "--seconds", str(seconds)],
            check=True, capture_output=True, text=True,
        )
        result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
        result["fsyncs"] = fsyncs(Path(summary.name).read_text(), result["from"], result["to"])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--deliver", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.deliver, args.seconds)
        return 0
    print(f"{NODES} nodes polled once a second, {args.seconds:g} s per interval, pipeline + queue + store sink")
    print(f"{'commit, delivery':>16} {'commits/s':>10} {'fsyncs/s':>9} {'disk kB/s':>10} {'GB/day':>7} "
          f"{'write() kB/s':>13} {'queue MB/node/day':>18} {'store MB/node/day':>18}")
    results = {}
    for interval, deliver_s in RUNS:
        r = results[interval, deliver_s] = run(interval, deliver_s, args.seconds)
        s = r["seconds"]
        queue_day, store_day = (r[f] / NODES / s * 86400 / 1e6 for f in ("queue_bytes", "store_bytes"))
        disk = r["write_bytes"] / s
        print(f"{interval:>7} ms, {deliver_s:>3g} s {r['commits'] / s:>10.1f} {r['fsyncs'] / s:>9.1f} "
              f"{disk / 1000:>10.1f} "
              f"{disk * 86400 / 1e9:>7.2f} {r['wchar'] / s / 1000:>13.1f} {queue_day:>18.1f} {store_day:>18.1f}")
    default, per_poll = results[DEFAULT], results[RUNS[0]]
    default_ms = DEFAULT[0]
    ok = True
    if default["fsyncs"] / default["seconds"] > FSYNC_TARGET:
        print(f"MISSED: {default['fsyncs'] / default['seconds']:.1f} fsyncs/s at {default_ms} ms "
              f"(target <= {FSYNC_TARGET})")
        ok = False
    ratio = (default["write_bytes"] / default["seconds"]) / max(1.0, per_poll["write_bytes"] / per_poll["seconds"])
    print(f"bytes to disk at {default_ms} ms: {ratio:.2f} of a commit per poll (target <= {BYTES_TARGET:.2f})")
    if ratio > BYTES_TARGET:
        ok = False
    stored = default["stored"] / default["seconds"]
    print(f"readings stored per second at {default_ms} ms: {stored:.0f}; records queued: "
          f"{default['records'] / default['seconds']:.0f}/s; bytes per reading in the files: queue "
          f"{default['queue_bytes'] / default['records']:.0f}, store {default['store_bytes'] / default['stored']:.0f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
