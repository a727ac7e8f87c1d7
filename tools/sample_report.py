"""Make the sample report in docs/report/ from the typhoon scenario (docs/report.md says how it was made).

Runs typhoon.toml's first day, 12:00 to 24:00 local time on 2025-09-23, through the real gateway
with the integration tests' harness (tests/integration/support.py: 120x, one-minute samples, the
gateway's own SQLite sink writing the store), then `sitewatch report` on that store, then renders
each page with pdftoppm at a low resolution for the docs.

    .venv/bin/python tools/sample_report.py [--out docs/report]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.ops.cli import main as sitewatch
from tests.integration.support import Polled, run_scenario

# Slower than the tests' 1200x: twelve hours of four nodes must not outrun a busy host.
SPEED = 120.0
# Real seconds between polls of a node (12 simulated s at 120x): free line time for the history backfill of a
# sample a busy host made the gateway miss (back-to-back polling leaves none, tests/integration/support.py).
POLL_S = 0.1
CONFIG = """[site]
name = "typhoon"
[store]
path = "{store}"
[limits.sampling]
interval_s = 60.0
[[bus]]
name = "boundary"
port = "/dev/ttyUSB0"
[[bus.node]]
name = "dust-1"
kind = "dust"
unit_id = 1
"""
NODES = (("boundary", 1), ("boundary", 2), ("tower", 1), ("tower", 2))


def make(out: Path, dpi: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store.sqlite3"
        extra = f'[[sink]]\ntype = "sqlite"\nname = "store"\npath = "{store}"\n'
        asyncio.run(run_scenario(Path(tmp), "typhoon", skip=0.0, until=12 * 3600.0, speed=SPEED, extra=extra,
                                 polled=[Polled(bus, unit, 60.0) for bus, unit in NODES], real_limit=1800.0,
                                 poll_interval=POLL_S))
        # The report is run as a site would run it: with the gateway's configuration (site name, store, limits).
        config = Path(tmp) / "gateway.toml"
        config.write_text(CONFIG.format(store=store), encoding="utf-8")
        status = sitewatch(["report", "--config", str(config), "--date", "2025-09-23", "--out", str(out)])
        if status:
            raise SystemExit(status)
    pdf = out / "typhoon-2025-09-23.pdf"
    # The docs keep the PDF and its page images (which show the charts): the chart files would double the size.
    for old in [*out.glob("page-*.png"), *out.glob("typhoon-2025-09-23-*.png")]:
        old.unlink()
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(out / "page")], check=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/report"))
    parser.add_argument("--dpi", type=int, default=60)
    args = parser.parse_args()
    make(args.out, args.dpi)
