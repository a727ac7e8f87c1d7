"""The gateway's local HTTP endpoint: /status (JSON), /metrics (Prometheus), / (the status page).

One aiohttp server on ``[status] bind``:``port`` (default 127.0.0.1:9721), on the gateway's own event loop,
so a snapshot is read between two steps of the bus owners, never half-way through one. It shows no secrets.
It takes two kinds of POST, both JSON from the page's own origin (same_origin: no cross-site request gets
through): /alarms/ack, an acknowledgement (who and when; it changes no output, acks.py), and /spray, which
switches a coil and so needs the page token (page_auth.py). Bind it to the site network only when Prometheus
or the site office's phones must reach it (docs/operator-guide.md).

/charts: the page's charts as SVG (page_charts.py) from the recent-readings ring (recent.py).

A port that cannot be bound (another process holds it, or the bind address is not up yet) is one error
line: the gateway runs on without the endpoint, since collecting data matters more than showing it, and
tries again every LISTEN_RETRY_S quietly (``listen_when_free``), so the page comes back without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.deliver.credentials import CredentialError, read_credential
from gateway.ops import live_state
from gateway.ops.acks import AckError, AckStore, parse_ack
from gateway.ops.commands import Command, Rejected, check_args, execute
from gateway.ops.metrics import make_registry
from gateway.ops.page_auth import PageAuthError, authorise, check_token
from gateway.process.limits import SiteLimits

log = logging.getLogger(__name__)

LISTEN_RETRY_S = 30.0  # a status port that could not be bound is tried again this often


class StatusServer:
    def __init__(self, gateway: Any, latest: live_state.LatestReadings | None = None, supervisor: Any = None,
                 started: float | None = None) -> None:
        self.gateway = gateway
        self.latest = latest
        self.supervisor = supervisor
        self.started = time.monotonic() if started is None else started
        self.registry, self.collector = make_registry(gateway)
        self.app = web.Application()
        self.app.router.add_get("/status", self._status)
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/", self._page)
        self.app.router.add_get("/charts", self._charts)
        self.app.router.add_post("/alarms/ack", self._ack)
        self.app.router.add_post("/spray", self._spray)
        self.spray_token = _page_token(gateway.config.status.spray_token_file)
        queue_path = Path(gateway.queue.path)
        self.acks = AckStore(queue_path.with_name(f"{queue_path.stem}-acks.sqlite3"))
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def snapshot(self) -> dict[str, Any]:
        state = await live_state.collect(self.gateway, self.started, self.latest, self._extra)
        for a in state["alarms"]:
            ack = self.acks.of(a["alarm"], a["node"], a["channel"], a["since"])
            a["acknowledged"] = None if ack is None else ack.as_json()
        state["spray_control"] = self.spray_token is not None
        siren = getattr(self.gateway, "siren", None)
        state["siren"] = None if siren is None else {"node": siren.rule.node, "coil": siren.rule.coil,
                                                     "on": siren.on, "causes": list(siren.causes)}
        return state

    def _extra(self) -> dict[str, Any]:
        if self.supervisor is None:
            return {}
        return {"stuck": dict(self.supervisor.stuck), "status_line": self.supervisor.status_line()}

    async def _status(self, request: web.Request) -> web.Response:
        state = await self.snapshot()
        return web.json_response(state, dumps=lambda d: json.dumps(d, ensure_ascii=False))

    async def _metrics(self, request: web.Request) -> web.Response:
        self.collector.state = await self.snapshot()
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def limits_of(self, node: str) -> SiteLimits:
        """The limits the alarms judge the node by (changed by `threshold` commands), else the configuration's."""
        alarms = self.gateway.pipeline.alarms
        resolver = alarms.limits if alarms is not None else self.gateway.config.limits_resolver()
        limits: SiteLimits = resolver.for_node(node)
        return limits

    async def _charts(self, request: web.Request) -> web.Response:
        """The page's charts as SVG markup (page_charts.py), in the language asked for (?lang=en)."""
        from gateway.ops.page_charts import page_charts

        now = self.gateway.clock.wall()
        charts = [] if self.latest is None else page_charts(self.latest.recent, self.limits_of, now,
                                                             request.query.get("lang", "zh"))
        skipped = 0 if self.latest is None else self.latest.recent.skipped_old
        return web.json_response({"time": now, "charts": charts, "skipped_old": skipped},
                                 dumps=lambda d: json.dumps(d, ensure_ascii=False))

    async def _ack(self, request: web.Request) -> web.Response:
        """POST /alarms/ack {alarm, node, channel, since, by}: record who acknowledged an active alarm (acks.py)."""
        try:
            same_origin(request)
            try:
                body = await request.json()
            except ValueError as error:
                raise AckError(400, f"the body is not JSON: {error}") from None
            wanted = parse_ack(body)
            alarms = self.gateway.pipeline.alarms
            active = {(a.alarm, a.node, a.channel, a.since) for a in (alarms.active() if alarms is not None else [])}
            if (wanted.alarm, wanted.node, wanted.channel, wanted.since) not in active:
                raise AckError(409, f"no active alarm {wanted.alarm} on {wanted.node}/{wanted.channel} raised at "
                                    f"{wanted.since}: it cleared, or the page is out of date")
        except AckError as error:
            log.warning("alarm acknowledgement refused (%d): %s", error.status, error.message)
            return web.json_response({"ok": False, "error": error.message}, status=error.status)
        ack, new = await asyncio.to_thread(self.acks.record, wanted, self.gateway.clock.wall())
        if new:
            log.warning("alarm %s on %s/%s acknowledged by %s (it stays active until it clears)", ack.alarm, ack.node,
                        ack.channel, ack.by)
        return web.json_response({"ok": True, "new": new, "acknowledged": ack.as_json()},
                                 dumps=lambda d: json.dumps(d, ensure_ascii=False))

    async def _spray(self, request: web.Request) -> web.Response:
        """POST /spray {node, mode} with the page token: the MQTT spray command's path (commands.execute)."""
        who = f"status page ({request.remote})"
        now = self.gateway.clock.wall()
        command_id = f"page-{uuid.uuid4().hex[:16]}"
        try:
            same_origin(request)
            authorise(self.spray_token, request.headers.get("Authorization"))
            try:
                body = await request.json()
            except ValueError as error:
                raise AckError(400, f"the body is not JSON: {error}") from None
            if not isinstance(body, dict):
                raise AckError(400, f"expected a JSON object {{node, mode}}, got {type(body).__name__}")
            args = check_args("spray", body, command_id)
        except (AckError, PageAuthError) as error:
            log.warning("spray from the %s refused (%d): %s", who, error.status, error.message)
            return web.json_response({"ok": False, "error": error.message}, status=error.status)
        except Rejected as error:
            log.warning("spray from the %s refused: %s", who, error)
            return web.json_response({"ok": False, "error": error.message}, status=400)
        reply = await execute(Command(command_id, "spray", now, args), self.gateway, now)
        log.warning("spray %s %s from the %s (%s): %s", args["node"], args["mode"], who, command_id,
                    reply.message if reply.ok else f"{reply.error}: {reply.message}")
        status = 200 if reply.ok else 400 if reply.error == "invalid" else 500
        return web.Response(text=reply.to_json(), status=status, content_type="application/json")

    async def _page(self, request: web.Request) -> web.Response:
        from gateway.ops.status_page import page  # the page's HTML, only when asked for

        return web.Response(text=page(), content_type="text/html", charset="utf-8")

    async def start(self, bind: str, port: int, quiet: bool = False) -> bool:
        """Listen; False (one error logged, unless quiet) when the address cannot be bound."""
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, bind, port)
        try:
            await site.start()
        except OSError as error:
            if not quiet:
                log.error("status endpoint: cannot listen on %s:%d: %s; running without it, trying again every "
                          "%g s (set [status] port to a free port, or 0 for none)", bind, port,
                          error.strerror or error, LISTEN_RETRY_S)
            await runner.cleanup()
            return False
        self._runner = runner
        self.url = f"http://{bind}:{port}"
        log.info("status endpoint on %s (/status, /metrics, /)", self.url)
        return True

    async def listen_when_free(self, bind: str, port: int, stop: asyncio.Event,
                               every_s: float = LISTEN_RETRY_S) -> None:
        """After a failed start: try again every `every_s` until listening or stopped (no line per failure)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every_s):
                    await stop.wait()
            if stop.is_set() or await self.start(bind, port, quiet=True):
                return

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.acks.close()


def _page_token(name: str) -> bytes | None:
    """The page token from its credential file; None (one error line) when unset or unusable: no spray from the page."""
    if not name:
        return None
    try:
        return check_token(read_credential(name, "[status] spray_token_file"), "[status] spray_token_file")
    except (CredentialError, ValueError) as error:
        log.error("%s; the status page cannot switch sprays", error)
        return None


def same_origin(request: web.Request) -> None:
    """Refuse a POST another site's page makes a browser send (CSRF): JSON only, and from this page's origin.

    A cross-site form cannot send application/json without a CORS preflight, which this server never answers
    with permission; browsers also say where a request comes from (Origin, Sec-Fetch-Site).
    """
    if request.content_type != "application/json":
        raise AckError(415, f"expected Content-Type application/json, got {request.content_type or 'none'}")
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise AckError(403, f"refused a request from another origin ({origin})")
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        raise AckError(403, f"refused a {request.headers['Sec-Fetch-Site']} request")
