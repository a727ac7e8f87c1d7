"""Soak: resident memory of `sitewatch run` over a long run of a simulated site at high speed.

`sitewatch simulate` runs a shipped scenario (default normal_day: 8 nodes on three buses, two of
them RS-485 at 9600 baud, one Modbus TCP) `--speed` times faster than real time, and `sitewatch run`
polls every node every `--poll` real seconds, as on a Pi, with the default queue (group commit,
bounded SQLite caches). The nodes sample once per simulated second, so the gateway sees far more
samples per real second than a site makes: what it does not poll live it fetches from the nodes'
history in free line time or records as lost (gaps), the same path an outage takes. The gateway's
own clock is the real one (readings are stamped in real time); the site's hours are the load.

Printed: the gateway's VmRSS after a warm-up (`--warmup` s), every `--every` s, and at the end;
the readings stored and the growth from the warm-up to the end. Target: growth at most 2 MB.
The gateway must then stop cleanly on SIGTERM.

    python bench/soak.py [--minutes 12] [--speed 10] [--poll 0.2] [--warmup 180]
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pipeline import vm_rss_mb
from simulator.scenario import load_builtin

GROWTH_TARGET_MB = 2.0


def start_site(sitewatch: Path, scenario: str, speed: float, bus_dir: Path, seconds: float) -> tuple[
    subprocess.Popen[str], dict[str, str]
]:
    """The simulator, and where each of its buses is ("NAME: PATH" or "NAME: tcp://127.0.0.1:PORT")."""
    names = {bus.name for bus in load_builtin(scenario).buses}
    site = subprocess.Popen(
        [str(sitewatch), "simulate", "--scenario", scenario, "--speed", str(speed), "--bus-dir", str(bus_dir),
         "--duration", str(seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert site.stdout is not None
    where: dict[str, str] = {}
    while set(where) != names:
        line = site.stdout.readline()
        if not line:
            raise SystemExit(f"the simulated site stopped before naming its buses (it named {sorted(where)})")
        name, _, path = line.strip().partition(": ")
        if name in names:
            where[name] = path.split(" ", 1)[0]  # "PATH (9600 baud 8N1; ...)"
    return site, where


def gateway_config(folder: Path, scenario: str, where: dict[str, str], poll: float) -> Path:
    lines = [f'[store]\npath = "{folder / "store.sqlite3"}"', '[clock]\nrequire_sync = "never"']
    for bus in load_builtin(scenario).buses:
        lines.append(f'[[bus]]\nname = "{bus.name}"')
        if where[bus.name].startswith("tcp://"):
            host, port = where[bus.name].removeprefix("tcp://").rsplit(":", 1)
            lines.append(f'transport = "tcp"\nhost = "{host}"\nport = {port}')
        else:
            lines.append(f'port = "{where[bus.name]}"\nbaud = {bus.baud}')
        for node in bus.nodes:
            lines.append(f'[[bus.node]]\nname = "{node.name}"\nkind = "{node.kind}"\nunit_id = {node.unit_id}\n'
                         f"interval = {poll}")
    config = folder / "gateway.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def log_tail(folder: Path, lines: int = 20) -> str:
    return "\n".join((folder / "gateway.log").read_text(errors="replace").splitlines()[-lines:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="normal_day")
    parser.add_argument("--minutes", type=float, default=10.0, help="real minutes of soak")
    parser.add_argument("--speed", type=float, default=10.0, help="simulated seconds per real second")
    parser.add_argument("--poll", type=float, default=0.2, help="poll interval of every node, real seconds")
    # The bounded caches (SQLite's page caches, the 10-minute windows at the soak's sample rate) fill
    # in the first minutes: growth is measured from then (docs/performance.md).
    parser.add_argument("--warmup", type=float, default=180.0, help="real seconds before the first RSS figure")
    parser.add_argument("--every", type=float, default=60.0, help="real seconds between RSS figures")
    args = parser.parse_args()
    sitewatch = Path(sys.executable).with_name("sitewatch")
    seconds = args.minutes * 60.0
    with tempfile.TemporaryDirectory(prefix="sitewatch-soak-") as tmp:
        folder = Path(tmp)
        site, where = start_site(sitewatch, args.scenario, args.speed, folder / "buses", seconds + 60)
        try:
            config = gateway_config(folder, args.scenario, where, args.poll)
            # Its log goes to a file: a pipe nobody reads would fill and stall the gateway.
            log_file = (folder / "gateway.log").open("w")
            gateway = subprocess.Popen([str(sitewatch), "run", "--config", str(config), "--log-level", "ERROR"],
                                       stderr=log_file, text=True)
            print(f"{args.scenario} at {args.speed:g}x for {args.minutes:g} real minutes "
                  f"({seconds * args.speed / 3600:.1f} h of site time), every node polled every {args.poll:g} s")
            print(f"{'real s':>8} {'site h':>7} {'VmRSS MB':>9} {'store MB':>9} {'queue MB':>9}")
            started = time.monotonic()
            figures: list[tuple[float, float]] = []
            next_figure = args.warmup
            while True:
                elapsed = time.monotonic() - started
                rss = vm_rss_mb(gateway.pid)
                if rss is None or gateway.poll() is not None:
                    raise SystemExit(f"the gateway stopped early: {log_tail(folder)}")
                if elapsed >= next_figure or elapsed >= seconds:
                    sizes = [sum(p.stat().st_size for p in folder.glob(pattern))
                             for pattern in ("store.sqlite3*", "store-queue.sqlite3*")]
                    print(f"{elapsed:8.0f} {elapsed * args.speed / 3600:7.2f} {rss:9.1f} "
                          f"{sizes[0] / 1e6:9.1f} {sizes[1] / 1e6:9.1f}", flush=True)
                    figures.append((elapsed, rss))
                    next_figure += args.every
                if elapsed >= seconds:
                    break
                time.sleep(1.0)
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=60)
            log_file.close()
            err = log_tail(folder)
        finally:
            site.send_signal(signal.SIGINT)
            try:
                site.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                site.kill()
        with sqlite3.connect(folder / "store.sqlite3") as db:
            (stored,) = db.execute("SELECT COUNT(*) FROM readings").fetchone()
    growth = figures[-1][1] - figures[0][1]
    print(f"VmRSS {figures[0][1]:.1f} MB after {figures[0][0]:.0f} s, {figures[-1][1]:.1f} MB at the end: "
          f"{growth:+.1f} MB (target <= {GROWTH_TARGET_MB:g} MB); {stored} readings stored; "
          f"exit status {gateway.returncode}")
    if gateway.returncode != 0:
        print(err, file=sys.stderr)
    return 0 if growth <= GROWTH_TARGET_MB and gateway.returncode == 0 and stored > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
