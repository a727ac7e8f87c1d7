"""What an HTTP sink makes of a server's answer: Retry-After, retry or stop for good (sans-IO)."""

from __future__ import annotations

import pytest

from gateway.deliver.http_status import dropped_beyond_retention, parse_retry_after, refusal
from gateway.deliver.sinks import SinkFatalError

NOW = 1_792_567_380.0  # 2026-10-21 07:23:00 UTC


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2026 07:28:00 GMT", 300.0),  # RFC 9110 IMF-fixdate
        ("Wednesday, 21-Oct-26 07:28:00 GMT", 300.0),  # obsolete RFC 850 form
        ("Wed, 21 Oct 2026 07:00:00 GMT", 0.0),  # already past: retry now
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after_vectors(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_answers_that_may_pass_are_retried(status: int) -> None:
    error = refusal("influx", status, "busy", "30", NOW)
    assert not isinstance(error, SinkFatalError)
    assert error.retry_after == (30.0 if status in (429, 503) else None)
    assert f"sink influx: server answered {status}: busy" in str(error)


@pytest.mark.parametrize(
    ("status", "hint"),
    [(400, "refused the data"), (401, "credentials file"), (403, "permissions"), (404, "database"),
     (405, "cannot succeed"), (413, "batch_size"), (422, "cannot succeed")],
)
def test_answers_that_never_pass_stop_the_sink_with_the_servers_message(status: int, hint: str) -> None:
    error = refusal("influx", status, 'database not found:\n "site"', None, NOW)
    assert isinstance(error, SinkFatalError)
    assert f'refused the write with {status}: database not found: "site"' in str(error)
    assert hint in str(error)


def test_an_empty_message_is_said_to_be_empty() -> None:
    assert "401: (no message)" in str(refusal("influx", 401, "  ", None, NOW))


def test_points_beyond_the_retention_policy() -> None:
    assert dropped_beyond_retention(400, "partial write: points beyond retention policy dropped=12") == 12
    assert dropped_beyond_retention(400, "partial write: field type conflict: ... dropped=3") is None
    assert dropped_beyond_retention(500, "points beyond retention policy dropped=12") is None
