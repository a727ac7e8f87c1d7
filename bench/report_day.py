"""How long `sitewatch report` takes for a full day of one-second samples, and how much memory.

A store holding one local day of 1-s samples of five nodes (dust: 6 channels, noise: 3, two wind: 3
each, tilt: 5; 20 channels, 1.73 million readings) written by the gateway's SqliteStore, then the
report made from it in a child process: wall time and peak RSS (ru_maxrss) of the whole command,
and the PDF's size. The values are smooth synthetic curves; what is measured is the reading, the
summary and the rendering, which do not depend on the values.

    python bench/report_day.py
"""

from __future__ import annotations

import argparse
import math
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.deliver.sqlite_store import SqliteStore
from gateway.model import Quality, Reading
from gateway.report.summary import day_bounds

DAY = date(2025, 9, 23)
NODES = {
    "dust-1": ("dust", ("pm25", "pm10", "pm1", "temperature", "humidity", "pressure")),
    "noise-1": ("noise", ("laeq_1s", "lamax_1s", "lamin_1s")),
    "wind-mast": ("wind", ("wind_speed", "wind_dir", "wind_gust_3s")),
    "wind-crane": ("wind", ("wind_speed", "wind_dir", "wind_gust_3s")),
    "tilt-1": ("tilt", ("pitch", "roll", "slope_x", "slope_y", "temperature")),
}


def value(channel: str, second: int) -> float:
    phase = 2 * math.pi * second / 86400
    base = {"pm25": 40, "pm10": 90, "pm1": 20, "temperature": 27, "humidity": 80, "pressure": 100.5,
            "laeq_1s": 58, "lamax_1s": 63, "lamin_1s": 52, "wind_speed": 6, "wind_dir": 90, "wind_gust_3s": 9,
            "pitch": 50, "roll": -20, "slope_x": 1.5, "slope_y": 1.0}[channel]
    return round(base * (1 + 0.4 * math.sin(phase + second % 7 / 7)), 2)


def build(path: Path) -> int:
    start, _ = day_bounds(DAY, 8 * 3600)
    store = SqliteStore(path)
    total = 0
    for hour in range(24):
        batch = [
            Reading(node, kind, channel, value(channel, s), "", Quality.NORMAL, start + s, s + 1)
            for s in range(hour * 3600, (hour + 1) * 3600)
            for node, (kind, channels) in NODES.items()
            for channel in channels
        ]
        total += store.write(batch)
    store.close()
    return total


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store.sqlite3"
        began = time.perf_counter()
        rows = build(store)
        print(f"store: {rows} readings written in {time.perf_counter() - began:.1f} s "
              f"({store.stat().st_size / 1e6:.0f} MB)")
        command = [sys.executable, "-m", "gateway.ops.cli", "report", "--site", "bench", "--date", DAY.isoformat(),
                   "--from-store", str(store), "--out", str(Path(tmp) / "out")]
        began = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - began
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        pdf = Path(tmp) / "out" / f"bench-{DAY.isoformat()}.pdf"
        print(f"report of a day of 1-s samples ({rows} readings, {len(NODES)} nodes): {elapsed:.1f} s wall, "
              f"peak RSS {peak:.0f} MB, PDF {pdf.stat().st_size / 1e3:.0f} KB")
    return 0


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # no options: --help only
    sys.exit(main())
