"""`sitewatch hj212 listen --influx-url`: packets per second from one monitor connection into InfluxDB 1.6.7.

Starts a private influxd (gateway/ops/local_influx.py) and the real
`sitewatch hj212 listen --count N` in a subprocess, sends N minute packets
(CN 2051, 8 factors each with Avg/Min/Max/Flag, each asking for a reply, each
waited for as a monitor does) from one TCP connection, and prints the time
until the listener has exited having written every point, and how many
points InfluxDB then holds (each must be there, once).

    python bench/hj212_listen_influx.py [--packets N]
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.ops.local_influx import LocalInflux
from gateway.ops.local_server import find_binary
from gateway.protocols import hj212
from gateway.protocols.hj212 import Packet

FACTORS = ("a34001", "a34002", "a34004", "a01001", "a01002", "a01006", "a01007", "a01008")


def packet(n: int) -> Packet:
    minute = time.gmtime(1_700_000_000 + 60 * n)
    data_time = time.strftime("%Y%m%d%H%M%S", minute)
    values = tuple((f"{code}-{s}", f"{n % 97 + i}.5") for i, code in enumerate(FACTORS) for s in ("Avg", "Min", "Max"))
    flags = tuple((f"{code}-Flag", "N") for code in FACTORS)
    return Packet(cn="2051", mn="BENCH000000001", qn=data_time + "000", flag=5,
                  cp=((("DataTime", data_time),), values + flags))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=2000)
    args = parser.parse_args()
    sitewatch = shutil.which("sitewatch", path=str(Path(sys.executable).parent)) or "sitewatch"
    binary = find_binary("influxd")
    if binary is None:
        print("influxd is not installed (apt-get install influxdb)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="sitewatch-bench-") as folder:
        influx = LocalInflux(Path(folder), binary)
        influx.start()
        try:
            influx.create_database("bench")
            log = Path(folder) / "listen.out"  # a file, not a pipe: a full pipe would block the listener
            with log.open("w") as out_file:
                proc = subprocess.Popen(
                    [sitewatch, "hj212", "listen", "--host", "127.0.0.1", "--port", "0", "--count", str(args.packets),
                     "--influx-url", influx.url, "--influx-db", "bench"], stdout=out_file, text=True)
            while not (found := re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read_text())):
                time.sleep(0.05)
            port = int(found.group(1))
            frames = [packet(n).encode() for n in range(args.packets)]
            started = time.monotonic()
            with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
                parser_ = hj212.StreamParser()
                for frame in frames:  # one at a time, each acknowledged, as a monitor sends
                    sock.sendall(frame)
                    replies: list[object] = []
                    while not replies:
                        replies = list(parser_.feed(sock.recv(4096)))
                acknowledged = time.monotonic() - started
                proc.wait(timeout=300)
            written = time.monotonic() - started
            summary = log.read_text().strip().splitlines()[-1]
            stored = influx.query('SELECT count("avg") FROM "hj212"', "bench")[0]["values"][0][1]
        finally:
            influx.stop()
    points = args.packets * len(FACTORS)
    print(f"{args.packets} packets ({points} points), one connection, each acknowledged before the next:")
    print(f"  all acknowledged after {acknowledged:.2f} s: {args.packets / acknowledged:.0f} packets/s")
    print(f"  all written after {written:.2f} s (listener exited): {points / written:.0f} points/s")
    print(f"  listener: {summary}")
    print(f"  influxd holds {stored} points (expected {points})")
    return 0 if stored == points else 1


if __name__ == "__main__":
    sys.exit(main())
