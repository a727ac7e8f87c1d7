"""`sitewatch report` end to end on a store the gateway's own SQLite sink wrote: files, pages, Chinese text."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from PIL import Image

from gateway.deliver.queue import Batch, Queued
from gateway.deliver.records import Outage, Record, kind_of
from gateway.deliver.sqlite_store import SqliteStore
from gateway.model import Quality, Reading
from gateway.ops.cli import main
from gateway.process.alarms import AlarmEvent, EventState, Severity
from gateway.report.fonts import find_cjk_font, missing_glyphs
from gateway.report.summary import day_bounds
from gateway.report.text import ALARM_NAMES, SECTIONS, TITLE
from tests.report.pages import ink, pdf_fonts, pdf_text, render_pages

DAY = date(2025, 9, 23)
START, END = day_bounds(DAY, 8 * 3600)


def store_of(path: Path, records: list[Record]) -> Path:
    store = SqliteStore(path)
    store.store_batch(Batch("q", tuple(Queued(i + 1, kind_of(r), r) for i, r in enumerate(records))))
    store.close()
    return path


def day_of_records() -> list[Record]:
    out: list[Record] = []
    for m in range(0, 1440, 5):
        t = START + 60.0 * m
        seq = m // 5 + 1
        pm10 = 180.0 if 9 * 60 <= m < 10 * 60 else 60.0
        out += [
            Reading("dust-1", "dust", "pm10", pm10, "ug/m3", Quality.NORMAL, t, seq),
            Reading("dust-1", "dust", "pm25", pm10 / 2, "ug/m3", Quality.NORMAL, t, seq),
            Reading("noise-1", "noise", "laeq_1s", 58.0 if 6 * 60 <= m < 22 * 60 else 48.0, "dB(A)", Quality.NORMAL,
                    t, seq),
            Reading("wind-1", "wind", "wind_speed", 3.0 + m / 200.0, "m/s", Quality.NORMAL, t, seq),
            Reading("wind-1", "wind", "wind_gust_3s", 4.0 + m / 100.0, "m/s", Quality.NORMAL, t, seq),
            Reading("wind-1", "wind", "wind_dir", 90.0, "deg", Quality.NORMAL, t, seq),
        ]
    out.append(AlarmEvent("crane_wind", "wind-1", "wind_gust_3s", Severity.ALARM, EventState.RAISED, 9.0, 9.0,
                          START + 500 * 60, "wind_gust_3s 9 m/s >= 9 m/s"))
    out.append(Outage("noise-1", "noise", START + 3600, START + 7200, "B: timeout", 24))
    return out


def test_report_from_the_store_writes_a_pdf_and_charts_that_render(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    store = store_of(tmp_path / "store.sqlite3", day_of_records())
    out = tmp_path / "out"
    status = main(["report", "--site", "工地 A", "--date", DAY.isoformat(), "--from-store", str(store),
                   "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    pdf = out / "工地_A-2025-09-23.pdf"
    assert captured.out.splitlines()[0] == str(pdf)
    charts = {p.name for p in out.glob("*.png")}
    assert charts == {f"工地_A-2025-09-23-{s}.png" for s in ("dust", "noise", "wind", "completeness")}  # no tilt node
    assert "report 工地 A 2025-09-23" in captured.err  # the progress bar

    # The Chinese text is in the PDF as text, in the embedded CJK font, not as boxes.
    text = pdf_text(pdf)
    assert TITLE in text and SECTIONS["noise"].split()[0] in text and ALARM_NAMES["crane_wind"].split()[0] in text
    assert "WenQuanYi" in pdf_fonts(pdf) or "Noto" in pdf_fonts(pdf)
    assert "180.0" in text  # the 09:00 hour's PM10 mean, the exceedance

    pages = render_pages(pdf, tmp_path)
    assert len(pages) >= 2
    for page in pages:
        assert ink(Image.open(page)) > 0.01, page  # not blank
    first = Image.open(pages[0])
    width, height = first.size
    # The title's band (top of the page, inside the margins) has ink: the CJK glyphs were drawn.
    assert ink(first, (int(width * 0.07), int(height * 0.04), int(width * 0.6), int(height * 0.09))) > 0.02


def test_the_font_has_every_glyph_the_report_uses() -> None:
    font = find_cjk_font()
    words = TITLE + "".join(SECTIONS.values()) + "".join(ALARM_NAMES.values()) + "µg/m³ ‰ ° — … ≥ ≤ × （）"
    assert missing_glyphs(words, font) == ""
    assert missing_glyphs("工地\U0001f600", font) == "\U0001f600"  # the check can fail


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from-store", "nowhere.sqlite3"], "nowhere.sqlite3: no such file"),
        ([], "give one source"),
        (["--from-store", "s.sqlite3", "--influx-url", "http://127.0.0.1:1"], "give one source"),
    ],
)
def test_bad_sources_are_named(tmp_path: Path, capsys, argv: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    status = main(["report", "--site", "a", "--date", "2025-09-23", "--out", str(tmp_path), *argv])
    assert status == 1
    assert message in capsys.readouterr().err


def test_a_day_without_records_is_an_error_not_an_empty_report(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    store = store_of(tmp_path / "store.sqlite3", day_of_records())
    status = main(["report", "--site", "a", "--date", "2025-10-01", "--from-store", str(store), "--out",
                   str(tmp_path / "out")])
    assert status == 1
    assert "no records of a between 2025-10-01" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("*.pdf"))


def test_the_progress_bar_counts_every_chart() -> None:
    from gateway.ops.cmd_report import CHART_STEPS
    from gateway.report.charts import CHARTS

    assert len(CHARTS) == CHART_STEPS


def test_the_command_line_loads_without_the_report_libraries() -> None:
    """`sitewatch run` on a gateway without the report extra: the CLI must not import matplotlib or fpdf."""
    import subprocess
    import sys

    code = (
        "import sys; import gateway.ops.cli as c; c.build_parser(); "
        "print(sorted({'matplotlib', 'fpdf'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_the_details_list_the_longest_outages_and_count_the_rest(tmp_path: Path) -> None:
    records = day_of_records()
    begin = START + 3 * 3600
    records += [Outage("dust-1", "dust", begin + 600 * i, begin + 600 * i + 60 + i, "B: timeout", 1) for i in range(30)]
    store = store_of(tmp_path / "store.sqlite3", records)
    assert main(["report", "--site", "a", "--date", DAY.isoformat(), "--from-store", str(store), "--out",
                 str(tmp_path / "out")]) == 0
    text = pdf_text(tmp_path / "out" / "a-2025-09-23.pdf")
    assert "22 more, 26 min in all" in text  # 8 of 30 listed; the 22 shortest (60-81 s: 1551 s) summed


def test_the_gateways_configuration_gives_site_store_and_limits(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    store = store_of(tmp_path / "store.sqlite3", day_of_records())
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[site]\nname = "north"\n[store]\npath = "{store}"\n[limits.dust]\npm10_1h_limit = 50.0\n'
        '[[bus]]\nname = "b"\nport = "/dev/ttyUSB0"\n[[bus.node]]\nname = "dust-1"\nkind = "dust"\nunit_id = 1\n',
        encoding="utf-8",
    )
    assert main(["report", "--config", str(config), "--date", DAY.isoformat(), "--out", str(tmp_path / "out")]) == 0
    text = pdf_text(tmp_path / "out" / "north-2025-09-23.pdf")
    assert "24 (> 50)" in text  # every hour's PM10 (60 or 180) is over the site's own limit, not the default 150


def test_a_kind_added_as_a_profile_is_named_with_kind_dir_and_said_without_it(tmp_path: Path) -> None:
    """A fresh `sitewatch report` knows only the shipped kinds: a folder kind's readings were reported under the
    bare kind name, without a word. --kind-dir gives its profile; without it the report says what is missing."""
    import subprocess
    import sys

    from tests.gateway.profiles.test_new_kind import write_kind

    folder = write_kind(tmp_path / "kinds")
    records: list[Record] = [Reading("pit-east", "water_level", "level", 1.2 + m / 1000.0, "m", Quality.NORMAL,
                                     START + 60.0 * m, m + 1) for m in range(0, 1440, 5)]
    store = store_of(tmp_path / "store.sqlite3", records)
    sitewatch = Path(sys.executable).with_name("sitewatch")

    def report(*extra: str) -> tuple[subprocess.CompletedProcess[str], str]:
        out = tmp_path / f"out{len(extra)}"
        done = subprocess.run([str(sitewatch), "report", "--site", "pit", "--date", DAY.isoformat(), "--from-store",
                               str(store), "--out", str(out), *extra], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done, pdf_text(out / f"pit-{DAY.isoformat()}.pdf")

    bare, text = report()
    assert "no profile for node kind(s) water_level" in bare.stderr and "--kind-dir" in bare.stderr
    assert "基坑水位" not in text
    named, text = report("--kind-dir", str(folder))
    assert "no profile" not in named.stderr
    assert "基坑水位 pit water level" in text and "pit-east" in text
