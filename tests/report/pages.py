"""Checks on a report's PDF with poppler-utils (pdftoppm, pdftotext, pdffonts): pages rendered, text read back."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from PIL import Image, ImageChops


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is not installed (Debian poppler-utils; tools/install-system-deps.sh)"
    return path


def render_pages(pdf: Path, out: Path, dpi: int = 40) -> list[Path]:
    """Each page as a PNG, rendered by poppler (not by the library that wrote it)."""
    subprocess.run([tool("pdftoppm"), "-r", str(dpi), "-png", str(pdf), str(out / "page")], check=True, timeout=120)
    return sorted(out.glob("page-*.png"))


def ink(image: Image.Image, box: tuple[int, int, int, int] | None = None) -> float:
    """Share of the pixels (in box) that are not white."""
    region = image.convert("L").crop(box) if box else image.convert("L")
    histogram = region.histogram()  # 256 counts of grey levels
    return sum(histogram[:200]) / sum(histogram)


def pdf_text(pdf: Path) -> str:
    return subprocess.run([tool("pdftotext"), "-layout", str(pdf), "-"], check=True, capture_output=True,
                          text=True, timeout=60).stdout


def pdf_fonts(pdf: Path) -> str:
    return subprocess.run([tool("pdffonts"), str(pdf)], check=True, capture_output=True, text=True, timeout=60).stdout


def differs(a: Image.Image, b: Image.Image) -> bool:
    return ImageChops.difference(a.convert("L"), b.convert("L")).getbbox() is not None
