"""The local store's disk use per node and day, by node kind, and what its retention costs.

One node of each kind polled once a second for `--hours` (simulated: the readings are made up,
with the kind's channels and plausible values), delivered to the real SQLite store sink code in
one-minute batches; the growth of the store's used pages, scaled to a day, is the disk budget of
one node. Then the retention deletes all of it in its 10 000-row transactions: the time of one
is about how long the store's next delivery can wait on it (readers are not blocked: WAL).

    python bench/store_budget.py [--hours 2]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from firmware import regmap
from gateway.deliver.queue import PRUNE_CHUNK, Batch, Queued
from gateway.deliver.sqlite_store import SqliteStore
from gateway.model import Quality, Reading

START = 1_790_000_000.0


def readings(kind_code: int, node: str, second: int, rng: random.Random) -> list[Reading]:
    kind = regmap.KIND_NAMES[kind_code]
    out = []
    for row in regmap.MEASUREMENTS[kind_code]:
        scale = row[3]
        value = round(rng.uniform(0.0, 500.0) * scale) / scale  # the register's resolution, as decoded
        out.append(Reading(node, kind, row[0], value, row[4], Quality.NORMAL, START + second, second + 1))
    return out


def measure(kind_code: int, hours: float, folder: Path) -> tuple[int, float, int, float]:
    """(readings per day, bytes per day, rows pruned, mean time of a prune transaction in s) for one node."""
    store = SqliteStore(folder / f"{regmap.KIND_NAMES[kind_code]}.sqlite3")
    rng = random.Random(kind_code)
    node = f"{regmap.KIND_NAMES[kind_code]}-1"
    before = store.used_bytes()
    seconds = int(hours * 3600)
    next_id = 1
    count = 0
    for minute in range(0, seconds, 60):
        batch = [r for s in range(minute, min(minute + 60, seconds)) for r in readings(kind_code, node, s, rng)]
        items = tuple(Queued(next_id + i, "reading", r) for i, r in enumerate(batch))
        store.store_batch(Batch("q", items))
        next_id += len(batch)
        count += len(batch)
    grown = store.used_bytes() - before
    day = 86400 / seconds
    started = time.perf_counter()
    pruned = store.prune_older(START + seconds + 1)  # the retention's loop: PRUNE_CHUNK rows a transaction
    per_transaction = (time.perf_counter() - started) / max(1, -(-pruned // PRUNE_CHUNK))
    store.close()
    return int(count * day), grown * day, pruned, per_transaction


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=2.0, help="simulated polling per node (default 2 h)")
    args = parser.parse_args()
    print(f"store growth, one node polled every second, {args.hours:g} h scaled to a day; retention of it all")
    print("| kind | channels | readings/day | MB/day | bytes/reading | rows pruned | per prune transaction |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for code in sorted(regmap.KIND_NAMES):
            per_day, bytes_day, pruned, per_transaction = measure(code, args.hours, Path(tmp))
            channels = len(regmap.MEASUREMENTS[code])
            print(f"| {regmap.KIND_NAMES[code]} | {channels} | {per_day} | {bytes_day / 1e6:.1f} | "
                  f"{bytes_day / per_day:.0f} | {pruned} | {per_transaction * 1000:.0f} ms |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
