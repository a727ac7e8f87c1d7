"""deploy/install.sh into a temporary root: user, venv, unit, udev rule, sample configuration; a second run changes
nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "deploy" / "install.sh"


def _snapshot(root: Path) -> dict[str, tuple[int, int, int, int, int]]:
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            info = path.lstat()
            out[str(path.relative_to(root))] = (info.st_mode, info.st_uid, info.st_gid, info.st_size,
                                                info.st_mtime_ns)
    return out


def _system_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc" / "group").write_text("root:x:0:\ndialout:x:20:\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc" / "gshadow").write_text("root:*::\ndialout:*::\n")
    return root


def _install(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(INSTALL), "--root", str(root)], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_install_into_a_root_then_again_changes_nothing(tmp_path: Path) -> None:
    assert os.getuid() == 0, "install.sh creates a system user: the test runs as root (as the project's tests do)"
    assert shutil.which("useradd"), "useradd is missing (Debian package passwd)"
    root = _system_root(tmp_path)
    first = _install(root)
    assert first.returncode == 0, first.stdout + first.stderr
    passwd = (root / "etc" / "passwd").read_text()
    user = next(line.split(":") for line in passwd.splitlines() if line.startswith("sitewatch:"))
    assert user[5] == "/var/lib/sitewatch" and user[6] == "/usr/sbin/nologin"
    uid, gid = int(user[2]), int(user[3])
    assert 0 < uid < 1000  # a system user
    unit = root / "etc" / "systemd" / "system" / "sitewatch-gateway.service"
    assert unit.read_text() == (ROOT / "deploy" / "sitewatch-gateway.service").read_text()
    assert (root / "etc" / "udev" / "rules.d" / "99-sitewatch-rs485.rules").is_file()
    config = root / "etc" / "sitewatch" / "gateway.toml"
    assert config.read_text() == (ROOT / "deploy" / "gateway.example.toml").read_text()
    assert (config.stat().st_mode & 0o777, config.stat().st_gid) == (0o640, gid)
    state = (root / "var" / "lib" / "sitewatch").stat()
    assert (state.st_mode & 0o777, state.st_uid) == (0o750, uid)
    assert (root / "etc" / "sitewatch" / "credentials").stat().st_mode & 0o777 == 0o700
    # The installed program runs and reads the sample configuration.
    sitewatch = root / "opt" / "sitewatch" / ".venv" / "bin" / "sitewatch"
    check = subprocess.run([str(sitewatch), "config", "check", str(config)], capture_output=True, text=True,
                           timeout=120)
    assert check.returncode == 0 and ": ok (" in check.stdout, check.stdout + check.stderr

    before = _snapshot(root)
    second = _install(root)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.strip() == "install.sh: nothing changed"
    assert _snapshot(root) == before

    # An operator's configuration is never overwritten; a changed unit is.
    config.write_text(config.read_text() + "\n# edited on site\n")
    unit.write_text("stale\n")
    third = _install(root)
    assert "edited on site" in config.read_text()
    assert unit.read_text() == (ROOT / "deploy" / "sitewatch-gateway.service").read_text()
    assert "installed " + str(unit) in third.stdout


def test_install_refuses_a_root_without_passwd(tmp_path: Path) -> None:
    proc = subprocess.run(["sh", str(INSTALL), "--root", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"{tmp_path}/etc/passwd is missing" in proc.stderr
