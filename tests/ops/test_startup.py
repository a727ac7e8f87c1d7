"""Start-up failures: one line (path, reason, what to do), a distinct exit status; `config check` sees them too."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from gateway.ops.config import parse_config
from gateway.ops.startup import (
    EXIT_CONFIG,
    EXIT_IO,
    alarm_warnings,
    all_warnings,
    check_location,
    has_channel,
    serial_port_warnings,
)
from tests.ops.service_process import Running, gateway_toml

# A TCP bus: no serial-port warning in the log, so the failure is the only line.
TCP_BUS = """
[[bus]]
name = "tcp0"
transport = "tcp"
host = "127.0.0.1"
port = 1
[[bus.node]]
name = "wind-1"
kind = "wind"
unit_id = 1
"""


def test_a_store_under_proc_is_one_line_and_exit_status_78(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'[store]\npath = "/proc/sitewatch/readings.sqlite3"\n{TCP_BUS}')
    run = Running("run", "-c", str(config))
    assert run.exit_status() == EXIT_CONFIG
    assert len(run.lines) == 1, run.lines  # no traceback
    line = run.lines[0]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4} ERROR ", line), line
    assert "store.path (/proc/sitewatch/readings.sqlite3)" in line and "kernel file system" in line
    assert "choose a folder" in line and "(exit status 78)" in line


def test_a_store_path_where_a_file_blocks_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("")
    config = tmp_path / "gateway.toml"
    config.write_text(f'[store]\npath = "{tmp_path}/blocker/sub/readings.sqlite3"\n{TCP_BUS}')
    run = Running("run", "-c", str(config))
    assert run.exit_status() == EXIT_CONFIG
    assert len(run.lines) == 1 and "blocker is not a folder" in run.lines[0], run.lines


def test_a_queue_that_cannot_be_created_is_one_line_naming_the_queue_and_why(tmp_path: Path) -> None:
    # Issue 11: "the queue's error gives no reason". The store is fine here, so only the queue can fail.
    (tmp_path / "blocker").write_text("")
    queue = tmp_path / "blocker" / "sub" / "queue.sqlite3"
    config = tmp_path / "gateway.toml"
    config.write_text(f'[store]\npath = "{tmp_path}/store.sqlite3"\n[queue]\npath = "{queue}"\n{TCP_BUS}')
    run = Running("run", "-c", str(config))
    assert run.exit_status() == EXIT_CONFIG
    assert len(run.lines) == 1, run.lines  # no traceback
    line = run.lines[0]
    assert f"queue.path ({queue})" in line and "blocker is not a folder" in line and "(exit status 78)" in line, line


def test_a_bad_configuration_is_one_line_and_exit_status_78(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'[queue]\nbatch = 0\n{TCP_BUS}')
    run = Running("run", "-c", str(config))
    assert run.exit_status() == EXIT_CONFIG
    assert len(run.lines) == 1 and "queue.batch" in run.lines[0] and "config check" in run.lines[0], run.lines


def test_a_missing_configuration_file_is_exit_status_78(tmp_path: Path) -> None:
    run = Running("run", "-c", str(tmp_path / "none.toml"))
    assert run.exit_status() == EXIT_CONFIG
    assert len(run.lines) == 1 and "cannot read" in run.lines[0]


def test_check_location_without_changing_anything(tmp_path: Path) -> None:
    problems, warnings = check_location("store.path", tmp_path / "a" / "b" / "store.sqlite3")
    assert problems == [] and warnings == []
    assert not (tmp_path / "a").exists()  # a check creates nothing
    problems, _ = check_location("store.path", Path("/sys/kernel/store.sqlite3"))
    assert problems and "kernel file system" in problems[0].problem
    problems, _ = check_location("queue.path", tmp_path)
    assert problems and "is a folder" in problems[0].problem


def test_a_device_or_fifo_as_the_store_is_a_configuration_error(tmp_path: Path) -> None:
    """Audit: store.path = "/dev/null" (or a FIFO) exited 74 ("check the disk"), which systemd restarts forever,
    and left /dev/null.lock and /dev/null-queue.sqlite3.lock in /dev. It is the configuration that is wrong."""
    problems, _ = check_location("store.path", Path("/dev/null"))
    assert problems and "not a regular file" in problems[0].problem, problems
    problems, _ = check_location("store.path", Path("/dev/sitewatch/store.sqlite3"))
    assert problems and "/dev" in problems[0].problem, problems
    fifo = tmp_path / "store.fifo"
    os.mkfifo(fifo)
    config = tmp_path / "gateway.toml"
    config.write_text(f'[store]\npath = "{fifo}"\n{TCP_BUS}')
    run = Running("run", "-c", str(config))
    assert run.exit_status() == EXIT_CONFIG
    assert len(run.lines) == 1 and f"store.path ({fifo})" in run.lines[0], run.lines
    assert "not a regular file" in run.lines[0]
    assert not (tmp_path / "store.fifo.lock").exists()


def _config(text: str) -> object:
    return parse_config(tomllib.loads(text), "test.toml")


def test_config_check_reports_proc_missing_ports_and_alarms_that_cannot_fire(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
[store]
path = "/proc/sitewatch/readings.sqlite3"
[[processing.alarm]]
type = "dust"
nodes = ["wind-1"]
[[bus]]
port = "{tmp_path}/ttyUSB7"
[[bus.node]]
name = "wind-1"
kind = "wind"
unit_id = 1
""")
    run = Running("config", "check", str(config))
    assert run.exit_status() == 1
    text = "\n".join(run.lines)
    assert f"error: {config}: store.path (/proc/sitewatch/readings.sqlite3): /proc is on a kernel file system" in text
    assert f"warning: {config}: bus[0].port: {tmp_path}/ttyUSB7 does not exist (yet)" in text
    assert "node 'wind-1' is a wind node without pm10_1h_mean: this alarm never fires for it" in text
    assert "replaces the default alarm list; not active now: crane_wind, formwork_tilt" in text


def test_config_check_of_a_sound_file_warns_about_nothing(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path, "/dev/null"))
    run = Running("config", "check", str(config))
    assert run.exit_status() == 0
    assert run.lines == []


def test_channels_of_a_kind() -> None:
    assert has_channel("dust", "pm10_1h_mean") and has_channel("dust", "pm10")
    assert has_channel("wind", "wind_gust_3s") and has_channel("wind", "wind_2min_speed_mean")
    assert has_channel("noise", "noise_20min_leq") and has_channel("tilt", "slope_x")
    assert not has_channel("wind", "pm10_1h_mean") and not has_channel("tilt", "wind_gust_3s")


def test_alarm_warnings_name_the_alarm_and_the_node(tmp_path: Path) -> None:
    text = gateway_toml(tmp_path, "/dev/null") + """
[[bus.node]]
name = "wind-1"
kind = "wind"
unit_id = 2
"""
    config = parse_config(tomllib.loads(text), "t.toml")
    assert alarm_warnings(config) == [] and serial_port_warnings(config) == []
    listed = text.replace("[[bus]]", '[[processing.alarm]]\ntype = "crane_wind"\nnodes = ["wind-1", "dust-1"]\n'
                          '[[processing.alarm]]\ntype = "dust"\n[[bus]]', 1)
    found = [str(w) for w in alarm_warnings(parse_config(tomllib.loads(listed), "t.toml"))]
    assert len(found) == 2, found
    assert "not active now: formwork_tilt, lifting_wind, noise, noise_night_lmax" in found[0]
    assert "processing.alarm (crane_wind): node 'dust-1' is a dust node without wind_gust_3s" in found[1]


def test_a_store_that_is_not_a_database_is_one_line_and_exit_status_74(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    store.write_bytes(b"not a database " * 100)
    config = tmp_path / "gateway.toml"
    config.write_text(f'[store]\npath = "{store}"\n{TCP_BUS}')
    run = Running("run", "-c", str(config))
    assert run.exit_status() == EXIT_IO
    assert len(run.lines) == 1, run.lines
    assert f"cannot open the store {store}" in run.lines[0] and "file is not a database" in run.lines[0]


def test_a_missing_tls_file_of_the_mqtt_sink_is_a_configuration_error(tmp_path: Path) -> None:
    """Audit: a ca_file that does not exist passed, and the sink retried for ever with "FileNotFoundError:
    [Errno 2] No such file or directory", naming no file."""
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
[store]
path = "{tmp_path / 'store.sqlite3'}"
[[sink]]
type = "mqtt"
host = "127.0.0.1"
gateway = "gw1"
ca_file = "{tmp_path / 'no-such-ca.pem'}"
{TCP_BUS}""")
    run = Running("run", "-c", str(config))
    assert run.exit_status() == EXIT_CONFIG
    assert len(run.lines) == 1, run.lines
    assert f"ca_file {tmp_path / 'no-such-ca.pem'}: no such file" in run.lines[0], run.lines


def test_a_missing_credential_file_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
[store]
path = "{tmp_path / 'store.sqlite3'}"
[[sink]]
type = "mqtt"
name = "mqtt"
host = "127.0.0.1"
gateway = "gw1"
command_key_file = "no-such-key"
{TCP_BUS}""")
    run = Running("run", "-c", str(config), env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert run.exit_status() == EXIT_CONFIG  # restarting cannot make the file appear
    assert len(run.lines) == 1 and "command_key_file: no file" in run.lines[0], run.lines


def test_a_privileged_status_port_is_a_warning(tmp_path: Path) -> None:
    """Audit: `[status] port = 80` (so phones open http://gateway/) passed config check, then failed under the unit,
    whose empty CapabilityBoundingSet= cannot bind ports below net.ipv4.ip_unprivileged_port_start."""
    from gateway.ops.startup import status_port_warnings

    config = _config(f'[status]\nport = 80\nbind = "0.0.0.0"\n{TCP_BUS}')
    (warning,) = status_port_warnings(config, unprivileged_from=1024)  # type: ignore[arg-type]
    assert warning.key == "status.port" and "80" in warning.problem and "1024" in warning.problem
    assert "CAP_NET_BIND_SERVICE" in warning.problem
    assert status_port_warnings(config, unprivileged_from=0) == []  # type: ignore[arg-type]
    for port in (0, 8080):
        assert status_port_warnings(_config(f"[status]\nport = {port}\n{TCP_BUS}"),  # type: ignore[arg-type]
                                    unprivileged_from=1024) == []
    assert all_warnings(config) == status_port_warnings(config)  # type: ignore[arg-type]
