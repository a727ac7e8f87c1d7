"""The `sitewatch` command line, run as a user runs it (the installed console script)."""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.ops.cli import build_parser

SITEWATCH = shutil.which("sitewatch", path=str(Path(sys.executable).parent)) or "sitewatch"


def subcommands() -> list[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(actions[0].choices)


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """Every command and nested action (`config check`, `hj212 listen` ...), depth first."""
    paths: list[list[str]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in sorted(action.choices.items()):
                paths.append([*prefix, name])
                paths.extend(command_paths(sub, (*prefix, name)))
    return paths


def test_expected_subcommands_exist() -> None:
    assert {"demo", "simulate", "run", "check-config"} <= set(subcommands())


@pytest.mark.parametrize("command", [[], *command_paths(build_parser())], ids=lambda c: " ".join(c) or "top")
def test_every_command_has_help(command: list[str]) -> None:
    proc = subprocess.run([SITEWATCH, *command, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # The usage line names the whole command, so a nested action's own help was printed, not its parent's.
    assert f"usage: sitewatch {' '.join(command)}".rstrip() in proc.stdout
    assert len(proc.stdout.splitlines()) >= 3


def test_demo_runs_for_its_duration_and_stores_dust_and_wind(tmp_path: Path) -> None:
    store = tmp_path / "demo.sqlite3"
    proc = subprocess.run(
        [SITEWATCH, "demo", "--duration", "15", "--store", str(store)],
        capture_output=True, text=True, timeout=90, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Live lines carry their time since start; the first must come within 10 s.
    times = [float(t) for t in re.findall(r"^\[\s*([\d.]+)s\]", proc.stdout, re.MULTILINE)]
    assert times and times[0] < 10, proc.stdout
    # Each node shows up in the live lines; not all in the first on a loaded host (a node's first answer may come
    # after the first line: stress run s5a).
    live = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert any("dust-1: " in line for line in live) and any("wind-2: " in line for line in live), proc.stdout
    assert str(store) in proc.stdout
    with sqlite3.connect(store) as db:
        counts = dict(db.execute("SELECT node, COUNT(*) FROM readings WHERE value IS NOT NULL GROUP BY node"))
    assert counts.get("dust-1", 0) >= 6 * 10, counts
    assert counts.get("wind-2", 0) >= 3 * 10, counts


def test_check_config_names_the_bad_key(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[[bus]]\nport = "/dev/ttyUSB0"\nbaud = 9601\n[[bus.node]]\nkind = "dust"\nunit_id = 1\n')
    proc = subprocess.run([SITEWATCH, "check-config", str(config)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "bus[0].baud" in proc.stderr and "9601" in proc.stderr
    config.write_text('[[bus]]\nport = "/dev/ttyUSB0"\n[[bus.node]]\nkind = "dust"\nunit_id = 1\n')
    proc = subprocess.run([SITEWATCH, "check-config", str(config)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_demo_in_a_terminal_shows_a_live_table_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    import os
    import pty
    import select
    import signal
    import time

    store = tmp_path / "demo.sqlite3"
    pid, fd = pty.fork()
    if pid == 0:  # child: the demo, attached to a terminal as a user would run it
        os.chdir(tmp_path)
        os.environ["COLUMNS"] = "200"
        os.execv(SITEWATCH, [SITEWATCH, "demo", "--store", str(store)])
    output = b""
    deadline = time.monotonic() + 30
    sent_interrupt = False
    status = None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            with contextlib.suppress(OSError):
                output += os.read(fd, 65536)
        if not sent_interrupt and b"wind_speed" in output and b"pm10" in output and b"running: " in output:
            os.kill(pid, signal.SIGINT)  # what Ctrl-C sends
            sent_interrupt = True
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    while True:  # drain what is left
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(fd)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode(errors="replace"))
    assert sent_interrupt, "the live table never showed dust and wind readings:\n" + text[-2000:]
    assert status is not None and os.waitstatus_to_exitcode(status) == 0, text[-2000:]
    assert "sitewatch demo" in text  # the table's title
    assert "demo.sqlite3" in text and "readings in the store" in text
    # The footer: per sink delivered / waiting, and what the demo started; all of it stopped with the demo.
    assert "sinks: sqlite " in text and "running: " in text and "HJ 212 receiver 127.0.0.1:" in text
    started = re.search(r"influxd pid (\d+)", text)
    assert started and f"stopped influxd (pid {started.group(1)})" in text, text[-2000:]
    stat = Path(f"/proc/{started.group(1)}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", "influxd runs after Ctrl-C"
