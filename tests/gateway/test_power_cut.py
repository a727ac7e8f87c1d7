"""kill -9 of `sitewatch run` with readings waiting for the group commit: the node's history ring refills them.

The promise of ``queue.commit_interval_ms`` (gateway/deliver/writer.py): a power cut loses at most
that much of the newest readings from the queue, and the next start fetches them again from the
nodes' history rings, because the acquisition resumes after the newest reading the queue holds.
Here the interval is 5 s, so that the kill certainly falls while polled readings wait in memory.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gateway.deliver.sqlite_store import SqliteStore
from simulator.site import BusSpec, NodeSpec, Site


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def newest_sequence(path: Path, sql: str) -> int:
    """The newest pm10 sample sequence in a file another process writes (0: none yet)."""
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute(sql).fetchone()
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        db.close()
    return int(row[0]) if row and row[0] is not None else 0


QUEUED = ("SELECT max(json_extract(body, '$.seq')) FROM records WHERE kind = 'reading'"
          " AND json_extract(body, '$.channel') = 'pm10'")
STORED = "SELECT max(sequence) FROM readings WHERE channel = 'pm10'"


def test_kill_9_between_group_commits_loses_no_sample(tmp_path: Path) -> None:
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=5)
    store, queue = tmp_path / "store.sqlite3", tmp_path / "store-queue.sqlite3"
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
[status]
port = 0  # no endpoint: the default port is shared by every test running at once
[store]
path = "{store}"
[queue]
commit_interval_ms = 5000
deliver_interval_s = 0.2
[clock]
require_sync = "never"
[[bus]]
name = "bus0"
port = "{tmp_path / 'buses' / 'bus0'}"
[[bus.node]]
name = "dust-1"
kind = "dust"
unit_id = 1
interval = 0.5
""")
    command = [sys.executable, "-m", "gateway", "run", "--config", str(config), "--log-level", "WARNING"]
    with site:
        node = site.node("bus0", 1).sensor
        first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: newest_sequence(queue, QUEUED) > 0, "the first commit")
            # Samples the node took that the queue does not hold: polled and waiting, or not yet polled.
            wait_for(lambda: max(node.truth) >= newest_sequence(queue, QUEUED) + 3, "samples beyond the queue")
        finally:
            first.kill()  # SIGKILL: no flush, as a power cut
            first.communicate(timeout=30)
        queued_at_kill = newest_sequence(queue, QUEUED)
        taken_at_kill = max(node.truth)
        assert taken_at_kill >= queued_at_kill + 3
        second = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: newest_sequence(store, STORED) >= taken_at_kill + 2, "the second run's samples")
        finally:
            second.send_signal(signal.SIGTERM)
            _, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
    reader = SqliteStore(store)
    try:
        pm10 = [r for r in reader.readings(node="dust-1", channel="pm10") if r.sequence > 0]
    finally:
        reader.close()
    sequences = [r.sequence for r in pm10]
    # Every sample once, in order, across the kill: those that waited for the commit came back from the ring.
    assert sequences == list(range(sequences[0], sequences[-1] + 1)), sequences
    assert sequences[0] <= queued_at_kill and sequences[-1] >= taken_at_kill + 2
