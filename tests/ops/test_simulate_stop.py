"""`sitewatch simulate` stops on SIGTERM whenever it comes (stress run s5b: one ignored it for a minute).

Its handler used threading.Event.set(), which takes the Event's lock: a signal landing while the main thread
held that lock inside Event.wait() ran the handler in the same thread, which then waited for itself forever.
The storm below sends a signal every 100 us at a loop that waits and resets, as the simulator's main loop
waits: with an Event in place of StopRequest it hangs within a second or two.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

STORM = textwrap.dedent(
    """
    import signal, sys
    from gateway.ops.cmd_simulate import StopRequest

    stop = StopRequest()
    signal.signal(signal.SIGALRM, stop.set)
    signal.setitimer(signal.ITIMER_REAL, 0.0001, 0.0001)
    seen = 0
    for _ in range(30000):
        if stop.wait(0.00005):
            seen += 1
            stop.requested = False
    signal.setitimer(signal.ITIMER_REAL, 0, 0)
    print(seen)
    """
)


def test_the_stop_request_survives_a_storm_of_signals_landing_anywhere_in_its_wait() -> None:
    done = subprocess.run([sys.executable, "-c", STORM], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 100  # the signals did land, and every wait came back
