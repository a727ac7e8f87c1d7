"""A report from a summary to files: the PNG charts and the PDF that holds them, in one folder.

Files: ``<site>-<date>.pdf`` and ``<site>-<date>-<section>.png`` (dust, noise, wind, tilt,
completeness; a section without nodes has no chart).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.report.charts import CHARTS, use_font
from gateway.report.model import DaySummary
from gateway.report.pdf import write_pdf
from gateway.report.summary import ReportError

_UNSAFE = re.compile(r"[^\w.-]+")


@dataclass(frozen=True)
class ReportFiles:
    pdf: Path
    charts: dict[str, Path]


def stem(summary: DaySummary) -> str:
    """A file name stem from the site and date (characters unsafe in a file name become '_')."""
    return f"{_UNSAFE.sub('_', summary.site).strip('_') or 'site'}-{summary.day.isoformat()}"


def write_report(
    summary: DaySummary, out: Path, font: Path, source: str, step: Callable[[str], None] = lambda what: None
) -> ReportFiles:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReportError(f"--out {out}: cannot create the folder ({error})") from error
    family = use_font(font)
    base = stem(summary)
    charts: dict[str, Path] = {}
    for section, draw in CHARTS.items():
        made = draw(summary, family, out / f"{base}-{section}.png")
        if made is not None:
            charts[section] = made
        step(f"chart {section}")
    pdf = write_pdf(summary, charts, font, out / f"{base}.pdf", source)
    step("PDF")
    return ReportFiles(pdf, charts)
