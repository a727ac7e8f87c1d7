"""Logs: journal priorities under systemd, timestamps on a terminal, no pymodbus noise, no secrets."""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.ops import logs


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in logs.NOISY_LIBRARIES}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def _journal_env(path: Path) -> dict[str, str]:
    info = os.stat(path)
    return {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}


def test_under_systemd_every_line_carries_its_priority(tmp_path: Path, restore_logging: None) -> None:
    path = tmp_path / "journal"
    with path.open("w") as stream:
        logs.configure("INFO", stream, environ=_journal_env(path))
        log = logging.getLogger("gateway.test")
        log.info("node dust-1 online")
        log.warning("node dust-1 offline")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("stage failed")
    lines = path.read_text().splitlines()
    assert lines[0] == "<6>gateway.test: node dust-1 online"
    assert lines[1] == "<4>gateway.test: node dust-1 offline"
    assert lines[2] == "<3>gateway.test: stage failed"
    assert len(lines) > 3 and all(line.startswith("<3>") for line in lines[2:])  # the traceback too


def test_a_journal_stream_of_another_file_is_not_ours(tmp_path: Path, restore_logging: None) -> None:
    other = tmp_path / "other"
    other.write_text("")
    stream = io.StringIO()
    assert not logs.to_journal(stream, _journal_env(other))
    with (tmp_path / "mine").open("w") as mine:
        assert not logs.to_journal(mine, _journal_env(other))  # stderr redirected elsewhere by hand


def test_on_a_terminal_lines_have_a_timestamp(restore_logging: None) -> None:
    stream = io.StringIO()
    logs.configure("INFO", stream, environ={})
    logging.getLogger("gateway.test").warning("alarm raised")
    line = stream.getvalue().splitlines()[0]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4} WARNING gateway.test: alarm raised$", line), line


def test_pymodbus_is_quiet_even_at_debug_unless_asked_for(restore_logging: None) -> None:
    stream = io.StringIO()
    logs.configure("DEBUG", stream, environ={})
    logging.getLogger("pymodbus.logging").debug("send: 0x1 0x3 0x0")
    logging.getLogger("pymodbus.logging").warning("Repeating....")
    logging.getLogger("pymodbus.logging").error("no response; frames: 0x1 0x3")
    logging.getLogger("gateway.test").debug("status: 1/1 nodes online")
    text = stream.getvalue()
    assert "0x1 0x3" not in text and "Repeating" not in text
    assert "status: 1/1 nodes online" in text
    logs.configure("DEBUG", stream, log_modbus=True, environ={})
    logging.getLogger("pymodbus.logging").debug("send: 0x1 0x3 0x0")
    assert "send: 0x1 0x3 0x0" in stream.getvalue()


def test_configuring_again_replaces_the_handler(restore_logging: None) -> None:
    stream = io.StringIO()
    logs.configure("INFO", stream, environ={})
    logs.configure("INFO", stream, environ={})
    logging.getLogger("gateway.test").info("once")
    assert stream.getvalue().count("once") == 1


def test_secrets_never_reach_a_line(restore_logging: None) -> None:
    stream = io.StringIO()
    logs.configure("INFO", stream, environ={})
    logging.getLogger("gateway.test").info("packet QN=1;ST=22;CN=2011;PW=123456;MN=88 sent, %s", "password=hunter2")
    text = stream.getvalue()
    assert "123456" not in text and "hunter2" not in text
    assert "PW=***;MN=88" in text and "password=***" in text


def test_alarm_lines_say_pre_warning_or_alarm() -> None:
    from gateway.process.alarms import EventState, Severity

    line = logs.alarm_line("formwork_tilt", Severity.PREWARNING, EventState.RAISED, "tilt-1", "slope_x",
                           "slope_x 3.3 >= 3.2")
    assert line == "PRE-WARNING raised: formwork_tilt on tilt-1/slope_x: slope_x 3.3 >= 3.2"
    assert logs.alarm_line("crane_wind", Severity.ALARM, EventState.CLEARED, "w", "c", "r").startswith("ALARM cleared")


def test_robot_keys_in_urls_never_reach_a_debug_line(restore_logging: None) -> None:
    """Audit: at --log-level DEBUG, urllib3 logs each request line with its query: the WeCom robot's key=, the
    DingTalk robot's access_token= and sign= went into the journal (the token= mask needs a word boundary)."""
    import urllib3

    from tests.support.http_recorder import HttpRecorder

    # Another test in this worker process may have left urllib3's loggers disabled or raised (tests run
    # several files per process under xdist); this test is about the masking, so start them from scratch.
    for name in ("urllib3", "urllib3.connectionpool"):
        logger = logging.getLogger(name)
        logger.disabled, logger.propagate = False, True
        logger.setLevel(logging.NOTSET)
    stream = io.StringIO()
    logs.configure("DEBUG", stream, environ={})
    with HttpRecorder() as server:
        pool = urllib3.PoolManager(retries=False)
        pool.request("POST", f"{server.url}/cgi-bin/webhook/send?key=WECOMKEY123", body=b"{}")
        pool.request("POST", f"{server.url}/robot/send?access_token=DINGTOKEN456&timestamp=1&sign=SIGN789",
                     body=b"{}")
        pool.clear()
    text = stream.getvalue()
    assert "/robot/send?access_token=***" in text, text  # the request line is there, its secret is not
    for secret in ("WECOMKEY123", "DINGTOKEN456", "SIGN789"):
        assert secret not in text, text
    assert logs.mask_secrets("CP field 'x' is not key=value") == "CP field 'x' is not key=value"  # a parse error
