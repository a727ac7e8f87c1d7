"""The systemd unit and the example configuration shipped in deploy/."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from gateway.ops.cli import build_parser
from gateway.ops.config import load_config
from gateway.ops.startup import EXIT_CONFIG

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "sitewatch-gateway.service"
INSTALLED = "/opt/sitewatch/.venv/bin/sitewatch"


def systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    assert exe is not None, "systemd-analyze is missing (Debian package systemd)"
    return exe


def local_unit(tmp_path: Path) -> Path:
    # verify checks that ExecStart's program exists: point it at this checkout's venv.
    text = UNIT.read_text().replace(INSTALLED, str(Path(sys.executable).with_name("sitewatch")))
    path = tmp_path / UNIT.name
    path.write_text(text)
    return path


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    proc = subprocess.run([systemd_analyze(), "verify", str(local_unit(tmp_path))], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "sitewatch-gateway.service" not in proc.stderr, proc.stderr


def test_unit_is_hardened(tmp_path: Path) -> None:
    proc = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", str(local_unit(tmp_path))], capture_output=True, text=True
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 1.5, proc.stdout


def test_exec_start_is_a_valid_sitewatch_command_line() -> None:
    line = next(ln for ln in UNIT.read_text().splitlines() if ln.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    assert argv[0] == INSTALLED
    args = build_parser().parse_args(argv[1:])
    assert args.command == "run"
    assert str(args.config) == "/etc/sitewatch/gateway.toml"


def test_example_configuration_is_valid() -> None:
    config = load_config(ROOT / "deploy" / "gateway.example.toml")
    assert [n.kind for bus in config.buses for n in bus.nodes] == ["dust", "wind"]


def _settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_unit_is_notify_with_a_watchdog_and_reload() -> None:
    unit = _settings()
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert float(unit["WatchdogSec"][0]) >= 10  # the supervisor pings every 5 s at most
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_a_configuration_error_is_not_restarted() -> None:
    unit = _settings()
    assert unit["Restart"] == ["always"]
    assert unit["RestartPreventExitStatus"] == [str(EXIT_CONFIG)]


def test_state_configuration_secrets_and_devices() -> None:
    unit = _settings()
    assert unit["StateDirectory"] == ["sitewatch"] and unit["ConfigurationDirectory"] == ["sitewatch"]
    assert unit["LoadCredential"] == ["sitewatch:/etc/sitewatch/credentials"]
    assert unit["DevicePolicy"] == ["closed"]
    assert all(value.startswith("char-tty") for value in unit["DeviceAllow"])


def test_udev_rule_names_every_adapter_rs485() -> None:
    rules = [ln for ln in (ROOT / "deploy" / "99-sitewatch-rs485.rules").read_text().splitlines()
             if ln and not ln.startswith("#")]
    assert rules and all('SUBSYSTEM=="tty"' in ln or 'KERNEL=="ttyAMA0"' in ln for ln in rules)
    assert all("SYMLINK+=\"rs485-" in ln and 'GROUP="dialout"' in ln and 'MODE="0660"' in ln for ln in rules)
