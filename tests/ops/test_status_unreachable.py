"""`sitewatch status` when nothing answers: exit status 3, and advice an operator can paste."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from gateway.ops.cmd_status import EXIT_NOT_RUNNING
from gateway.ops.local_server import free_port
from tests.ops.service_process import SITEWATCH

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "sitewatch-gateway.service"


def test_nothing_answering_names_the_installed_unit() -> None:
    """Audit: the advice was `systemctl status sitewatch`, a unit that does not exist (it is sitewatch-gateway)."""
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run([SITEWATCH, "status", "--url", url], capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_NOT_RUNNING
    assert f"{url}/status" in done.stderr
    units = re.findall(r"systemctl status (\S+?)`", done.stderr)
    assert units == [UNIT.stem], done.stderr
