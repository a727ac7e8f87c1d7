"""Downlink commands from the municipal platform, sans-IO: parse, authenticate, check, then apply to a target.

A command is one JSON object (docs/mqtt.md has the format and a signing
example)::

    {"id": "c-20261203-0001", "site": "site-a", "gateway": "gw-1", "ts": 1796300000.0,
     "cmd": "spray", "args": {"node": "dust-1", "mode": "on"}, "sig": "<hex HMAC-SHA256>"}

``sig`` is HMAC-SHA256, with the key shared between the platform and this
gateway, over the *canonical* JSON of every other member (keys sorted, no
spaces, UTF-8). The broker's ACL decides who may publish on the command
topic; the signature decides whether the gateway obeys, so a leaked broker
password alone cannot switch a spray or raise an alarm limit.

``CommandVerifier.verify`` checks, in this order, and raises ``Rejected``
with a code at the first failure:

1. ``malformed``: not UTF-8 JSON, not an object, no usable ``id``;
2. ``unauthorised``: ``sig`` missing or wrong (checked before anything else
   is looked at, so an unsigned message learns nothing);
3. ``wrong_gateway``: signed for another site or gateway (one key may serve
   several gateways: a command cannot be replayed to a sibling);
4. ``stale``: ``ts`` farther than ``window_s`` from the gateway's clock;
5. ``unknown_command`` / ``invalid``: the command and its arguments;
6. ``replayed``: the id was accepted before (the reply then carries the
   first reply as ``result.original``, when there was one). Accepted ids are stored
   durably (``SeenIds``, SQLite beside the queue: command_store.py) for at
   least twice the window, so a replay after a restart is refused too; a
   replay older than that is already ``stale``.

Only authenticated commands are recorded as seen: a forger cannot burn ids.
``execute`` applies a verified command to a ``CommandTarget`` (the Gateway)
and returns the ``Reply``; an exception from the target becomes a
``failed`` reply. Nothing here reads a socket or a clock: ``now`` is passed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

COMMANDS = ("spray", "threshold", "poll_interval", "time_sync")
SPRAY_MODES = ("on", "off", "auto")
DEFAULT_WINDOW_S = 300.0
MIN_KEY_BYTES = 16
# Poll intervals a command may set, seconds: faster loads the bus, slower misses a gust.
POLL_INTERVAL_RANGE = (0.2, 3600.0)
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SETTING = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
_SIG = re.compile(r"^[0-9a-f]{64}$")


class Rejected(Exception):
    """A command the gateway refuses: code (see the module docstring) and a message for the reply."""

    def __init__(self, code: str, message: str, command_id: str | None = None, original: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.command_id = command_id
        self.original = original  # for "replayed": the reply the command got the first time (JSON), if known


@dataclass(frozen=True)
class Command:
    id: str
    name: str
    ts: float
    args: Mapping[str, Any]


@dataclass(frozen=True)
class Reply:
    id: str | None
    ok: bool
    message: str
    error: str | None = None  # the rejection code when not ok
    command: str | None = None
    result: Mapping[str, Any] = field(default_factory=dict)
    time: float = 0.0  # the gateway's clock when it replied

    def to_json(self) -> str:
        body = {"id": self.id, "ok": self.ok, "error": self.error, "command": self.command,
                "message": self.message, "result": dict(self.result), "time": self.time}
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)


class SeenIds(Protocol):
    def first_seen(self, command_id: str, now: float) -> float | None:
        """Record `command_id` as accepted at `now`; return when it was first accepted if it already was."""
        ...

    def settle(self, command_id: str, reply: str) -> None:
        """Keep the reply (JSON) an accepted command got."""
        ...

    def reply_of(self, command_id: str) -> str | None: ...


class CommandTarget(Protocol):
    """What a command can change (the Gateway implements it)."""

    async def command_spray(self, node: str, mode: str, who: str) -> Mapping[str, Any]: ...

    def command_threshold(self, setting: str, value: float, node: str | None) -> Mapping[str, Any]: ...

    def command_poll_interval(self, seconds: float, node: str | None, bus: str | None) -> Mapping[str, Any]: ...

    def command_time_sync(self, sent: float) -> Mapping[str, Any]: ...


def canonical(body: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: every member but ``sig``, keys sorted, compact, UTF-8."""
    unsigned = {k: v for k, v in body.items() if k != "sig"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def signature(body: Mapping[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(body), hashlib.sha256).hexdigest()


def make_command(
    key: bytes, site: str, gateway: str, name: str, args: Mapping[str, Any], ts: float,
    command_id: str | None = None,
) -> dict[str, Any]:
    """A signed command (for the platform's side, tests and docs/mqtt.md's example)."""
    body: dict[str, Any] = {"id": command_id or uuid.uuid4().hex, "site": site, "gateway": gateway, "ts": ts,
                            "cmd": name, "args": dict(args)}
    body["sig"] = signature(body, key)
    return body


def check_key(key: bytes, where: str) -> bytes:
    key = key.strip()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{where}: the command key has {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
    return key


class CommandVerifier:
    def __init__(self, key: bytes, site: str, gateway: str, seen: SeenIds,
                 window_s: float = DEFAULT_WINDOW_S) -> None:
        self.key = check_key(key, "command key")
        self.site = site
        self.gateway = gateway
        self.seen = seen
        self.window_s = window_s

    def verify(self, payload: bytes, now: float) -> Command:
        body = _parse(payload)
        command_id = body["id"]
        sig = body.get("sig")
        if not isinstance(sig, str) or not _SIG.match(sig):
            raise Rejected("unauthorised", "no valid signature (sig: 64 lower-case hex digits)", command_id)
        try:
            expected = signature(body, self.key)
        except ValueError as error:  # e.g. a NaN somewhere: not canonical JSON
            raise Rejected("malformed", f"cannot be signed: {error}", command_id) from None
        if not hmac.compare_digest(expected, sig):
            raise Rejected("unauthorised", "the signature does not match", command_id)
        if body.get("site") != self.site or body.get("gateway") != self.gateway:
            raise Rejected("wrong_gateway", f"signed for {body.get('site')!r}/{body.get('gateway')!r}, "
                                            f"this is {self.site!r}/{self.gateway!r}", command_id)
        ts = body.get("ts")
        if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
            raise Rejected("malformed", f"ts must be a number of seconds since the epoch, got {ts!r}", command_id)
        if abs(now - ts) > self.window_s:
            raise Rejected("stale", f"ts is {now - ts:+.0f} s from the gateway's clock (allowed: "
                                    f"{self.window_s:g} s either way)", command_id)
        name = body.get("cmd")
        if name not in COMMANDS:
            raise Rejected("unknown_command", f"unknown command {name!r} (known: {', '.join(COMMANDS)})", command_id)
        raw_args = body.get("args", {})
        if not isinstance(raw_args, dict):
            raise Rejected("invalid", f"args must be an object, got {raw_args!r}", command_id)
        args = _ARGUMENTS[name](raw_args, command_id)
        earlier = self.seen.first_seen(command_id, now)
        if earlier is not None:
            raise Rejected("replayed", f"command {command_id} was already received at {earlier:.3f}; "
                                       "it is not applied again", command_id, self.seen.reply_of(command_id))
        return Command(command_id, name, float(ts), args)


def _parse(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise Rejected("malformed", f"not UTF-8 JSON: {error}") from None
    if not isinstance(body, dict):
        raise Rejected("malformed", f"expected a JSON object, got {type(body).__name__}")
    command_id = body.get("id")
    if not isinstance(command_id, str) or not _ID.match(command_id):
        raise Rejected("malformed", f"id must be 1-64 characters of A-Z a-z 0-9 _ . : -, got {command_id!r}")
    return body


def _only(args: Mapping[str, Any], allowed: set[str], command_id: str) -> None:
    extra = sorted(set(args) - allowed)
    if extra:
        raise Rejected("invalid", f"unknown argument(s) {', '.join(extra)} (allowed: "
                                  f"{', '.join(sorted(allowed)) or 'none'})", command_id)


def _name(args: Mapping[str, Any], key: str, command_id: str, required: bool) -> str | None:
    value = args.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _NAME.match(value):
        raise Rejected("invalid", f"{key} must be a name (1-64 of A-Z a-z 0-9 _ . -), got {value!r}", command_id)
    return value


def _number(args: Mapping[str, Any], key: str, command_id: str) -> float:
    value = args.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Rejected("invalid", f"{key} must be a finite number, got {value!r}", command_id)
    return float(value)


def _spray_args(args: Mapping[str, Any], command_id: str) -> Mapping[str, Any]:
    _only(args, {"node", "mode"}, command_id)
    node = _name(args, "node", command_id, True)
    mode = args.get("mode")
    if mode not in SPRAY_MODES:
        raise Rejected("invalid", f"mode must be one of {', '.join(SPRAY_MODES)}, got {mode!r}", command_id)
    return {"node": node, "mode": mode}


def _threshold_args(args: Mapping[str, Any], command_id: str) -> Mapping[str, Any]:
    _only(args, {"setting", "value", "node"}, command_id)
    setting = args.get("setting")
    if not isinstance(setting, str) or not _SETTING.match(setting):
        raise Rejected("invalid", f"setting must be a [limits] key such as \"wind.crane_gust\", got {setting!r}",
                       command_id)
    value = _number(args, "value", command_id)
    if value < 0:
        raise Rejected("invalid", f"value must not be negative, got {value:g}", command_id)
    return {"setting": setting, "value": value, "node": _name(args, "node", command_id, False)}


def _poll_args(args: Mapping[str, Any], command_id: str) -> Mapping[str, Any]:
    _only(args, {"seconds", "node", "bus"}, command_id)
    seconds = _number(args, "seconds", command_id)
    low, high = POLL_INTERVAL_RANGE
    if not low <= seconds <= high:
        raise Rejected("invalid", f"seconds must be within {low:g} .. {high:g}, got {seconds:g}", command_id)
    node, bus = _name(args, "node", command_id, False), _name(args, "bus", command_id, False)
    if (node is None) == (bus is None):
        raise Rejected("invalid", "give exactly one of node or bus", command_id)
    return {"seconds": seconds, "node": node, "bus": bus}


def _time_args(args: Mapping[str, Any], command_id: str) -> Mapping[str, Any]:
    _only(args, set(), command_id)
    return {}


_ARGUMENTS = {"spray": _spray_args, "threshold": _threshold_args, "poll_interval": _poll_args,
              "time_sync": _time_args}


async def execute(command: Command, target: CommandTarget, now: float) -> Reply:
    """Apply a verified command; a refusal or failure of the target is an error reply."""
    a = command.args
    try:
        if command.name == "spray":
            result = await target.command_spray(a["node"], a["mode"], f"command {command.id}")
        elif command.name == "threshold":
            result = target.command_threshold(a["setting"], a["value"], a["node"])
        elif command.name == "poll_interval":
            result = target.command_poll_interval(a["seconds"], a["node"], a["bus"])
        else:
            result = target.command_time_sync(command.ts)
    except (LookupError, ValueError) as error:  # the target's refusal: unknown node, setting out of range
        return Reply(command.id, False, _text(error), "invalid", command.name, time=now)
    except Exception as error:  # the command was valid; applying it failed
        return Reply(command.id, False, f"{type(error).__name__}: {error}", "failed", command.name, time=now)
    return Reply(command.id, True, "applied", None, command.name, result, now)


def rejection(error: Rejected, now: float) -> Reply:
    result = {"original": json.loads(error.original)} if error.original else {}
    return Reply(error.command_id, False, error.message, error.code, result=result, time=now)


def _text(error: Exception) -> str:
    # KeyError's str() is the repr of its argument: quotes around a sentence.
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


def check_args(name: str, args: Mapping[str, Any], command_id: str) -> Mapping[str, Any]:
    """A command's arguments checked as a signed command's are (for other front ends, such as the status page)."""
    if name not in _ARGUMENTS:
        raise Rejected("unknown_command", f"unknown command {name!r} (known: {', '.join(COMMANDS)})", command_id)
    return _ARGUMENTS[name](args, command_id)
