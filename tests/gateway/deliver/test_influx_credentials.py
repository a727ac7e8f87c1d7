"""The InfluxDB sink's credentials come through systemd's LoadCredential= like every other secret.

The shipped unit hands /etc/sitewatch/credentials (0700 root) to the service as
$CREDENTIALS_DIRECTORY/sitewatch_<file>; the gateway's user cannot read the folder itself,
so a credentials_file named as the operator's guide says must be found there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.deliver.influx import read_credentials
from gateway.deliver.sinks import SINKS, SinkConfigError, load_builtin_sinks


def test_a_file_name_is_found_where_load_credential_puts_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sitewatch_influx.credentials").write_text("writer:secret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    monkeypatch.chdir(tmp_path.parent)  # the bare name must not resolve against the working folder
    assert read_credentials("influx.credentials", "v1") == "writer:secret"
    load_builtin_sinks()
    SINKS.create("influxdb", "influx", {"url": "http://127.0.0.1:1", "site": "s", "gateway": "g", "api": "v1",
                                        "database": "d", "credentials_file": "influx.credentials"}).close()


def test_an_absolute_path_is_read_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    token = tmp_path / "token"
    token.write_text("abc123\n")
    assert read_credentials(str(token), "v2") == "abc123"


def test_a_name_found_nowhere_says_which_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SinkConfigError, match=re.escape("credentials_file 'influx.credentials': No such file")):
        read_credentials("influx.credentials", "v1")


def test_a_missing_file_at_start_names_the_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    load_builtin_sinks()
    named = re.escape("sink 'uplink-2' (influxdb): credentials_file 'influx.credentials'")
    with pytest.raises(SinkConfigError, match=named):
        SINKS.create("influxdb", "uplink-2", {"url": "http://127.0.0.1:1", "site": "s", "gateway": "g", "api": "v1",
                                               "database": "d", "credentials_file": "influx.credentials"})
