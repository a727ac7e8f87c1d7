"""`sitewatch report`: a site's day as a PDF with PNG charts (docs/report.md).

Reads the gateway's local store (``--from-store``, or the store of ``--config``) or an InfluxDB
the gateways write to (``--influx-url``, for a bureau), computes the day's summary
(gateway/report/summary.py) and writes ``<site>-<date>.pdf`` and its charts into ``--out``. A
progress bar (rich) shows each step on standard error; the files written go to standard output.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from gateway.ops.config import ConfigError, load_config
from gateway.process.limits import LimitsResolver
from gateway.profiles.kinds import SYSTEM_KIND_DIR, KindProfileError, install_kinds, kind_profiles
from gateway.report.summary import DayRecords, ReportError, day_bounds, summarize

if TYPE_CHECKING:
    from gateway.report.build import ReportFiles

FETCH_STEPS = 3  # readings; alarm events; outages and gaps
CHART_STEPS = 5  # gateway.report.charts.CHARTS (not imported here: matplotlib loads only for a report)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report",
        help="write a site's daily report (PDF and PNG charts) from the store or InfluxDB",
        description="A site's local day as a PDF with PNG charts: PM means and exceedances, GB 12523 day/night "
        "noise, wind means, gusts and crane-stop periods, tilt, alarms with start and end, data completeness "
        "(docs/report.md).",
    )
    parser.add_argument("--site", help="the site's name (default: [site] name of --config); selects the site's "
                        "points in InfluxDB")
    parser.add_argument("--date", required=True, type=_day, help="the local day, YYYY-MM-DD")
    parser.add_argument("--out", required=True, type=Path, help="folder for the PDF and the charts (created)")
    parser.add_argument("--config", type=Path, help="the gateway's configuration: its limits, site name and store")
    parser.add_argument("--from-store", type=Path, metavar="PATH", help="the gateway's SQLite store")
    parser.add_argument("--influx-url", help="InfluxDB 1.x base URL (InfluxQL /query), e.g. http://127.0.0.1:8086")
    parser.add_argument("--influx-db", default="sitewatch", help="InfluxDB database (default: sitewatch)")
    parser.add_argument("--credentials-file", type=Path,
                        help="InfluxDB credentials: a file holding 'user:password' (see docs/report.md)")
    parser.add_argument("--kind-dir", type=Path, action="append", default=[], metavar="DIR",
                        help="a folder of node kinds added as profiles, for their names and sections (repeatable; "
                        "--config's [kinds] dirs and /etc/sitewatch/profiles/kinds/ are read too)")
    parser.add_argument("--font", type=Path, help="a CJK font file (default: Debian's WenQuanYi Micro Hei or Noto CJK)")
    parser.set_defaults(func=run_report)
    return parser


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def run_report(args: argparse.Namespace) -> int:
    try:
        files = make_report(args, Console(stderr=True))
    except (ReportError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(files.pdf)
    for chart in files.charts.values():
        print(chart)
    return 0


def make_report(args: argparse.Namespace, console: Console) -> ReportFiles:
    # The report's libraries are an extra (pip install 'sitewatch[report]'): the gateway service runs without them.
    try:
        from gateway.report.build import write_report
        from gateway.report.fonts import find_cjk_font
    except ImportError as error:
        raise ReportError(f"{error.name} is not installed: sitewatch report needs pip install 'sitewatch[report]'") \
            from error
    limits = LimitsResolver()
    _install_kind_dirs(getattr(args, "kind_dir", []))
    site = args.site
    store = args.from_store
    if args.config is not None:
        config = load_config(args.config)
        limits = config.limits_resolver()
        site = site or config.site.name
        if store is None and args.influx_url is None and config.store_enabled:
            store = config.store_path
    if not site:
        raise ReportError("--site: which site? (or give --config with a [site] name)")
    if (store is None) == (args.influx_url is None):
        raise ReportError("give one source: --from-store PATH (or --config with a store) or --influx-url URL")
    font = find_cjk_font((args.font,) if args.font is not None else ())
    start, end = day_bounds(args.date, limits.site.time.tz_offset_s)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, transient=False,
    ) as progress:
        task = progress.add_task(f"report {site} {args.date}", total=FETCH_STEPS + 1 + CHART_STEPS + 1)

        def step(what: str) -> None:
            progress.update(task, advance=1, description=f"report {site} {args.date}: {what}")

        records, source = _fetch(args, store, site, start, end, step)
        if not records.readings and not records.alarms and not records.outages:
            raise ReportError(f"{source}: no records of {site} between {args.date} 00:00 and 24:00 (local time)")
        _say_unknown_kinds(records, console)
        summary = summarize(site, args.date, records, limits, until=time.time())  # today's: up to now
        step("summary")
        return write_report(summary, args.out, font, source, step)


def _install_kind_dirs(dirs: list[Path]) -> None:
    """The kinds added as profiles, so that their records are named and sectioned as the gateway does."""
    folders = list(dirs) + ([SYSTEM_KIND_DIR] if SYSTEM_KIND_DIR.is_dir() else [])
    try:
        install_kinds(folders)
    except (KindProfileError, ValueError) as error:
        raise ReportError(f"--kind-dir: {error}") from error


def _say_unknown_kinds(records: DayRecords, console: Console) -> None:
    """A kind the store holds but no profile here describes is reported under its bare name: say so, and how."""
    known = kind_profiles()
    unknown = sorted({r.kind for r in records.readings if r.kind not in known})
    if unknown:
        console.print(f"warning: no profile for node kind(s) {', '.join(unknown)}: shown by name, without their "
                      "label and limits; give the folder of their profiles with --kind-dir (or --config)",
                      markup=False, highlight=False)


def _fetch(
    args: argparse.Namespace, store: Path | None, site: str, start: float, end: float, step: Callable[[str], None]
) -> tuple[DayRecords, str]:
    if store is not None:
        from gateway.report.sources import StoreSource

        with StoreSource(store) as source:
            return source.fetch(start, end, step), f"store {store}"
    from gateway.report.influx_source import InfluxSource

    influx = InfluxSource(args.influx_url, args.influx_db, site, args.credentials_file)
    return influx.fetch(start, end, step), f"InfluxDB {args.influx_url} database {args.influx_db}"
