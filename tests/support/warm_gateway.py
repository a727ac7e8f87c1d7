"""A `sitewatch` process started ahead of time, waiting for the word to go.

Starting a gateway process is mostly importing Python: a fraction of a second on an idle host, tens of
seconds while the suite's workers and a CPU hog share two cores. A test whose simulated site runs at a
hundred times real time cannot hold its clock for another process (the clock file is a straight line),
so a start that took that long let the site sample past what the test watches (the dust-episode kill
test's "the gateway started after 08:00"). A warm process does its imports first and says so (a file
appears); the test then starts the site, writes the configuration and the clock file, and lets it go:
what remains of the start is the gateway's own (reading the configuration, opening the queue and the
line), as when systemd restarts an installed gateway whose modules the page cache holds.

The process runs `gateway.ops.cli.main` with the given arguments, as the `sitewatch` script does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import IO

from tests.support.waiting import wait_until

# Imports the start of `sitewatch run` needs, then waits on stdin for its go.
_WARM = """
import pathlib, sys
from gateway.ops import cli, cmd_run, service, status_server  # the modules `run` imports
cli.build_parser()
pathlib.Path(sys.argv[1]).touch()
if sys.stdin.readline().strip() != "go":
    sys.exit(0)  # the test gave up on this one
sys.exit(cli.main(sys.argv[2:]))
"""

READY_WITHIN = 300.0  # real seconds: a ceiling for a loaded host, not an expectation


class WarmGateway:
    """`sitewatch <args>`, imported and waiting; `go()` runs it. `proc` is the process throughout."""

    def __init__(self, args: list[str], ready: Path, stderr: IO[bytes] | None = None) -> None:
        self.ready = ready
        ready.unlink(missing_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-c", _WARM, str(ready), *args],
                                     stdin=subprocess.PIPE, stderr=stderr)

    def wait_ready(self, timeout: float = READY_WITHIN) -> None:
        def imported() -> bool:
            assert self.proc.poll() is None, f"the gateway process exited before its start ({self.proc.returncode})"
            return self.ready.exists()

        wait_until(imported, timeout=timeout)

    def go(self) -> subprocess.Popen[bytes]:
        """Let it run (it must be ready): the start from here on is the gateway's own."""
        assert self.ready.exists(), "go() before the process was ready"
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.write(b"go\n")
        stdin.close()
        return self.proc
