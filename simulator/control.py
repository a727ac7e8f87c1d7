"""Run-time control of a simulated site: a small HTTP API to inject and clear faults.

Served with the standard library's http.server on 127.0.0.1 only (it changes
a running simulation; nothing here is meant for a network). JSON in and out.

    GET    /faults            every fault of the run, with "active" now, and the simulated time
    POST   /faults            add a fault, starting now:
                              {"bus": "boundary", "unit_id": 2, "kind": "late_reply",
                               "duration": "5m", "delay_ms": 300}
                              duration: simulated seconds or a text like "90s", "5m";
                              default until cleared (a reboot: its 2 s boot time);
                              the other keys are the kind's parameters (simulator/faults.py)
    DELETE /faults            end every fault now (and drop those not started yet);
                              ?bus=NAME&unit_id=N&kind=KIND narrow it down
    GET    /site              scenario, simulated time, buses with their paths, nodes
    POST   /buses/NAME/replug pull the bus's USB adapter and put it back ({"away": seconds}):
                              the pty closes, the stable path then leads to a new one

Errors are {"error": "..."} with status 400 (a bad request) or 404 (no such thing).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simulator.bus import PtyBus
from simulator.faults import BUS_ONLY, DEFAULT_BOOT_TIME, NODE_ONLY, PARAMETERS, Fault, FaultKind
from simulator.scenario import measurement_names, parse_duration
from simulator.site import Site

HOST = "127.0.0.1"
MAX_BODY = 64 * 1024


class RequestError(ValueError):
    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = status


def fault_to_json(fault: Fault, now: float) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": str(fault.kind),
        "bus": fault.bus,
        "unit_id": fault.unit_id,
        "start": fault.start,
        "end": fault.end if math.isfinite(fault.end) else None,
        "label": fault.label,
        "active": fault.active_at(now),
    }
    for name in sorted(PARAMETERS[fault.kind]):
        data[name] = getattr(fault, name)
    return data


def fault_from_json(data: Any, site: Site, now: float) -> Fault:
    """A fault starting now from a POST body; RequestError says which key is wrong."""
    if not isinstance(data, Mapping):
        raise RequestError("the body must be a JSON object")
    allowed = {"bus", "unit_id", "kind", "duration", *set().union(*PARAMETERS.values())}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise RequestError(f"unknown keys {unknown} (allowed: {', '.join(sorted(allowed))})")
    kind_text = data.get("kind")
    try:
        kind = FaultKind(kind_text if isinstance(kind_text, str) else "")
    except ValueError:
        raise RequestError(f"kind: {kind_text!r} is not one of {', '.join(k.value for k in FaultKind)}") from None
    bus = data.get("bus")
    bus_spec = next((b for b in site.buses if b.name == bus), None)
    if bus_spec is None:
        raise RequestError(f"bus: {bus!r} is not one of {', '.join(b.name for b in site.buses)}")
    unit_id = data.get("unit_id")
    node_kind = ""
    if unit_id is not None:
        if kind in BUS_ONLY:
            raise RequestError(f"unit_id: {kind} affects the whole bus; give no unit id")
        if isinstance(unit_id, bool) or not isinstance(unit_id, int):
            raise RequestError(f"unit_id: expected an integer, got {unit_id!r}")
        node = next((n for n in bus_spec.nodes if n.unit_id == unit_id), None)
        if node is None:
            raise RequestError(f"unit_id: no node {unit_id} on bus {bus!r}")
        node_kind = node.kind
    elif kind in NODE_ONLY:
        raise RequestError(f"unit_id: missing; {kind} affects one node")
    extra: dict[str, Any] = {}
    for name in ("delay_ms", "probability", "magnitude", "length", "channel"):
        if name not in data:
            continue
        if name not in PARAMETERS[kind]:
            raise RequestError(f"{name}: {kind} takes no {name}")
        value = data[name]
        if name == "channel":
            if not isinstance(value, str) or value not in measurement_names(node_kind):
                raise RequestError(f"channel: {value!r} is not a {node_kind} measurement")
        elif name == "length":
            if isinstance(value, bool) or not isinstance(value, int):
                raise RequestError(f"length: expected an integer, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise RequestError(f"{name}: expected a number, got {value!r}")
        extra[name] = value
    duration = _duration(data.get("duration"), kind)
    try:
        return Fault(kind, str(bus), now, now + duration, unit_id, **extra)
    except ValueError as error:
        raise RequestError(str(error)) from None


def _duration(value: Any, kind: FaultKind) -> float:
    if value is None:
        return DEFAULT_BOOT_TIME if kind == FaultKind.REBOOT else math.inf
    if isinstance(value, str):
        seconds = parse_duration(value)
        if seconds is None:
            raise RequestError(f"duration: {value!r} is not a duration like 90, '90s', '5m', '1h'")
        return seconds
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise RequestError(f"duration: {value!r} is not a number of seconds >= 0")
    return float(value)


class ControlServer:
    """The HTTP API of one running site, on 127.0.0.1:port (0: any free port)."""

    def __init__(self, site: Site, port: int = 0, host: str = HOST) -> None:
        self.site = site
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"site": self.site})
        server = ThreadingHTTPServer((self.host, self.port), handler)
        server.daemon_threads = True
        self.port = int(server.server_address[1])
        self._server = server
        # A short poll interval: shutdown() waits for the loop to notice.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sim-control", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ControlServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    site: Site
    server_version = "sitewatch-simulator"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the simulator's console is for its own lines."""

    # -- dispatch --------------------------------------------------------------------
    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        try:
            if parts == ["faults"]:
                if method == "GET":
                    self._reply(HTTPStatus.OK, self._faults())
                elif method == "POST":
                    self._reply(HTTPStatus.CREATED, self._add(self._body()))
                else:
                    self._reply(HTTPStatus.OK, self._clear(parse_qs(url.query)))
            elif parts == ["site"] and method == "GET":
                self._reply(HTTPStatus.OK, self._describe())
            elif len(parts) == 3 and parts[0] == "buses" and parts[2] == "replug" and method == "POST":
                self._reply(HTTPStatus.OK, self._replug(parts[1], self._body(optional=True)))
            else:
                raise RequestError(f"no {method} {url.path} (see GET /site, /faults)", HTTPStatus.NOT_FOUND)
        except RequestError as error:
            self._reply(error.status, {"error": str(error)})

    def _body(self, optional: bool = False) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise RequestError(f"the body is longer than {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b""
        if not raw:
            if optional:
                return {}
            raise RequestError("the body must be a JSON object")
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RequestError(f"the body is not JSON: {error}") from None

    def _reply(self, status: HTTPStatus, data: Any) -> None:
        body = (json.dumps(data, indent=1) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    # -- the resources ---------------------------------------------------------------
    def _faults(self) -> dict[str, Any]:
        now = self.site.scenario_time()
        return {"time": now, "faults": [fault_to_json(f, now) for f in self.site.faults.all()]}

    def _add(self, body: Any) -> dict[str, Any]:
        now = self.site.scenario_time()
        fault = self.site.faults.add(fault_from_json(body, self.site, now))
        return {"time": now, "fault": fault_to_json(fault, now)}

    def _clear(self, query: dict[str, list[str]]) -> dict[str, Any]:
        unknown = sorted(set(query) - {"bus", "unit_id", "kind"})
        if unknown:
            raise RequestError(f"unknown parameters {unknown} (allowed: bus, unit_id, kind)")
        bus = query["bus"][0] if "bus" in query else None
        unit_id: int | None = None
        if "unit_id" in query:
            try:
                unit_id = int(query["unit_id"][0])
            except ValueError:
                raise RequestError(f"unit_id: {query['unit_id'][0]!r} is not an integer") from None
        kind: FaultKind | None = None
        if "kind" in query:
            try:
                kind = FaultKind(query["kind"][0])
            except ValueError:
                raise RequestError(f"kind: {query['kind'][0]!r} is not a fault kind") from None
        now = self.site.scenario_time()
        cleared = self.site.faults.clear(now, bus=bus, unit_id=unit_id, kind=kind)
        return {"time": now, "cleared": [fault_to_json(f, now) for f in cleared]}

    def _describe(self) -> dict[str, Any]:
        site = self.site
        now = site.scenario_time()
        return {
            "scenario": site.scenario.name,
            "seed": site.seed,
            "speed": site.speed,
            "time": now,
            "local_time": site.scenario.local_time(now).isoformat(),
            "duration": site.scenario.duration if math.isfinite(site.scenario.duration) else None,
            "buses": [
                {
                    "name": bus.name,
                    "path": site.paths.get(bus.name),
                    "transport": bus.transport,
                    "baud": bus.baud if bus.transport == "rtu" else None,
                    "nodes": [{"kind": n.kind, "unit_id": n.unit_id} for n in bus.nodes],
                }
                for bus in site.buses
            ],
        }

    def _replug(self, name: str, body: Any) -> dict[str, Any]:
        try:
            bus = self.site.bus(name)
        except KeyError:
            raise RequestError(f"no bus {name!r}", HTTPStatus.NOT_FOUND) from None
        if not isinstance(bus, PtyBus):
            raise RequestError(f"bus {name!r} is not a serial bus: it has no adapter to pull")
        away = body.get("away", 0.0) if isinstance(body, Mapping) else None
        if isinstance(away, bool) or not isinstance(away, int | float) or not 0 <= away <= 60:
            raise RequestError(f"away: {away!r} is not a number of seconds in 0 .. 60")
        path = bus.replug(float(away))
        return {"bus": name, "path": path, "pty": bus.path}
