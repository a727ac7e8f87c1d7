"""`sitewatch hj212 decode|listen`, run as a user runs them (the installed console script)."""

from __future__ import annotations

import calendar
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from gateway.protocols import hj212
from gateway.protocols.hj212 import Packet
from tests.support.influx import InfluxServer

SITEWATCH = shutil.which("sitewatch", path=str(Path(sys.executable).parent)) or "sitewatch"
STANDARD = (
    "##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&1C80"
)


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SITEWATCH, "hj212", *args], input=stdin, capture_output=True, text=True, timeout=60)


def test_decode_shows_fields_flags_and_crc_verdict() -> None:
    proc = run("decode", STANDARD)
    assert proc.returncode == 0, proc.stderr
    assert "CN    1062" in proc.stdout
    assert "Flag  5: version 1, not split, reply wanted" in proc.stdout
    assert "CP    RtdInterval=30" in proc.stdout
    assert proc.stdout.rstrip().endswith("CRC   ok")


def test_decode_a_wrong_crc_is_an_error() -> None:
    proc = run("decode", STANDARD[:-4] + "1C81")
    assert proc.returncode == 1
    assert "bad_crc" in proc.stderr and "1C80" in proc.stderr
    assert proc.stdout == ""


def test_decode_reads_stdin_line_by_line_and_names_the_bad_line() -> None:
    vendor = Packet(cn="2011", mn="M1", st="39", cp=((("DataTime", "20240105120000"),), (("a34002-Rtd", "75.6"),
                                                                                        ("a34002-Flag", "H"))))
    text = vendor.encode().decode() + STANDARD.replace("RtdInterval=30", "RtdInterval=31") + "\r\n"
    proc = run("decode", stdin=text)
    assert proc.returncode == 1
    assert "a34002: Rtd=75.6, Flag=H (not a standard data flag)" in proc.stdout
    assert "line 2: bad_crc" in proc.stderr


def test_decode_json() -> None:
    proc = run("decode", "--json", STANDARD)
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["cn"] == "1062" and body["fields"] == {"RtdInterval": "30"} and body["crc"] == "ok"


def _read_until(sock: socket.socket, marker: bytes, deadline: float) -> bytes:
    data = b""
    while marker not in data:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; got {data!r}")
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_listen_acknowledges_prints_and_writes_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "received.jsonl"
    proc = subprocess.Popen(
        [SITEWATCH, "hj212", "listen", "--host", "127.0.0.1", "--port", "0", "--count", "2", "--jsonl", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.match(r"listening on 127\.0\.0\.1:(\d+)", first)
        assert match, first
        deadline = time.monotonic() + 30
        data = Packet(cn="2011", mn="M1", qn="20240105120000123", flag=5,
                      cp=((("DataTime", "20240105120000"),), (("a34002-Rtd", "80.000"), ("a34002-Flag", "N"))))
        big = Packet(cn="2051", mn="M1", qn="20240105120100000", flag=4,
                     cp=((("DataTime", "20240105120000"),),
                         *(((f"a{i:05d}-Avg", "1.000"), (f"a{i:05d}-Flag", "N")) for i in range(60))))
        parts = hj212.split(big)
        assert len(parts) > 1
        with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=30) as sock:
            sock.sendall(data.encode())
            reply = hj212.decode(_read_until(sock, b"\r\n", deadline))
            assert (reply.cn, reply.qn, reply.st) == ("9014", "20240105120000123", "91")
            sock.sendall(STANDARD[:-4].encode() + b"0000\r\n")  # bad CRC: reported, not acknowledged
            sock.sendall(b"".join(p.encode() for p in parts))
            stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr
        lines = stdout.splitlines()
        assert "MN=M1 CN=2011 DataTime=20240105120000 a34002[Rtd=80 N]" in lines[0]
        assert "error: bad_crc" in lines[1]
        assert "CN=2051" in lines[2] and "a00059[Avg=1 N]" in lines[2]  # joined from its parts
        assert lines[-1] == "2 packets, errors: bad_crc 1"
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["cn"] for r in records] == ["2011", "2051"]
        assert records[0]["factors"]["a34002"] == {"values": {"Rtd": 80.0}, "flag": "N"}
        assert len(records[1]["factors"]) == 60
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_each_subcommand_has_help() -> None:
    for sub in ("decode", "listen"):
        proc = run(sub, "--help")
        assert proc.returncode == 0, proc.stderr
        assert f"usage: sitewatch hj212 {sub}" in proc.stdout


def test_listen_writes_packets_to_influxdb_one_point_per_factor_flags_kept_duplicates_once(
    tmp_path: Path, influxd: InfluxServer
) -> None:
    database = influxd.database()
    proc = subprocess.Popen(
        [SITEWATCH, "hj212", "listen", "--host", "127.0.0.1", "--port", "0", "--count", "4",
         "--influx-url", influxd.url, "--influx-db", database],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        match = re.match(r"listening on 127\.0\.0\.1:(\d+)", proc.stdout.readline())
        assert match
        realtime = Packet(cn="2011", mn="M1", st="39", qn="20240105120000123", flag=4,
                          cp=((("DataTime", "20240105120000"),),
                              (("a34002-Rtd", "80.000"), ("a34002-Flag", "N"), ("a34004-Flag", "B"))))
        minute = Packet(cn="2051", mn="M1", st="39", qn="20240105120100000", flag=4,
                        cp=((("DataTime", "20240105115900"),),
                            (("a34002-Avg", "79.500"), ("a34002-Min", "70.0"), ("a34002-Max", "90.0"),
                             ("a34002-Flag", "T"))))
        with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=30) as sock:
            # The real-time packet twice (a monitor resends when an acknowledgement was lost), a request too.
            sock.sendall(realtime.encode() + realtime.encode() + minute.encode() + STANDARD.encode() + b"\r\n")
            stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
        assert "influxdb: 5 points written to InfluxDB" in stdout, stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rows = influxd.rows('SELECT * FROM "hj212" GROUP BY "factor", "cn"', database)
    by_key = {(r["cn"], r["factor"]): r for r in rows}
    assert len(rows) == 3, rows  # the duplicate is the same point; the 1062 request has no data
    pm10 = by_key[("2011", "a34002")]
    assert (pm10["value"], pm10["rtd"], pm10["quality"], pm10["quality_code"], pm10["mn"], pm10["st"]) == (
        80.0, 80.0, "N", 0, "M1", "39")
    assert pm10["time"] == calendar.timegm((2024, 1, 5, 4, 0, 0)) * 10**9  # DataTime is China time (UTC+8)
    pm25 = by_key[("2011", "a34004")]
    assert pm25["quality"] == "B" and pm25["value"] is None  # the flag alone, never a made-up value
    mean = by_key[("2051", "a34002")]
    assert (mean["avg"], mean["min"], mean["max"], mean["quality"], mean["quality_code"]) == (79.5, 70.0, 90.0, "T", 6)


def test_listen_influx_options_are_checked() -> None:
    proc = run("listen", "--port", "0", "--influx-url", "http://127.0.0.1:1")
    assert proc.returncode != 0 and "--influx-db" in proc.stderr
    proc = run("listen", "--port", "0", "--influx-db", "x")
    assert proc.returncode != 0 and "--influx-url" in proc.stderr
