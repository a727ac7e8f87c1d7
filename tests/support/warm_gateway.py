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

import json
import subprocess
import sys
from pathlib import Path
from typing import IO

from tests.support.waiting import wait_until

# Imports what a start of the target needs, then waits on stdin for its go: a line with its arguments as JSON.
_WARM = """
import json, pathlib, sys
from gateway.ops import cli, cmd_run, service, status_server  # the modules `run` imports
cli.build_parser()
if sys.argv[2] == "sim_gateway":
    from tests.support import sim_gateway
pathlib.Path(sys.argv[1]).touch()
line = sys.stdin.readline()
if not line.strip():
    sys.exit(0)  # the test did not need this one
args = json.loads(line)
if sys.argv[2] == "sim_gateway":
    sys.argv = ["sim_gateway", *args]
    sys.exit(sim_gateway.main())
sys.exit(cli.main(args))
"""

READY_WITHIN = 300.0  # real seconds: a ceiling for a loaded host, not an expectation


class WarmGateway:
    """`sitewatch <args>` (target "cli") or `python -m tests.support.sim_gateway <args>` (target "sim_gateway"),
    imported and waiting; `go(args)` runs it. `proc` is the process throughout."""

    def __init__(
        self,
        ready: Path,
        stderr: IO[bytes] | int | None = None,
        stdout: IO[bytes] | int | None = None,
        target: str = "cli",
        args: list[str] | None = None,
    ) -> None:
        self.ready = ready
        self.args = args
        ready.unlink(missing_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-c", _WARM, str(ready), target], stdin=subprocess.PIPE,
                                     stdout=stdout, stderr=stderr, cwd=Path(__file__).resolve().parents[2])

    def wait_ready(self, timeout: float = READY_WITHIN) -> None:
        def imported() -> bool:
            assert self.proc.poll() is None, f"the gateway process exited before its start ({self.proc.returncode})"
            return self.ready.exists()

        wait_until(imported, timeout=timeout)

    def go(self, args: list[str] | None = None) -> subprocess.Popen[bytes]:
        """Let it run with args (or those given at creation); it must be ready: the start from here on is the
        gateway's own."""
        assert self.ready.exists(), "go() before the process was ready"
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.write(json.dumps(args if args is not None else self.args).encode() + b"\n")
        stdin.close()
        return self.proc

    def discard(self) -> None:
        """The unused spare: it exits on an empty line (or is killed if it is not listening yet)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
