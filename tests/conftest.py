"""Shared pytest plugins: service fixtures the tests start themselves."""

pytest_plugins = ["tests.support.mosquitto"]
