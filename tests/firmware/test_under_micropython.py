"""The firmware's MicroPython-compatible test modules, run under real MicroPython."""

from __future__ import annotations

import importlib

import pytest

from tests.support.micropython import run_micropython, run_test_module

SHARED_MODULES = [
    "tests/firmware/test_modbus_slave.py",
    "tests/firmware/test_pms5003.py",
    "tests/firmware/test_sds011.py",
    "tests/firmware/test_humidity.py",
    "tests/firmware/test_aweight.py",
    "tests/firmware/test_tilt.py",
    "tests/firmware/test_wind.py",
    "tests/firmware/test_history.py",
    "tests/firmware/test_rs485.py",
    "tests/firmware/test_config_store.py",
    "tests/firmware/test_relay.py",
    "tests/firmware/test_node.py",
    "tests/firmware/test_env_sensors.py",
    "tests/firmware/test_dust_sensor.py",
    "tests/firmware/test_noise_sensor.py",
    "tests/firmware/test_tilt_sensor.py",
    "tests/firmware/test_wind_sensor.py",
    "tests/firmware/test_node_history.py",
    "tests/firmware/test_fuzz_slave.py",
    "tests/firmware/test_tick_wrap.py",
    "tests/firmware/test_long_run.py",
]


@pytest.mark.parametrize("module", SHARED_MODULES)
def test_shared_vectors_pass_under_micropython(module: str) -> None:
    implementation, results = run_test_module(module)
    assert implementation == "micropython"
    cpython_module = importlib.import_module(module.removesuffix(".py").replace("/", "."))
    expected = {name for name in dir(cpython_module) if name.startswith("test_")}
    assert set(results) == expected, "MicroPython ran a different set of tests than CPython"
    failures = {name: trace for name, trace in results.items() if trace != "ok"}
    assert not failures, "\n".join(f"{n}:\n{t}" for n, t in failures.items())


def test_runner_reports_a_failing_assertion() -> None:
    # The harness itself must be able to fail: an exception in the code is a
    # non-zero exit with the traceback on stderr.
    proc = run_micropython("assert 1 == 2, 'deliberate'")
    assert proc.returncode == 1
    assert "deliberate" in proc.stderr


def test_runner_rejects_cpython_only_syntax() -> None:
    proc = run_micropython("match 1:\n    case 1:\n        pass\n")
    assert proc.returncode == 1
    assert "SyntaxError" in proc.stderr
