"""`sitewatch status` when nothing answers: exit status 3, and advice an operator can paste."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from gateway.ops.cmd_status import EXIT_NOT_RUNNING
from gateway.ops.local_server import free_port
from tests.ops.service_process import SITEWATCH, Running, gateway_toml

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "sitewatch-gateway.service"


def test_nothing_answering_names_the_installed_unit() -> None:
    """Audit: the advice was `systemctl status sitewatch`, a unit that does not exist (it is sitewatch-gateway)."""
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run([SITEWATCH, "status", "--url", url], capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_NOT_RUNNING
    assert f"{url}/status" in done.stderr
    units = re.findall(r"systemctl status (\S+?)`", done.stderr)
    assert units == [UNIT.stem], done.stderr


def test_status_of_a_configuration_whose_port_another_gateway_holds_says_so(tmp_path: Path) -> None:
    """Audit: two configurations with the default [status] port: the second gateway runs without its endpoint
    (one error line), and `sitewatch status -c second.toml` printed the FIRST gateway's nodes as if they were its."""
    port = free_port()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = tmp_path / "a" / "gateway.toml"
    first.write_text(gateway_toml(tmp_path / "a", str(tmp_path / "ttyA"), status_port=port))
    second = tmp_path / "b" / "gateway.toml"
    second.write_text(gateway_toml(tmp_path / "b", str(tmp_path / "ttyB"), status_port=port))
    running = Running("run", "-c", str(first))
    try:
        running.wait_for(f"status endpoint on http://127.0.0.1:{port}")
        done = subprocess.run([SITEWATCH, "status", "-c", str(second)], capture_output=True, text=True, timeout=60)
        assert done.returncode == EXIT_NOT_RUNNING, done.stdout
        assert f"process {running.pid}" in done.stderr and str(tmp_path / "a" / "store-queue.sqlite3") in done.stderr
        assert "not the gateway of" in done.stderr and str(second) in done.stderr, done.stderr
        mine = subprocess.run([SITEWATCH, "status", "-c", str(first)], capture_output=True, text=True, timeout=60)
        assert mine.returncode == 0, mine.stderr
    finally:
        assert running.stop() == 0
