"""Issue 10 review: `sitewatch scan` on a bus where nobody answers terminates and says so; `sitewatch read` of
a device at a wrong unit id says there was no reply, never a value."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from gateway.ops.cli import main
from simulator.site import BusSpec, NodeSpec, Site


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str, float]:
    started = time.monotonic()
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err, time.monotonic() - started


def test_scan_of_an_empty_bus_terminates_and_says_nothing_was_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Site([BusSpec("bus0", (), baud=19200)], tmp_path, burst=True) as site:
        port = site.paths["bus0"]
        status, out, err, _ = run(capsys, "scan", "--port", port, "--baud", "19200", "--stop-after-silence", "10")
        assert status == 1, (out, err)
        assert "0 device(s) answered" in out and not re.search(r"unit +\d+:", out), out
        status, out, err, _ = run(capsys, "scan", "--port", port, "--baud", "19200", "--ids", "1-40", "--toml")
        assert status == 1, (out, err)
        assert "[[bus.node]]" not in out and "[[bus.device]]" not in out, out


def test_read_at_a_wrong_unit_id_is_no_reply_not_a_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = (NodeSpec("wind", 7, profile="lambrecht-14524-wind-speed"),)
    with Site([BusSpec("bus0", specs, baud=9600)], tmp_path, burst=True) as site:
        port = site.paths["bus0"]
        status, out, err, _ = run(capsys, "read", "--port", port, "--unit", "8", "--profile",
                                  "lambrecht-14524-wind-speed", "--timeout", "0.3")
        assert status == 1 and out == "", (out, err)
        assert "unit 8" in err and "no reply" in err, err
        # The right id reads (so the wrong one failed for the reason it names).
        status, out, err, _ = run(capsys, "read", "--port", port, "--unit", "7", "--profile",
                                  "lambrecht-14524-wind-speed", "--timeout", "2")
        assert status == 0 and "wind_speed" in out, (out, err)
