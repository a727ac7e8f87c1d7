"""CPU time the gateway spends per poll: `sitewatch run` against `sitewatch simulate`, two processes.

Configurations (every bus RS-485 at 19200 baud on a paced pty, every node polled once a second, one
input-register read per node per poll, the full path: bus transaction, decode, processors,
aggregators, alarms, durable queue, local store):

* 8 nodes on one bus;
* 32 nodes on two buses (16 each);
* each of them again with the uplinks on (`--uplinks both`, the default; `off`, `on`): InfluxDB
  1.6.7 (v1 /write, started here on a free loopback port), an HJ 212 platform (`sitewatch hj212
  listen`, its own process) and, when mosquitto is installed, MQTT over TLS.

The simulator is its own process, so the CPU counted is the gateway's alone: user + system time of
the `sitewatch run` process (all its threads, /proc/PID/stat) over `--seconds` after a `--warmup`.
Polls are counted from the local store: distinct (node, sequence) samples stamped inside the
measured span. Printed per configuration: polls/s, CPU-ms per poll, % of one core, VmRSS, the
1-min load average at the start and end of the span (the machine is shared), against the target;
and the CPU and voluntary context switches per second of the event loop's thread against the others
(the worker threads: SQLite), from /proc/PID/task/TID.

`--profile` samples the gateway with py-spy (`pip install py-spy`) during the measured span of the
first configuration and prints the top functions by their own time and by inclusive time.
`--cprofile FILE` runs the first configuration's gateway under cProfile (main thread's CPU clock),
profiling the measured span only (SIGUSR1 at its start, SIGUSR2 at its end), and prints the top
functions by own time with their calls per poll, and the project's functions by inclusive time (its
CPU figure is inflated).
`--fit 1,4,8,16` measures one bus of each node count instead (store only; the counts in turn, `--rounds`
times, interleaved) and fits CPU-ms per second = fixed + per poll x polls per second by least squares: what
a poll costs at the margin, and what the gateway spends every second whatever the node count (commits of
the queue and the store, the second's tick, health). The per-poll figure at a node count n is then about
per poll + fixed / n.
Exits 1 when a configuration misses the target (with `--fit`: when the fitted cost at 8 nodes does).

    python bench/cpu_per_poll.py [--seconds 60] [--warmup 15] [--config 8|32|all] [--uplinks both|off|on]
                                 [--profile FILE] [--cprofile FILE] [--fit N,N,... [--rounds 1]]
"""

from __future__ import annotations

import argparse
import collections
import os
import pstats
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pipeline import vm_rss_mb
from tests.support.influx import InfluxServer
from tests.support.mosquitto import GATEWAY, GATEWAY_USER, PASSWORDS, SITE, Mosquitto, free_port

TARGET_MS = 1.0  # the target: CPU-ms per poll
BAUD = 19200
KINDS = ("dust", "noise", "tilt", "wind")
LAYOUTS = {"8": (8,), "32": (16, 16)}  # nodes per bus


@dataclass
class Figures:
    label: str
    seconds: float
    polls: int
    cpu_s: float
    system_s: float
    rss_mb: float
    load_start: float
    load_end: float

    @property
    def ms_per_poll(self) -> float:
        return 1000.0 * self.cpu_s / self.polls if self.polls else float("inf")

    def line(self) -> str:
        return (f"{self.label:<34} {self.polls / self.seconds:7.1f} {self.ms_per_poll:8.2f} "
                f"{100.0 * self.cpu_s / self.seconds:7.1f} {100.0 * self.system_s / max(self.cpu_s, 1e-9):5.0f} "
                f"{self.rss_mb:7.1f} "
                f"{self.load_start:5.2f}->{self.load_end:<5.2f} "
                f"{'ok' if self.ms_per_poll <= TARGET_MS else 'MISSED'}")


HEADER = (f"{'configuration':<34} {'polls/s':>7} {'CPU-ms':>8} {'% core':>7} {'sys %':>5} {'RSS MB':>7} "
          f"{'load 1m':>11} target <= {TARGET_MS:g} ms/poll")


def scenario_text(layout: tuple[int, ...], hours: int = 4) -> str:
    lines = ['name = "cpu_per_poll"', "seed = 1", f'duration = "{hours}h"',
             "start = 2025-04-15T09:00:00+08:00"]
    for number, count in enumerate(layout):
        lines += ["[[buses]]", f'name = "bus{number}"', f"baud = {BAUD}"]
        for unit in range(1, count + 1):
            lines += ["[[buses.nodes]]", f'kind = "{KINDS[(unit - 1) % len(KINDS)]}"', f"unit_id = {unit}",
                      f'name = "b{number}-{KINDS[(unit - 1) % len(KINDS)]}-{unit}"']
    return "\n".join(lines) + "\n"


def start_site(sitewatch: Path, scenario: Path, layout: tuple[int, ...], bus_dir: Path,
               seconds: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """The simulator at real speed, and the pty path of each of its buses."""
    names = {f"bus{number}" for number in range(len(layout))}
    site = subprocess.Popen(
        [str(sitewatch), "simulate", "--scenario", str(scenario), "--bus-dir", str(bus_dir),
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
            where[name] = path.split(" ", 1)[0]  # "PATH (19200 baud 8N1; ...)"
    return site, where


def gateway_config(folder: Path, layout: tuple[int, ...], where: dict[str, str], sinks: list[str]) -> Path:
    lines = [f'[site]\nname = "{SITE}"', f'[store]\npath = "{folder / "store.sqlite3"}"',
             '[clock]\nrequire_sync = "never"', "[service]\nheartbeat_s = 0"]
    for number, count in enumerate(layout):
        lines.append(f'[[bus]]\nname = "bus{number}"\nport = "{where[f"bus{number}"]}"\nbaud = {BAUD}')
        for unit in range(1, count + 1):
            kind = KINDS[(unit - 1) % len(KINDS)]
            lines.append(f'[[bus.node]]\nname = "b{number}-{kind}-{unit}"\nkind = "{kind}"\nunit_id = {unit}\n'
                         "interval = 1.0")
    config = folder / "gateway.toml"
    config.write_text("\n".join(lines + sinks) + "\n")
    return config


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process and all its threads so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def thread_cpu(pid: int) -> dict[int, tuple[float, int]]:
    """Per thread of a process: CPU seconds (user + system) and voluntary context switches so far."""
    tick = os.sysconf("SC_CLK_TCK")
    figures: dict[int, tuple[float, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        switches = int(re.search(r"^voluntary_ctxt_switches:\s*(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
        figures[int(task.name)] = ((int(fields[11]) + int(fields[12])) / tick, switches)
    return figures


def thread_split(pid: int, start: dict[int, tuple[float, int]], end: dict[int, tuple[float, int]],
                 seconds: float) -> str:
    """The event loop's thread against the others (the worker threads: SQLite), per second of the span."""
    def delta(tid: int) -> tuple[float, int]:
        cpu0, sw0 = start.get(tid, (0.0, 0))
        cpu1, sw1 = end[tid]
        return cpu1 - cpu0, sw1 - sw0
    main_cpu, main_sw = delta(pid) if pid in end else (0.0, 0)
    others = [delta(tid) for tid in end if tid != pid]
    other_cpu, other_sw = sum(c for c, _ in others), sum(s for _, s in others)
    return (f"main thread {1000 * main_cpu / seconds:.1f} CPU-ms/s, {main_sw / seconds:.0f} voluntary switches/s; "
            f"{len(others)} other threads {1000 * other_cpu / seconds:.1f} CPU-ms/s, {other_sw / seconds:.0f} "
            "switches/s")


def load1() -> float:
    return os.getloadavg()[0]


def polls_between(store: Path, start: float, end: float) -> int:
    """Samples (node, sequence) the gateway stamped inside [start, end): one per successful poll."""
    with sqlite3.connect(store) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM (SELECT DISTINCT node, sequence FROM readings "
                              "WHERE ts >= ? AND ts < ?)", (start, end)).fetchone()
    return int(count)


class Uplinks:
    """InfluxDB 1.6.7, an HJ 212 receiver and (if installed) mosquitto, each its own process."""

    def delivered(self) -> str:
        """What reached the uplinks, to show they were really on."""
        measurements = self.influxd.query("SHOW MEASUREMENTS", self.database)
        names = len(measurements[0]["values"]) if measurements else 0
        packets = len(self.hj212_packets.read_text().splitlines()) if self.hj212_packets.exists() else 0
        text = f"InfluxDB: {names} measurements; HJ 212: {packets} packets"
        if self.broker is not None:
            published = self.broker.log.read_text(errors="replace").count("Received PUBLISH from")
            text += f"; mosquitto: {published} PUBLISH received"
        return text

    def __init__(self, folder: Path, sitewatch: Path, stack: ExitStack) -> None:
        (folder / "influxd").mkdir()
        influxd = InfluxServer(folder / "influxd")
        influxd.start()
        stack.callback(influxd.stop)
        database = influxd.database()
        self.influxd, self.database = influxd, database
        hj212_port = free_port()
        self.hj212_packets = folder / "hj212.jsonl"
        listener = subprocess.Popen([str(sitewatch), "hj212", "listen", "--host", "127.0.0.1", "--port",
                                     str(hj212_port), "--jsonl", str(self.hj212_packets)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(stop_process, listener)
        self.sinks = [
            f'[[sink]]\ntype = "influxdb"\nname = "influx"\nurl = "{influxd.url}"\nsite = "{SITE}"\n'
            f'gateway = "{GATEWAY}"\napi = "v1"\ndatabase = "{database}"',
            f'[[sink]]\ntype = "hj212"\nname = "hj212"\nhost = "127.0.0.1"\nport = {hj212_port}\n'
            f'mn = "010000A8900016F000169DC0"\nnodes = "b0-dust-1,b0-noise-2,b0-wind-4"',
        ]
        self.names = ["InfluxDB 1.6.7 (v1)", "HJ 212"]
        self.broker: Mosquitto | None = None
        if shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists():
            # Its own folder: mosquitto drops to its user, which cannot enter our private temporary one.
            broker = Mosquitto(Path(tempfile.mkdtemp(prefix="sitewatch-cpu-mosquitto-")))
            stack.callback(shutil.rmtree, broker.folder, True)
            broker.prepare()
            broker.start()
            stack.callback(broker.stop)
            self.broker = broker
            password = folder / "mqtt-password"
            password.write_text(PASSWORDS[GATEWAY_USER] + "\n")
            password.chmod(0o600)
            self.sinks.append(
                f'[[sink]]\ntype = "mqtt"\nname = "mqtt"\nhost = "{broker.host}"\nport = {broker.port}\n'
                f'gateway = "{GATEWAY}"\nca_file = "{broker.ca}"\nusername = "{GATEWAY_USER}"\n'
                f'password_file = "{password}"')
            self.names.append("MQTT/TLS")
        # Wait until the HJ 212 receiver listens, so the sink does not start in back-off.
        deadline = time.monotonic() + 20.0
        while not port_open(hj212_port):
            if listener.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the HJ 212 receiver did not listen on {hj212_port}")
            time.sleep(0.05)


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def stop_process(process: subprocess.Popen[str] | subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(label: str, layout: tuple[int, ...], uplinks: bool, seconds: float, warmup: float,
            profile: Path | None, cprofile: Path | None = None) -> Figures:
    sitewatch = Path(sys.executable).with_name("sitewatch")
    with tempfile.TemporaryDirectory(prefix="sitewatch-cpu-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        scenario = folder / "scenario.toml"
        scenario.write_text(scenario_text(layout))
        site, where = start_site(sitewatch, scenario, layout, folder / "buses", warmup + seconds + 120)
        stack.callback(stop_process, site, signal.SIGINT)
        links = Uplinks(folder, sitewatch, stack) if uplinks else None
        sinks = links.sinks if links is not None else []
        config = gateway_config(folder, layout, where, sinks)
        log_file = stack.enter_context((folder / "gateway.log").open("w"))
        command = [str(sitewatch), "run", "--config", str(config), "--log-level", "WARNING"]
        if cprofile is not None:  # the same process under cProfile: exact call counts, inflated CPU figures
            command = [sys.executable, "-c", CPROFILE_RUNNER, str(cprofile), *command[1:]]
        gateway = subprocess.Popen(command, stderr=log_file, text=True)
        stack.callback(stop_process, gateway)
        deadline = time.monotonic() + warmup
        while time.monotonic() < deadline:
            if gateway.poll() is not None:
                raise SystemExit(f"the gateway stopped: {(folder / 'gateway.log').read_text()[-2000:]}")
            time.sleep(0.2)
        spy = None
        if profile is not None:
            spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid",
                                    str(gateway.pid), "--duration", str(int(seconds)), "--rate", "200",
                                    "--format", "raw", "--output", str(profile), "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if cprofile is not None:
            gateway.send_signal(signal.SIGUSR1)  # profile the measured span only
        threads_start = thread_cpu(gateway.pid)
        load_start, wall_start, cpu_start = load1(), time.time(), cpu_times(gateway.pid)
        monotonic_start = time.monotonic()
        while time.monotonic() - monotonic_start < seconds:
            if gateway.poll() is not None:
                raise SystemExit(f"the gateway stopped: {(folder / 'gateway.log').read_text()[-2000:]}")
            time.sleep(0.5)
        cpu_end, wall_end, load_end = cpu_times(gateway.pid), time.time(), load1()
        threads = thread_split(gateway.pid, threads_start, thread_cpu(gateway.pid), wall_end - wall_start)
        if cprofile is not None:
            gateway.send_signal(signal.SIGUSR2)
        rss = vm_rss_mb(gateway.pid) or 0.0
        if spy is not None:
            _, err = spy.communicate(timeout=120)
            if spy.returncode != 0:
                print(f"py-spy failed ({spy.returncode}): {err.decode(errors='replace')[-500:]}", file=sys.stderr)
        # The store gets records within a delivery interval or two: let the last ones land.
        time.sleep(3.0)
        stop_process(gateway)
        polls = polls_between(folder / "store.sqlite3", wall_start, wall_end)
        if links is not None:
            print(f"  ({label}: {', '.join(links.names)}; {links.delivered()})")
        warnings = [line for line in (folder / "gateway.log").read_text(errors="replace").splitlines()
                    if " ERROR " in line or " WARNING " in line or "Traceback" in line]
        if warnings:
            print(f"  ({label}: {len(warnings)} warning or error lines in the log, first: {warnings[0][:160]})")
        print(f"  ({label}: {threads})")
        user, system = cpu_end[0] - cpu_start[0], cpu_end[1] - cpu_start[1]
        return Figures(label, wall_end - wall_start, polls, user + system, system, rss, load_start, load_end)


def summarise_profile(raw: Path, top: int = 20) -> str:
    """py-spy's collapsed stacks ("frame;frame;... count") as two top-N tables: own time, inclusive time."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if not frame.startswith("process ")
                  and not frame.startswith("thread ")]
        if not frames:
            continue
        total += count
        own[short(frames[-1])] += count
        for frame in {short(frame) for frame in frames}:
            inclusive[frame] += count
    rows = [f"{total} samples (200/s, active threads only)", "", "| own % | function (file) |", "| ---: | --- |"]
    rows += [f"| {100.0 * n / total:.1f} | `{name}` |" for name, n in own.most_common(top)]
    rows += ["", "| inclusive % | function (file) |", "| ---: | --- |"]
    rows += [f"| {100.0 * n / total:.1f} | `{name}` |" for name, n in inclusive.most_common(top)]
    return "\n".join(rows)


# cProfile timed by the main thread's CPU clock (its default, wall time, would charge epoll's sleep);
# worker threads (queue and store writes through asyncio.to_thread) are not profiled by it. It profiles
# the measured span only: SIGUSR1 (sent at its start) turns it on, SIGUSR2 (at its end) off; signal
# handlers run in the main thread, the one a profiler's enable() covers.
CPROFILE_RUNNER = """
import cProfile, signal, sys, time
from gateway.ops.cli import main
profiler = cProfile.Profile(time.thread_time)
signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
signal.signal(signal.SIGUSR2, lambda *_: profiler.disable())
try:
    main(sys.argv[2:])
finally:
    profiler.disable()
    profiler.dump_stats(sys.argv[1])
"""


def summarise_cprofile(stats_file: Path, polls: float, top: int = 20) -> str:
    """cProfile's stats of the whole gateway run: the top functions by own time, with calls per poll."""
    stats = pstats.Stats(str(stats_file))
    table: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values())
    rows = [f"cProfile, main thread's CPU over the measured span, {polls:.0f} polls, "
            f"{total:.2f} s",
            "", "| own % | own ms/poll | calls/poll | function (file) |", "| ---: | ---: | ---: | --- |"]
    ranked = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for (path, line, name), (_, calls, own, _, _) in ranked:
        rows.append(f"| {100.0 * own / total:.1f} | {1000.0 * own / polls:.3f} | {calls / polls:.1f} | "
                    f"`{short(f'{name} ({path}:{line})')}` |")
    # Inclusive time of the project's own functions: which part of the path a poll's time is spent in.
    rows += ["", "| inclusive % | ms/poll | calls/poll | function (file) |", "| ---: | ---: | ---: | --- |"]
    ours = [item for item in table.items() if "/gateway/" in item[0][0]]
    for (path, line, name), (_, calls, _, inclusive, _) in sorted(ours, key=lambda item: item[1][3],
                                                                    reverse=True)[:top]:
        rows.append(f"| {100.0 * inclusive / total:.1f} | {1000.0 * inclusive / polls:.3f} | {calls / polls:.1f} | "
                    f"`{short(f'{name} ({path}:{line})')}` |")
    return "\n".join(rows)


def short(frame: str) -> str:
    """"func (/long/path/site-packages/pkg/mod.py:123)" -> "func (pkg/mod.py)"."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    path = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", path)
    path = re.sub(r".*/(gateway|simulator|firmware)/", r"\1/", path)
    return f"{name} ({path})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured real seconds per configuration")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before measuring (start, first polls)")
    parser.add_argument("--config", choices=[*LAYOUTS, "all"], default="all")
    parser.add_argument("--uplinks", choices=["both", "off", "on"], default="both",
                        help="without the uplinks, with them, or both (default)")
    parser.add_argument("--profile", type=Path, help="py-spy raw output file: profile the first configuration")
    parser.add_argument("--cprofile", type=Path, help="run the first configuration's gateway under cProfile, "
                        "save its stats here and print the top functions with calls per poll")
    parser.add_argument("--fit", metavar="N,N,...", help="one bus of each of these node counts, store only: fit "
                        "CPU-ms per second = fixed + per poll x polls per second")
    parser.add_argument("--rounds", type=int, default=1, help="with --fit: measure the counts this many times")
    args = parser.parse_args()
    if args.fit:
        return fit(args)
    layouts = list(LAYOUTS) if args.config == "all" else [args.config]
    variants = {"both": [False, True], "off": [False], "on": [True]}[args.uplinks]
    print(f"{args.seconds:g} s per configuration after {args.warmup:g} s of warm-up; {os.cpu_count()} cores")
    print(HEADER, flush=True)
    results: list[Figures] = []
    profile, cprofile = args.profile, args.cprofile
    for uplinks in variants:
        for key in layouts:
            layout = LAYOUTS[key]
            label = f"{sum(layout)} nodes, {len(layout)} bus{'es' if len(layout) > 1 else ''}"
            label += " + uplinks" if uplinks else ", store only"
            figures = measure(label, layout, uplinks, args.seconds, args.warmup, profile, cprofile)
            print(figures.line(), flush=True)
            results.append(figures)
            if cprofile is not None:
                print(summarise_cprofile(cprofile, figures.polls))
                cprofile = None
            if profile is not None:
                print(summarise_profile(profile))
                profile = None
    return 0 if all(f.ms_per_poll <= TARGET_MS for f in results) else 1


def fit(args: argparse.Namespace) -> int:
    try:
        counts = [int(n) for n in args.fit.split(",")]
    except ValueError:
        raise SystemExit(f"--fit: expected node counts such as 1,4,8,16, not {args.fit!r}") from None
    if len(set(counts)) < 2 or min(counts) < 1 or args.rounds < 1:
        raise SystemExit("--fit: at least two different node counts, each at least 1; --rounds at least 1")
    print(f"{args.seconds:g} s per configuration after {args.warmup:g} s of warm-up; {os.cpu_count()} cores")
    print(HEADER, flush=True)
    points: list[tuple[float, float]] = []  # (polls per second, CPU-ms per second)
    for _ in range(args.rounds):
        for n in counts:
            figures = measure(f"{n} nodes, 1 bus, store only", (n,), False, args.seconds, args.warmup, None)
            print(figures.line(), flush=True)
            points.append((figures.polls / figures.seconds, 1000.0 * figures.cpu_s / figures.seconds))
    per_poll, fixed = least_squares(points)
    at_8 = per_poll + fixed / 8
    print(f"fit over {len(points)} runs: CPU-ms per second = {fixed:.2f} + {per_poll:.3f} x polls per second")
    print(f"  per poll at the margin {per_poll:.3f} CPU-ms; fixed {fixed:.2f} CPU-ms a second; so at 8 nodes "
          f"{at_8:.2f} CPU-ms per poll, at 32 nodes {per_poll + fixed / 32:.2f} (target <= {TARGET_MS:g})")
    return 0 if at_8 <= TARGET_MS else 1


def least_squares(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Slope and intercept of the straight line nearest to the points (x, y)."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return slope, mean_y - slope * mean_x


if __name__ == "__main__":
    sys.exit(main())
