"""Secrets from credential files, never from the configuration (and never into a log).

A name is looked up as given (an absolute or relative path) and, as systemd's
``LoadCredential=`` hands them over, in ``$CREDENTIALS_DIRECTORY``. The value
is the file's content without its trailing newline.
"""

from __future__ import annotations

import os
from pathlib import Path

CREDENTIAL_PREFIX = "sitewatch_"


class CredentialError(LookupError):
    """A credential file that cannot be found or read (the message names where it looked, never the secret)."""


def credential_path(name: str, what: str) -> Path:
    candidates = [Path(name)]
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if directory and not Path(name).is_absolute():
        candidates.insert(0, Path(directory) / name)
    elif directory:
        candidates.append(Path(directory) / Path(name).name)
    if directory:
        # The unit loads the folder /etc/sitewatch/credentials with LoadCredential=sitewatch:...; systemd names
        # each file in it "sitewatch_<file>" (systemd.exec(5)).
        candidates.append(Path(directory) / f"{CREDENTIAL_PREFIX}{Path(name).name}")
    for path in candidates:
        if path.is_file():
            return path
    raise CredentialError(f"{what}: no file {' or '.join(str(p) for p in candidates)}")


def read_credential(name: str, what: str) -> bytes:
    path = credential_path(name, what)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CredentialError(f"{what}: cannot read {path}: {error.strerror}") from None
    data = data.rstrip(b"\r\n")
    if not data:
        raise CredentialError(f"{what}: {path} is empty")
    return data
