"""Fixtures shared by every test directory: the real services tests start (tests/support/)."""

import sys

from hypothesis import settings

pytest_plugins = ["tests.support.influx", "tests.support.mosquitto"]


# The simulated buses run as threads of the test process, beside the gateway under test. With the
# default 5 ms switch interval a bus thread that wakes for its next byte, or to hear a request,
# can wait that long per busy thread for the interpreter lock: on a loaded host that adds up to
# tens of milliseconds no real node would take. 0.5 ms keeps the simulated line close to its wire
# times; the cost is a little more switching in CPU-bound tests.
sys.setswitchinterval(0.0005)


# Hypothesis fails an example that takes longer than its deadline (200 ms) on the wall clock: on a host whose
# cores are busy (the suite's own workers, a CPU hog) a pure function can take that long once, which says
# nothing about the function (stress-ng run: test_wind's 261 ms, then 0.15 ms). Speed is the benchmarks' business.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")
