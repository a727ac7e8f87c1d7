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


def test_auto_on_an_empty_bus_probes_every_setting_quickly_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review: `scan --auto` on an empty bus took over 5 minutes. Bound on the requests on the wire and the
    line time they planned (not the wall clock): ids 1-3 at every setting with the probe timeout, the rest
    with quick probes, one listen per setting."""
    from gateway.protocols import modbus_rtu_master as rtu
    from gateway.scan.plan import candidate_settings, line_time, probe_request, probe_timeout, quick_timeout

    with Site([BusSpec("bus0", (), baud=19200)], tmp_path, burst=True) as site:
        status, out, err, _ = run(capsys, "scan", "--port", site.paths["bus0"], "--auto", "--ids", "1-12",
                                  "--latency-ms", "20")
        on_the_wire = site.bus("bus0").stats.frames_in
    assert status == 1, (out, err)
    said = re.search(r"no device answered at any setting \((\d+) requests, ([\d.]+) s of line time\)", err)
    assert said, err
    settings = candidate_settings()
    assert int(said.group(1)) == len(settings) * 12  # every setting, every id, once
    # The bus saw no more (two back-to-back requests a starved simulator thread reads as one frame count once).
    assert 0 < on_the_wire <= len(settings) * 12
    request = probe_request(1)
    patient = sum(12 * line_time(request, s.baud, probe_timeout(s.baud)) for s in settings)
    planned = sum(3 * line_time(request, s.baud, probe_timeout(s.baud)) + 9 * line_time(request, s.baud,
                  quick_timeout(s.baud)) + probe_timeout(s.baud) for s in settings)
    assert float(said.group(2)) == pytest.approx(planned, abs=0.05)
    assert planned < 0.6 * patient
    assert rtu.wire_time(8, 2400) < quick_timeout(2400) * 5  # the quick wait is characters, not a timeout


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
