"""Run-time faults through the HTTP control API (real requests with urllib), seen by a raw master."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulator.bus import wire_time
from simulator.control import ControlServer
from simulator.site import BusSpec, NodeSpec, Site
from simulator.tcp import rtu_pdu
from tests.simulator.test_bus_timing import RawMaster, read_request
from tests.support.waiting import wait_until

BAUD = 19200
READ = read_request(1, 0, 10)
REPLY = 5 + 2 * 10
SITEWATCH = shutil.which("sitewatch", path=str(Path(sys.executable).parent)) or "sitewatch"


def call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Site, str]]:
    buses = (BusSpec("bus0", (NodeSpec("dust", 1), NodeSpec("dust", 2)), baud=BAUD),)
    with Site(buses, tmp_path / "buses") as running, ControlServer(running) as control:
        yield running, control.url


def answers(master: RawMaster, unit: int) -> bytes:
    _, data, _ = master.transact(read_request(unit, 0, 10), REPLY, timeout=0.2)
    return data


def test_the_site_and_its_faults_are_listed(site: tuple[Site, str]) -> None:
    running, url = site
    status, body = call(url + "/site")
    assert status == 200
    assert body["scenario"] == "adhoc"
    assert body["buses"] == [
        {"name": "bus0", "path": running.paths["bus0"], "transport": "rtu", "baud": BAUD,
         "nodes": [{"kind": "dust", "unit_id": 1}, {"kind": "dust", "unit_id": 2}]}
    ]
    status, body = call(url + "/faults")
    assert status == 200 and body["faults"] == [] and body["time"] >= 0


def test_no_reply_is_added_listed_and_cleared(site: tuple[Site, str]) -> None:
    running, url = site
    with RawMaster(running.paths["bus0"]) as master:
        assert len(answers(master, 2)) == REPLY
        status, body = call(url + "/faults", "POST", {"bus": "bus0", "unit_id": 2, "kind": "no_reply"})
        assert status == 201 and body["fault"]["kind"] == "no_reply" and body["fault"]["end"] is None
        assert answers(master, 2) == b""  # silent ...
        assert len(answers(master, 1)) == REPLY  # ... alone
        status, body = call(url + "/faults")
        assert [(f["kind"], f["unit_id"], f["active"]) for f in body["faults"]] == [("no_reply", 2, True)]
        status, body = call(url + "/faults?unit_id=2", "DELETE")
        assert status == 200 and [f["kind"] for f in body["cleared"]] == ["no_reply"]
        assert len(answers(master, 2)) == REPLY
        status, body = call(url + "/faults")
        assert [f["active"] for f in body["faults"]] == [False]
    assert running.bus("bus0").stats.ignored >= 1


def test_late_replies_crc_errors_and_garbage_on_the_line(site: tuple[Site, str]) -> None:
    running, url = site
    exchange = wire_time(8 + REPLY, BAUD)
    with RawMaster(running.paths["bus0"]) as master:
        call(url + "/faults", "POST", {"bus": "bus0", "unit_id": 1, "kind": "late_reply", "delay_ms": 150})
        sent, data, arrivals = master.transact(READ, REPLY)
        assert len(data) == REPLY and arrivals[-1] - sent >= exchange + 0.002 + 0.150
        call(url + "/faults", "DELETE")

        call(url + "/faults", "POST", {"bus": "bus0", "unit_id": 1, "kind": "crc_corruption"})
        _, data, _ = master.transact(READ, REPLY)
        assert len(data) == REPLY and data[:3] == bytes((1, 4, 20)) and rtu_pdu(data) is None
        call(url + "/faults", "DELETE")
        assert rtu_pdu(master.transact(READ, REPLY)[1]) is not None

        status, _ = call(url + "/faults", "POST", {"bus": "bus0", "kind": "garbage", "length": 5, "duration": "1h"})
        assert status == 201
        _, data, _ = master.transact(READ, REPLY + 5)
        assert len(data) == REPLY + 5 and rtu_pdu(data[5:]) is not None  # noise, then the reply runs into it
        call(url + "/faults", "DELETE")
    stats = running.bus("bus0").stats
    assert stats.late == 1 and stats.corrupted == 1 and stats.garbage == 1


def test_an_unplugged_bus_is_silent_until_plugged_back_in(site: tuple[Site, str]) -> None:
    running, url = site
    with RawMaster(running.paths["bus0"]) as master:
        status, body = call(url + "/faults", "POST", {"bus": "bus0", "kind": "bus_unplugged"})
        assert status == 201 and body["fault"]["unit_id"] is None
        assert answers(master, 1) == b"" and answers(master, 2) == b""
        call(url + "/faults?kind=bus_unplugged", "DELETE")
        assert len(answers(master, 1)) == REPLY


def test_a_reboot_from_the_api_restarts_the_sequence(site: tuple[Site, str]) -> None:
    running, url = site
    wait_until(lambda: running.node("bus0", 1).node.seq >= 2)
    before = running.node("bus0", 1).node.seq
    status, body = call(url + "/faults", "POST", {"bus": "bus0", "unit_id": 1, "kind": "reboot", "duration": 0.2})
    assert status == 201 and body["fault"]["end"] - body["fault"]["start"] == pytest.approx(0.2)
    # Booted again (however late a busy host lets the bus thread see it), with a fresh sequence.
    wait_until(lambda: running.node("bus0", 1).node.bank.get_input("boot_count") == 2)
    node = running.node("bus0", 1).node
    assert before >= 2 and node.seq < before


def test_replugging_the_adapter_hangs_up_and_the_stable_path_leads_to_a_new_port(site: tuple[Site, str]) -> None:
    running, url = site
    link = running.paths["bus0"]
    old_pty = os.path.realpath(link)
    with RawMaster(link) as master:
        assert len(answers(master, 1)) == REPLY
        status, body = call(url + "/buses/bus0/replug", "POST", {"away": 0.1})
        assert status == 200 and body["path"] == link
        ready, _, _ = select.select([master.fd], [], [], 1.0)
        assert ready  # a hang-up: the port reads as ended (EOF or EIO), as a pulled USB adapter does
        try:
            ended = os.read(master.fd, 16) == b""
        except OSError:
            ended = True
        assert ended
    assert os.path.realpath(link) != old_pty or body["pty"] == old_pty  # the kernel may reuse the number
    with RawMaster(link) as master:
        assert len(answers(master, 1)) == REPLY


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"bus": "bus0", "unit_id": 1, "kind": "meltdown"}, "kind: 'meltdown'"),
        ({"bus": "bus9", "unit_id": 1, "kind": "no_reply"}, "bus: 'bus9'"),
        ({"bus": "bus0", "kind": "no_reply"}, "unit_id: missing"),
        ({"bus": "bus0", "unit_id": 7, "kind": "no_reply"}, "no node 7"),
        ({"bus": "bus0", "unit_id": 1, "kind": "bus_unplugged"}, "whole bus"),
        ({"bus": "bus0", "unit_id": 1, "kind": "stuck_value", "channel": "wind_speed"}, "not a dust measurement"),
        ({"bus": "bus0", "unit_id": 1, "kind": "no_reply", "delay_ms": 5}, "takes no delay_ms"),
        ({"bus": "bus0", "unit_id": 1, "kind": "late_reply", "delay_ms": -5}, "delay_ms"),
        ({"bus": "bus0", "unit_id": 1, "kind": "no_reply", "duration": "soon"}, "duration"),
        ({"bus": "bus0", "unit_id": 1, "kind": "no_reply", "colour": "red"}, "unknown keys ['colour']"),
        ([1, 2], "JSON object"),
    ],
)
def test_a_bad_fault_is_refused_with_the_reason(site: tuple[Site, str], body: Any, problem: str) -> None:
    running, url = site
    status, reply = call(url + "/faults", "POST", body)
    assert status == 400 and problem in reply["error"], reply
    assert running.faults.all() == ()


def test_unknown_resources_are_404(site: tuple[Site, str]) -> None:
    _, url = site
    assert call(url + "/nothing")[0] == 404
    assert call(url + "/buses/bus7/replug", "POST", {})[0] == 404


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_cli_prints_its_buses_and_control_url_and_serves_the_api(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [SITEWATCH, "simulate", "--scenario", "faults", "--speed", "5", "--bus-dir", str(tmp_path),
         "--control-port", str(port), "--duration", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        assert lines[1] == f"boundary: {tmp_path / 'boundary'} (9600 baud 8N1; dust 1, noise 2, dust 3)\n", lines
        assert lines[2].startswith(f"tower: {tmp_path / 'tower'} (19200 baud 8N1;"), lines
        assert lines[3] == f"control: http://127.0.0.1:{port}/faults\n", lines
        status, body = call(re.sub(r"\s+$", "", lines[3].split(": ", 1)[1]))
        assert status == 200 and len(body["faults"]) == 11  # the scenario's timeline
        status, body = call(f"http://127.0.0.1:{port}/faults", "POST", {"bus": "tower", "kind": "bus_unplugged"})
        assert status == 201
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped at simulated 2025-04-15 09:0" in out


def test_the_cli_lists_the_scenarios_and_writes_the_truth(tmp_path: Path) -> None:
    from simulator.scenario import builtin_names, load_builtin
    from simulator.truth import read_truth

    listed = subprocess.run([SITEWATCH, "simulate", "--list"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    names = re.findall(r"^(\w+): ", listed.stdout, re.MULTILINE)
    assert names == builtin_names()
    assert " ".join(load_builtin("typhoon").description.split())[:60] in " ".join(listed.stdout.split())

    truth = tmp_path / "truth.jsonl"
    ran = subprocess.run(
        [SITEWATCH, "simulate", "--scenario", "night_work", "--skip", "3h", "--speed", "60", "--duration", "1.5",
         "--bus-dir", str(tmp_path / "buses"), "--truth", str(truth)],
        capture_output=True, text=True, timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert f"boundary: {tmp_path / 'buses' / 'boundary'} (9600 baud 8N1;" in ran.stdout
    assert "from 2025-04-15 22:00:00 +0800 at 60x speed" in ran.stdout
    records = read_truth(truth)
    assert {(r.bus, r.unit_id) for r in records} == {("boundary", u) for u in (1, 2, 3, 4)}
    assert len(records) >= 4 * 60  # a minute and a half, simulated
    assert min(r.time for r in records) == load_builtin("night_work").start_epoch + 3 * 3600

    unknown = subprocess.run([SITEWATCH, "simulate", "--scenario", "nope"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode != 0 and "no shipped scenario" in unknown.stderr and "typhoon" in unknown.stderr
