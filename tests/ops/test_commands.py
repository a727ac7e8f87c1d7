"""Downlink command verification (sans-IO) with the real SQLite store of seen ids."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ops.command_store import SqliteSeenIds
from gateway.ops.commands import (
    CommandVerifier,
    Rejected,
    canonical,
    execute,
    make_command,
    rejection,
    signature,
)

KEY = b"0123456789abcdef-shared-key"
NOW = 1_796_300_000.0


def verifier(tmp_path: Path, window_s: float = 300.0) -> CommandVerifier:
    return CommandVerifier(KEY, "site-a", "gw-1", SqliteSeenIds(tmp_path / "seen.sqlite3", 2 * window_s), window_s)


def payload(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body).encode()


def spray(**overrides: Any) -> dict[str, Any]:
    body = make_command(KEY, "site-a", "gw-1", "spray", {"node": "dust-1", "mode": "on"}, NOW, "c-1")
    body.update(overrides)
    return body


def code_of(v: CommandVerifier, data: bytes, now: float = NOW) -> str:
    with pytest.raises(Rejected) as caught:
        v.verify(data, now)
    return caught.value.code


def test_a_signed_fresh_command_is_accepted(tmp_path: Path) -> None:
    command = verifier(tmp_path).verify(payload(spray()), NOW + 10)
    assert (command.id, command.name, dict(command.args)) == ("c-1", "spray", {"node": "dust-1", "mode": "on"})


def test_the_signature_is_hmac_sha256_over_sorted_compact_json_without_sig() -> None:
    body = spray()
    assert canonical(body).startswith(b'{"args":{"mode":"on","node":"dust-1"},"cmd":"spray","gateway":"gw-1"')
    assert b"sig" not in canonical(body)
    import hashlib
    import hmac

    assert body["sig"] == hmac.new(KEY, canonical(body), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{not json", "malformed"),
        (b"\xff\xfe", "malformed"),
        (b"[1, 2]", "malformed"),
        (payload({"cmd": "spray"}), "malformed"),  # no id
        (payload({**spray(), "id": "has space"}), "malformed"),
        (payload({**spray(), "sig": "00" * 32}), "unauthorised"),
        (payload({k: v for k, v in spray().items() if k != "sig"}), "unauthorised"),
        (payload({**spray(), "args": {"node": "dust-1", "mode": "off"}}), "unauthorised"),  # changed after signing
    ],
)
def test_bad_input_is_rejected_with_its_code(tmp_path: Path, data: bytes, code: str) -> None:
    assert code_of(verifier(tmp_path), data) == code


def resigned(name: str, args: Mapping[str, Any], ts: float = NOW, site: str = "site-a", gw: str = "gw-1") -> bytes:
    return payload(make_command(KEY, site, gw, name, args, ts, "c-2"))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (resigned("spray", {"node": "dust-1", "mode": "on"}, site="site-b"), "wrong_gateway"),
        (resigned("spray", {"node": "dust-1", "mode": "on"}, gw="gw-2"), "wrong_gateway"),
        (resigned("spray", {"node": "dust-1", "mode": "on"}, ts=NOW - 301), "stale"),
        (resigned("spray", {"node": "dust-1", "mode": "on"}, ts=NOW + 301), "stale"),
        (resigned("reboot", {}), "unknown_command"),
        (resigned("spray", {"node": "dust-1", "mode": "max"}), "invalid"),
        (resigned("spray", {"node": "dust/1", "mode": "on"}), "invalid"),
        (resigned("spray", {"node": "dust-1", "mode": "on", "extra": 1}), "invalid"),
        (resigned("threshold", {"setting": "wind.crane_gust", "value": -1}), "invalid"),
        (resigned("threshold", {"setting": "wind.crane_gust", "value": True}), "invalid"),
        (resigned("threshold", {"setting": "crane_gust", "value": 8}), "invalid"),
        (resigned("poll_interval", {"seconds": 0.01, "node": "dust-1"}), "invalid"),
        (resigned("poll_interval", {"seconds": 5, "node": "dust-1", "bus": "bus0"}), "invalid"),
        (resigned("poll_interval", {"seconds": 5}), "invalid"),
        (resigned("time_sync", {"x": 1}), "invalid"),
    ],
)
def test_signed_but_wrong_commands_are_rejected(tmp_path: Path, data: bytes, code: str) -> None:
    assert code_of(verifier(tmp_path), data) == code


def test_a_replay_is_refused_also_after_a_restart(tmp_path: Path) -> None:
    first = verifier(tmp_path)
    first.verify(payload(spray()), NOW)
    assert code_of(first, payload(spray()), NOW + 1) == "replayed"
    first.seen.close()  # type: ignore[attr-defined]
    assert code_of(verifier(tmp_path), payload(spray()), NOW + 2) == "replayed"


async def test_a_replay_carries_the_first_reply(tmp_path: Path) -> None:
    v, target = verifier(tmp_path), Target()
    first = await execute(v.verify(payload(spray()), NOW), target, NOW)
    v.seen.settle("c-1", first.to_json())
    with pytest.raises(Rejected) as caught:
        v.verify(payload(spray()), NOW + 5)
    reply = rejection(caught.value, NOW + 5)
    assert (reply.ok, reply.error) == (False, "replayed")
    assert reply.result["original"]["ok"] is True and reply.result["original"]["result"] == {"node": "dust-1",
                                                                                              "mode": "on"}
    assert target.calls == [("spray", "dust-1", "on", "command c-1")]


def test_rejected_commands_do_not_burn_their_id(tmp_path: Path) -> None:
    v = verifier(tmp_path)
    assert code_of(v, payload({**spray(), "sig": "11" * 32})) == "unauthorised"
    assert v.verify(payload(spray()), NOW).id == "c-1"


def test_old_ids_are_pruned_but_stay_refused_as_stale(tmp_path: Path) -> None:
    v = verifier(tmp_path, window_s=10.0)
    v.verify(payload(spray()), NOW)
    other = make_command(KEY, "site-a", "gw-1", "time_sync", {}, NOW + 100, "c-9")
    v.verify(payload(other), NOW + 100)
    assert v.seen.count() == 1  # type: ignore[attr-defined]
    assert code_of(v, payload(spray()), NOW + 100) == "stale"


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        CommandVerifier(b"short", "s", "g", SqliteSeenIds(":memory:", 1.0))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_pass_and_never_crash(data: bytes) -> None:
    v = CommandVerifier(KEY, "site-a", "gw-1", SqliteSeenIds(":memory:", 600.0))
    with pytest.raises(Rejected):
        v.verify(data, NOW)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8), st.none()), max_size=5))
def test_arbitrary_signed_args_are_accepted_or_rejected_cleanly(args: dict[str, Any]) -> None:
    v = CommandVerifier(KEY, "site-a", "gw-1", SqliteSeenIds(":memory:", 600.0))
    for name in ("spray", "threshold", "poll_interval", "time_sync"):
        body = make_command(KEY, "site-a", "gw-1", name, args, NOW)
        try:
            v.verify(payload(body), NOW)
        except Rejected as error:
            assert error.code == "invalid"


class Target:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def command_spray(self, node: str, mode: str, who: str) -> Mapping[str, Any]:
        if node != "dust-1":
            raise LookupError(f"no bus owns node {node!r}")
        self.calls.append(("spray", node, mode, who))
        return {"node": node, "mode": mode}

    def command_threshold(self, setting: str, value: float, node: str | None) -> Mapping[str, Any]:
        raise ValueError(f"unknown setting {setting!r}")

    def command_poll_interval(self, seconds: float, node: str | None, bus: str | None) -> Mapping[str, Any]:
        raise RuntimeError("bus owner gone")

    def command_time_sync(self, sent: float) -> Mapping[str, Any]:
        return {"gateway_time": NOW, "offset_s": NOW - sent}


async def test_execute_applies_and_turns_refusals_into_error_replies(tmp_path: Path) -> None:
    v, target = verifier(tmp_path), Target()
    ok = await execute(v.verify(payload(spray()), NOW), target, NOW)
    assert ok.ok and ok.result == {"node": "dust-1", "mode": "on"}
    assert target.calls == [("spray", "dust-1", "on", "command c-1")]
    unknown = make_command(KEY, "site-a", "gw-1", "spray", {"node": "dust-7", "mode": "on"}, NOW, "c-3")
    refused = await execute(v.verify(payload(unknown), NOW), target, NOW)
    assert (refused.ok, refused.error, refused.message) == (False, "invalid", "no bus owns node 'dust-7'")
    poll = make_command(KEY, "site-a", "gw-1", "poll_interval", {"seconds": 5, "bus": "bus0"}, NOW, "c-4")
    failed = await execute(v.verify(payload(poll), NOW), target, NOW)
    assert (failed.ok, failed.error) == (False, "failed")
    sync = make_command(KEY, "site-a", "gw-1", "time_sync", {}, NOW - 2.5, "c-5")
    reply = await execute(v.verify(payload(sync), NOW), target, NOW)
    assert reply.result["offset_s"] == 2.5
    assert json.loads(reply.to_json())["id"] == "c-5"


def test_signature_helper_matches_verifier() -> None:
    body = spray()
    assert signature(body, KEY) == body["sig"]
