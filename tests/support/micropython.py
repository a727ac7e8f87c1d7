"""Run code and test modules under real MicroPython (WebAssembly build, Node.js)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tools" / "mp_run.mjs"
PACKAGE = ROOT / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"


class MicroPythonUnavailable(RuntimeError):
    pass


def firmware_files() -> dict[str, str]:
    """Every module of firmware/, at the path it has on the board (/firmware/...)."""
    return {f"/firmware/{p.name}": p.read_text() for p in sorted((ROOT / "firmware").glob("*.py"))}


def run_micropython(
    code: str,
    files: dict[str, str] | None = None,
    heapsize: int = 8 << 20,
    timeout: float = 120,
    binary_files: dict[str, str] | None = None,
    then: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run code; files are text, binary_files base64 (e.g. .mpy modules), each at its path in the FS.

    then: further code, each run as a separate top-level call with the same globals. Only between
    calls does gc.collect() free all garbage (within a call the WebAssembly stack keeps stale
    pointers), so heap measurements take their readings there.
    """
    node = shutil.which("node")
    if node is None:
        raise MicroPythonUnavailable("node is not installed: run `make test`, which installs nodejs")
    if not PACKAGE.is_dir():
        raise MicroPythonUnavailable(f"{PACKAGE} is missing: run `make test`, which runs `npm ci`")
    job = {
        "files": files or {},
        "binary_files": binary_files or {},
        "code": code,
        "then": then or [],
        "heapsize": heapsize,
    }
    return subprocess.run(
        [node, str(RUNNER)], input=json.dumps(job), capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


_DRIVER = """
import sys, io, json
sys.path.insert(0, '/')
print(json.dumps({'implementation': sys.implementation.name}))
import {module} as m
for name in sorted(dir(m)):
    if not name.startswith('test_'):
        continue
    try:
        getattr(m, name)()
        print(json.dumps({'test': name, 'result': 'ok'}))
    except Exception as e:
        buf = io.StringIO()
        sys.print_exception(e, buf)
        print(json.dumps({'test': name, 'result': buf.getvalue()}))
"""


def run_test_module(relative_path: str) -> tuple[str, dict[str, str]]:
    """Run every test_* function of a MicroPython-compatible test module.

    Returns the implementation name reported by the interpreter and a map
    test name -> "ok" or the traceback.
    """
    path = ROOT / relative_path
    module = relative_path.removesuffix(".py").replace("/", ".")
    files = firmware_files()
    files["/tests/__init__.py"] = ""
    files[f"/{Path(relative_path).parent}/__init__.py"] = ""
    files[f"/{relative_path}"] = path.read_text()
    # Helper modules shared by the MicroPython-compatible tests travel with them.
    for helper in sorted(path.parent.glob("mp_*.py")):
        files[f"/{helper.relative_to(ROOT)}"] = helper.read_text()
    proc = run_micropython(_DRIVER.replace("{module}", module), files)
    if proc.returncode != 0:
        raise AssertionError(f"MicroPython failed to run {relative_path}:\n{proc.stdout}\n{proc.stderr}")
    implementation = ""
    results: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        if "implementation" in record:
            implementation = record["implementation"]
        else:
            results[record["test"]] = record["result"]
    return implementation, results
