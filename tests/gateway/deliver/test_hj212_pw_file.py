"""The HJ 212 access password (PW) from a credential file, as every other uplink secret.

Issue 11 asks for secrets through systemd's LoadCredential=, never in gateway.toml; the platform's
PW was the one secret that could only be written into the configuration.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.deliver.credentials import CredentialError
from gateway.deliver.hj212 import aclose
from gateway.deliver.sinks import SinkConfigError
from tests.gateway.deliver.test_hj212_sink import T0, Platform, batch, make_sink, platform, reading, until

__all__ = ["platform"]  # the fixture, used by name


async def test_packets_carry_the_pw_of_the_credential_file(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sitewatch_hj212.pw").write_text("739104\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    sink = make_sink(platform.port, pw_file="hj212.pw")
    try:
        assert await sink.send(batch([reading("pm10", 80.0, T0), reading("pm10", 81.0, T0 + 30)])) == 2
        await until(lambda: len(platform.received) == 1, "the real-time packet")
        assert platform.received[0].packet.pw == "739104"
    finally:
        await aclose(sink)


def test_a_missing_pw_file_names_the_sink_and_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(CredentialError, match="sink hj212: pw_file: no file"):
        make_sink(1, pw_file="hj212.pw")


def test_pw_and_pw_file_together_are_refused(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("739104")
    with pytest.raises(SinkConfigError, match="pw_file and pw"):
        make_sink(1, pw="123", pw_file=str(tmp_path / "pw"))
