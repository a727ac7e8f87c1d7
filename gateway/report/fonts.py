"""The CJK font a report is drawn with: Chinese text must render, never as empty boxes (tofu).

Debian's fonts-wqy-microhei (or fonts-noto-cjk) provides it (tools/install-system-deps.sh installs
the first). Both have Latin glyphs too, so one font serves the whole report.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from matplotlib.ft2font import FT2Font

from gateway.report.summary import ReportError

# Debian's paths, most compact first (wqy-microhei is one 5 MB face; Noto CJK is larger).
CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
)


def find_cjk_font(extra: Iterable[Path] = ()) -> Path:
    """The first CJK font found among `extra` and CANDIDATES; ReportError names the package to install."""
    for path in (*extra, *CANDIDATES):
        if path.is_file():
            return path
    raise ReportError(
        "no CJK font found (looked for " + ", ".join(str(p) for p in CANDIDATES) + "): "
        "install Debian's fonts-wqy-microhei (apt-get install fonts-wqy-microhei)"
    )


def missing_glyphs(text: str, font: Path) -> str:
    """The characters of `text` the font has no glyph for (they would print as tofu), in order, once each."""
    charmap = FT2Font(str(font)).get_charmap()
    seen: list[str] = []
    for char in text:
        if not char.isspace() and ord(char) not in charmap and char not in seen:
            seen.append(char)
    return "".join(seen)
