"""`kill -9` of `sitewatch run` in the middle of a window: the restarted gateway completes that window.

Real processes against the simulated site on a pseudo-terminal. The first
gateway is killed (SIGKILL: no shutdown, nothing flushed) in the middle of a
10-s window; the second rebuilds the window from the durable queue, the
backfill fetches the samples taken while no gateway ran, and the window comes
out whole, emitted once, exactly as the stored samples say.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from gateway.deliver.sqlite_store import SqliteStore
from simulator.site import BusSpec, NodeSpec, Site

WINDOW_S = 10.0
SAMPLE_S = 1.0  # the simulated node's sample interval (its firmware default)
POLL_S = 0.5


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def queued_aggregates(queue: Path) -> list[tuple[str, float, int, int]]:
    """(channel, start, revision, count) of every aggregate in the queue file."""
    if not queue.exists():
        return []
    db = sqlite3.connect(f"file:{queue}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT json_extract(body, '$.channel'), json_extract(body, '$.start'),"
            " coalesce(json_extract(body, '$.revision'), 0), json_extract(body, '$.count')"
            " FROM records WHERE kind = 'aggregate'"
        ).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        db.close()
    return [(str(c), float(s), int(r), int(n)) for c, s, r, n in rows]


def start(sitewatch: Path, config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(sitewatch), "run", "--config", str(config)], stderr=log.open("ab"))


def test_kill_9_in_the_middle_of_a_window_loses_none_of_it(tmp_path: Path) -> None:
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=7)
    store = tmp_path / "store.sqlite3"
    queue = tmp_path / "store-queue.sqlite3"
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[status]\nport = 0\n'  # no endpoint: the default port is shared by every test running at once
        f'[store]\npath = "{store}"\n[queue]\ndeliver_interval_s = 0.2\n[clock]\nrequire_sync = "never"\n'
        '[processing]\ntick_s = 0.2\nlate_s = 1.0\n[[processing.aggregator]]\ntype = "pm"\nchannels = ["pm10"]\n'
        f'windows = ["10s"]\n[limits.sampling]\ninterval_s = {SAMPLE_S}\n[spray]\nenabled = false\n'
        f'[[bus]]\nport = "{tmp_path / "buses" / "bus0"}"\n'
        f'[[bus.node]]\nname = "dust-1"\nkind = "dust"\nunit_id = 1\ninterval = {POLL_S}\n'
    )
    sitewatch = Path(sys.executable).with_name("sitewatch")
    log = tmp_path / "gateway.log"
    procs: list[subprocess.Popen[bytes]] = []
    with site:
        try:
            first = start(sitewatch, config, log)
            procs.append(first)
            wait_for(lambda: any(c == "pm10_10s_mean" for c, *_ in queued_aggregates(queue)), 90, "a first window")
            # Into the middle of a window (window starts are multiples of 10 s: +08:00 is too).
            wait_for(lambda: 4.0 <= time.time() % WINDOW_S <= 6.0, 30, "the middle of a window")
            killed_in = time.time() // WINDOW_S * WINDOW_S
            os.kill(first.pid, signal.SIGKILL)
            first.wait(30)
            second = start(sitewatch, config, log)
            procs.append(second)
            after = killed_in + WINDOW_S
            wait_for(lambda: any(c == "pm10_10s_mean" and s >= after for c, s, *_ in queued_aggregates(queue)),
                     90, "the window after the killed one")
            os.kill(second.pid, signal.SIGTERM)
            assert second.wait(60) == 0, log.read_text()
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(30)
    reader = SqliteStore(store)
    try:
        samples = [r for r in reader.readings(node="dust-1", channel="pm10")
                   if killed_in <= r.timestamp < killed_in + WINDOW_S and r.quality.value == "N"]
        rows = reader.query(
            "SELECT value, count, expected, valid, revision FROM aggregates"
            " WHERE channel = 'pm10_10s_mean' AND start = ?", (killed_in,))
    finally:
        reader.close()
    # The samples of the window, every one once: those of the first run, the backfilled, the second run's.
    sequences = sorted(r.sequence for r in samples)
    assert len(sequences) == len(set(sequences)) and len(sequences) >= 0.75 * WINDOW_S / SAMPLE_S, sequences
    ((value, count, expected, valid, _revision),) = rows
    assert (count, expected, valid) == (len(samples), WINDOW_S / SAMPLE_S, 1)
    assert abs(value - sum(r.value or 0.0 for r in samples) / len(samples)) <= 1e-9 * abs(value)
    # No window was emitted twice with the same revision (the restart re-emits nothing the queue holds).
    emitted = Counter((c, s, r) for c, s, r, _ in queued_aggregates(queue))
    assert max(emitted.values()) == 1, [k for k, n in emitted.items() if n > 1]
