"""SIGTERM while a sink hangs: the stop does not wait for the same dead endpoint twice.

Audit: with a webhook that accepts connections and never answers (`[notify] timeout_s = 60`), SIGTERM took
two minutes: the stop waited for the notification in flight to time out, then sent it again in the shutdown
flush and waited for that timeout too. systemd (TimeoutStopSec=30) kills the gateway long before, and the
unit's stop counts as failed. A sink whose last attempt failed is down: its records wait in the queue.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from simulator.site import BusSpec, NodeSpec, Site
from tests.ops.service_process import Running, gateway_toml


def test_the_stop_does_not_retry_a_notifier_that_just_timed_out(tmp_path: Path) -> None:
    hole = socket.socket()  # accepts (the kernel does), never answers
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    extra = (f'[service]\nheartbeat_s = 0.0\n[spray]\nenabled = false\n[limits.dust]\npm10_1h_limit = 1.0\n'
             f'[[processing.alarm]]\ntype = "dust"\nchannels = ["pm10"]\n'
             f'[notify]\ntimeout_s = 2.0\nwebhook_url = "http://127.0.0.1:{hole.getsockname()[1]}/hook"\n')
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path, str(tmp_path / "buses" / "bus0"), extra,
                                   queue_extra="deliver_interval_s = 0.1\nmax_backoff_s = 1.0"))
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=3)
    try:
        with site:
            run = Running("run", "-c", str(config))
            try:
                run.wait_for(r"ALARM raised: dust on dust-1", timeout=120)
                run.wait_for(r"sink notify.webhook: cannot deliver", timeout=120)  # it is down, and retried
                seen = len(run.lines)
                run.signal(signal.SIGTERM)
                assert run.exit_status(120) == 0
            finally:
                run.kill()
    finally:
        hole.close()
    after = run.lines[seen:]
    attempts = [line for line in after if "sink notify.webhook: cannot deliver" in line]
    assert len(attempts) <= 1, after  # at most the send in flight when SIGTERM came
    waiting = [line for line in after if "notify.webhook" in line and "wait in the queue" in line]
    assert waiting and "down" in waiting[0], after
