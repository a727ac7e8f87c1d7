"""Fixtures shared by every test directory: the real services tests start (tests/support/)."""

pytest_plugins = ["tests.support.influx", "tests.support.mosquitto"]
