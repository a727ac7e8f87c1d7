"""`sitewatch regmap`: print, write or check the register-map document.

The document is generated from firmware/regmap.py, so the copy committed in
hardware/register-map.md can go stale when the map changes; --check is the
guard for CI and the test suite.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from gateway import regmap_doc

# Lines of diff shown by --check: enough to see what changed, short enough for a CI log.
DIFF_LINES = 40


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "regmap",
        help="print, write or check the register-map document (hardware/register-map.md)",
        description=(
            "Render the node register map (firmware/regmap.py) as Markdown: registers, status bits, "
            "word order and mbpoll command lines per node kind."
        ),
    )
    parser.add_argument(
        "--kind",
        choices=[regmap_doc.kind_name(k) for k in regmap_doc.kinds()],
        help="only this node kind (default: every kind)",
    )
    parser.add_argument("--format", choices=["markdown"], default="markdown", help="output format")
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--write", metavar="PATH", type=Path, help=f"write the document to PATH (e.g. {regmap_doc.DOC_PATH})"
    )
    target.add_argument(
        "--check", metavar="PATH", type=Path, help="exit 1 when PATH differs from the generated document"
    )
    parser.set_defaults(func=run)
    return parser


def _regenerate_command(args: argparse.Namespace, path: Path) -> str:
    kind = f" --kind {args.kind}" if args.kind else ""
    return f"sitewatch regmap{kind} --write {path}"


def run(args: argparse.Namespace) -> int:
    selected = None if args.kind is None else [regmap_doc.kind_by_name(args.kind)]
    text = regmap_doc.render_markdown(selected)
    if args.write is not None:
        path: Path = args.write
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
        return 0
    if args.check is not None:
        return _check(args.check, text, _regenerate_command(args, args.check))
    sys.stdout.write(text)
    return 0


def _check(path: Path, expected: str, fix: str) -> int:
    try:
        actual = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        print(f"{path} does not exist; create it with: {fix}", file=sys.stderr)
        return 1
    if actual == expected:
        print(f"{path} is up to date with firmware/regmap.py")
        return 0
    diff = list(
        difflib.unified_diff(
            actual.splitlines(), expected.splitlines(), f"{path} (committed)", f"{path} (generated)", lineterm=""
        )
    )
    print(
        f"{path} is stale: it differs from the document generated from firmware/regmap.py.\nRegenerate it with: {fix}",
        file=sys.stderr,
    )
    shown = diff[:DIFF_LINES]
    if len(diff) > DIFF_LINES:
        shown.append(f"... ({len(diff) - DIFF_LINES} more diff lines)")
    print("\n".join(shown), file=sys.stderr)
    return 1
