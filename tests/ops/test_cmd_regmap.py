"""`sitewatch regmap`: help, print, write, and --check on a stale file."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gateway import regmap_doc
from gateway.ops import cmd_regmap


def parser() -> argparse.ArgumentParser:
    # The same contract gateway/ops/cli.py relies on: add_parser + func default.
    root = argparse.ArgumentParser(prog="sitewatch")
    subparsers = root.add_subparsers(dest="command")
    cmd_regmap.add_parser(subparsers)
    return root


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    status: int = args.func(args)
    return status


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(["regmap", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--kind", "--format", "--write", "--check"):
        assert option in out
    for name in ("dust", "noise", "tilt", "wind"):
        assert name in out


def test_the_sitewatch_command_reaches_it(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.ops import cli

    assert cmd_regmap.__name__ in cli.COMMAND_MODULES
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["regmap", "--help"])
    assert exit_info.value.code == 0
    assert "--check" in capsys.readouterr().out
    assert cli.main(["regmap", "--kind", "noise"]) == 0
    assert "`laeq_1s`" in capsys.readouterr().out


def test_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["regmap"]) == 0
    assert capsys.readouterr().out == regmap_doc.render_markdown()


def test_kind_selects_one_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["regmap", "--kind", "wind"]) == 0
    out = capsys.readouterr().out
    assert "`wind_gust_3s`" in out
    assert "`pm10`" not in out and "## Dust node" not in out


def test_write_then_check_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "hardware" / "register-map.md"
    assert run(["regmap", "--write", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == regmap_doc.render_markdown()
    assert run(["regmap", "--check", str(target)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_check_detects_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "register-map.md"
    stale = regmap_doc.render_markdown().replace("| `pitch` |", "| `pitch_old` |")
    target.write_text(stale, encoding="utf-8")
    assert run(["regmap", "--check", str(target)]) == 1
    err = capsys.readouterr().err
    assert "stale" in err
    assert f"sitewatch regmap --write {target}" in err
    assert "-| 16-17 | 30017-30018 | `pitch_old`" in err  # the diff shows what changed


def test_check_with_kind_compares_that_kind_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "tilt.md"
    target.write_text(regmap_doc.render_markdown(), encoding="utf-8")
    assert run(["regmap", "--kind", "tilt", "--check", str(target)]) == 1
    assert f"sitewatch regmap --kind tilt --write {target}" in capsys.readouterr().err
    assert run(["regmap", "--kind", "tilt", "--write", str(target)]) == 0
    assert run(["regmap", "--kind", "tilt", "--check", str(target)]) == 0


def test_check_reports_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["regmap", "--check", str(tmp_path / "absent.md")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_write_and_check_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(["regmap", "--write", "a.md", "--check", "b.md"])
    assert exit_info.value.code == 2
