"""Secrets handed over by the unit's LoadCredential=sitewatch:/etc/sitewatch/credentials (a folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.deliver.credentials import read_credential


def test_a_file_of_the_credentials_folder_is_found_by_its_own_name(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # systemd copies /etc/sitewatch/credentials/mqtt-password to $CREDENTIALS_DIRECTORY/sitewatch_mqtt-password.
    (tmp_path / "sitewatch_mqtt-password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert read_credential("mqtt-password", "sink mqtt: password_file") == b"s3cret"
    # The configuration may name the installed path; the service cannot read that folder (0700 root).
    assert read_credential("/etc/sitewatch/credentials/mqtt-password", "sink mqtt: password_file") == b"s3cret"
