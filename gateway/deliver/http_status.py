"""What an HTTP sink does with a server's answer, sans-IO: retry (and when), or stop for good.

* 2xx: delivered.
* 429 Too Many Requests, 503 Service Unavailable: retry, after the server's
  ``Retry-After`` (delta-seconds or an HTTP date, RFC 9110 10.2.3) when it sent one.
* 408 and the other 5xx: retry with the dispatcher's backoff (the server or a
  proxy is in trouble; it may recover).
* Any other 4xx: the request itself is refused (a bad token, a missing
  database or bucket, data the server will never take): retrying would send
  the same thing forever, so the sink stops with the server's message.
"""

from __future__ import annotations

import email.utils
import math
import re

from gateway.deliver.sinks import SinkError, SinkFatalError

RETRYABLE_4XX = {408, 429}

# InfluxDB's answer when it kept a batch but refused points older than the retention policy: those
# points can never be written (retrying repeats the refusal); the rest are stored.
_BEYOND_RETENTION = re.compile(r"points beyond retention policy dropped=(\d+)")

_HINTS = {
    400: "the server refused the data (see its message); the batch stays queued",
    401: "check the credentials file",
    403: "check the credentials' permissions on the database or bucket",
    404: "check that the database (v1) or the org and bucket (v2) exist, and the url",
    413: "lower batch_size",
}


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header at wall time `now`, or None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT; parsedate gives naive for "-0000"
        return None
    seconds = when.timestamp() - now
    return max(0.0, seconds) if math.isfinite(seconds) else None


def refusal(sink: str, status: int, message: str, retry_after: str | None, now: float) -> SinkError:
    """The error a sink raises for a non-2xx answer: retryable (SinkError) or fatal (SinkFatalError)."""
    message = " ".join(message.split())[:500] or "(no message)"
    if status in RETRYABLE_4XX or status >= 500:
        wait = parse_retry_after(retry_after, now) if status in (429, 503) else None
        after = f" (server asks to retry after {wait:g} s)" if wait is not None else ""
        return SinkError(f"sink {sink}: server answered {status}: {message}{after}", retry_after=wait)
    hint = _HINTS.get(status, "retrying the same request cannot succeed")
    return SinkFatalError(f"sink {sink}: server refused the write with {status}: {message} ({hint})")


def dropped_beyond_retention(status: int, message: str) -> int | None:
    """How many points the server dropped as older than its retention policy (it kept the rest), or None."""
    if status != 400:
        return None
    found = _BEYOND_RETENTION.search(message)
    return int(found.group(1)) if found else None
