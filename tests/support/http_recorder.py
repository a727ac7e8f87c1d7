"""A local HTTP server for tests: records every request and answers from a script (status, body) per request."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpRecorder:
    """Answers are taken from `script` in order, then `default`; each a (status, body) pair."""

    def __init__(self, script: list[tuple[int, bytes]] | None = None,
                 default: tuple[int, bytes] = (200, b'{"errcode": 0, "errmsg": "ok"}')) -> None:
        self.script = list(script or [])
        self.default = default
        self.requests: list[Recorded] = []
        self.answers: list[int] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                split = urlsplit(self.path)
                status, answer = recorder.script.pop(0) if recorder.script else recorder.default
                recorder.requests.append(Recorded("POST", split.path, parse_qs(split.query),
                                                  {k.lower(): v for k, v in self.headers.items()}, body))
                recorder.answers.append(status)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)
