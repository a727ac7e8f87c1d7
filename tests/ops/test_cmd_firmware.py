"""`sitewatch firmware build|flash`: the build through the CLI and the exact mpremote command lines."""

from __future__ import annotations

import json
import shlex
import stat
import sys
from pathlib import Path

import pytest

from gateway import firmware_build
from gateway.ops import cli


def run(argv: list[str]) -> int:
    return cli.main(argv)


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    assert run(["firmware", "build", "--out", str(out), "--kind", "dust", "--kind", "wind"]) == 0
    return out


def expected_commands(mpremote: str, port: str, build: Path, kind: str, unit: int) -> list[list[str]]:
    # Written out in full so that a change of the plan shows up here.
    kind_dir = build / kind
    staged = build / "units" / f"{kind}-{unit}" / "node.json"
    return [
        [mpremote, "connect", port, "exec", firmware_build.PARK_MAIN, "+", "reset"],
        [
            mpremote, "connect", port,
            "sleep", "2",
            "+", "exec", firmware_build.CLEAN_OLD,
            "+", "fs", "cp", "-r", str(kind_dir / "firmware"), ":",
            "+", "fs", "cp", str(kind_dir / "boot.py"), ":boot.py",
            "+", "fs", "cp", str(staged), ":node.json",
            "+", "fs", "cp", str(kind_dir / "main.py"), ":main.py",
            "+", "reset",
        ],
    ]  # fmt: skip


def test_build_through_the_cli(build_dir: Path) -> None:
    assert sorted(p.name for p in build_dir.iterdir()) == ["dust", "wind"]
    assert (build_dir / "dust" / "firmware" / "rs485.mpy").read_bytes()[:2] == b"M\x06"


def test_build_output_names_the_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["firmware", "build", "--out", str(tmp_path), "--kind", "tilt"]) == 0
    out = capsys.readouterr().out
    modules = len(list((tmp_path / "tilt" / "firmware").glob("*.mpy")))
    lines = out.splitlines()
    assert lines[0] == f"built {tmp_path / 'tilt'} ({modules} modules, manifest.py for a frozen image)"
    assert f"FROZEN_MANIFEST={tmp_path.resolve() / '<kind>' / 'manifest.py'}" in out


def test_dry_run_prints_the_exact_commands_and_writes_nothing(
    build_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["firmware", "flash", "--port", "/dev/ttyUSB0", "--kind", "dust", "--unit-id", "7"]
    assert run([*argv, "--build-dir", str(build_dir), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    staged = build_dir / "units" / "dust-7" / "node.json"
    assert lines[0].startswith(f"# would write {staged}: ")
    assert json.loads(lines[0].split(": ", 1)[1]) == firmware_build.node_config("dust", 7)
    commands = [shlex.split(line) for line in lines[1:]]
    assert commands == expected_commands("mpremote", "/dev/ttyUSB0", build_dir, "dust", 7)
    assert not staged.exists()


def test_dry_run_line_is_one_shell_command() -> None:
    command = firmware_build.flash_commands(["mpremote"], "COM3", Path("dist/firmware/noise"), Path("n.json"))[1]
    line = firmware_build.format_command(command)
    assert "\n" not in line
    assert shlex.split(line) == command


def test_flash_runs_mpremote_in_order(build_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A stand-in mpremote that records its arguments: the real one needs a board.
    log = tmp_path / "calls.jsonl"
    fake = tmp_path / "mpremote"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    argv = ["firmware", "flash", "--port", "/dev/ttyACM1", "--kind", "wind", "--unit-id", "12"]
    assert run([*argv, "--build-dir", str(build_dir), "--mpremote", str(fake)]) == 0
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    expected = expected_commands(str(fake), "/dev/ttyACM1", build_dir, "wind", 12)
    assert calls == [command[1:] for command in expected]
    staged = json.loads((build_dir / "units" / "wind-12" / "node.json").read_text())
    assert staged["unit_id"] == 12
    assert staged["kind"] == "wind"
    assert capsys.readouterr().out.endswith("flashed wind unit 12 on /dev/ttyACM1\n")


def test_flash_stops_at_the_first_failing_command(
    build_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "calls.txt"
    fake = tmp_path / "mpremote"
    fake.write_text(f"#!/bin/sh\necho call >> {shlex.quote(str(log))}\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    argv = ["firmware", "flash", "--port", "/dev/ttyUSB0", "--kind", "dust", "--unit-id", "3"]
    assert run([*argv, "--build-dir", str(build_dir), "--mpremote", str(fake)]) == 1
    assert log.read_text() == "call\n"
    assert "flash failed (exit status 1)" in capsys.readouterr().out


def test_flash_needs_a_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["firmware", "flash", "--port", "/dev/ttyUSB0", "--kind", "tilt", "--unit-id", "3"]
    assert run([*argv, "--build-dir", str(tmp_path)]) == 1
    assert "run `sitewatch firmware build" in capsys.readouterr().out


def test_missing_mpremote_is_reported(build_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["firmware", "flash", "--port", "/dev/ttyUSB0", "--kind", "dust", "--unit-id", "3"]
    assert run([*argv, "--build-dir", str(build_dir), "--mpremote", str(tmp_path / "nope")]) == 1
    assert "not found" in capsys.readouterr().out


@pytest.mark.parametrize("unit", ["0", "248", "seven"])
def test_unit_id_must_be_a_modbus_address(unit: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["firmware", "flash", "--port", "p", "--kind", "dust", "--unit-id", unit, "--dry-run"])
    assert exit_info.value.code == 2
    assert "--unit-id" in capsys.readouterr().err


def test_unknown_kind_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(["firmware", "flash", "--port", "p", "--kind", "crane", "--unit-id", "1", "--dry-run"])
    assert "invalid choice" in capsys.readouterr().err


def test_firmware_without_action_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["firmware"]) == 2
    assert "build" in capsys.readouterr().out
