"""Who may switch a spray from the status page: the holder of the page token (a credential file). Sans-IO.

The page sends the token in ``Authorization: Bearer <token>`` on a JSON POST; a header a cross-site page
cannot make a browser send without a CORS preflight this server never grants, so a forged form or link
cannot switch anything (and GET switches nothing). The token is compared in constant time, and neither it
nor a wrong guess is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac

MIN_TOKEN = 16


class PageAuthError(PermissionError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_token(secret: bytes, where: str) -> bytes:
    """The token from its credential file (trailing whitespace dropped), refused when too short to be secret."""
    token = secret.strip()
    if len(token) < MIN_TOKEN:
        raise ValueError(f"{where}: the page token has {len(token)} characters; at least {MIN_TOKEN} are needed")
    return token


def authorise(token: bytes | None, header: str | None) -> None:
    """Raise PageAuthError unless `header` is "Bearer <token>" (token None: spray control from the page is off)."""
    if token is None:
        raise PageAuthError(403, "spray control from the page is off ([status] spray_token_file is not set)")
    if not header or not header.startswith("Bearer "):
        raise PageAuthError(401, "the spray needs the page token (Authorization: Bearer ...)")
    given = header[len("Bearer "):].strip().encode("utf-8", "replace")
    if not hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(token).digest()):
        raise PageAuthError(401, "wrong page token")
