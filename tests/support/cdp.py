"""Headless Chromium driven over the DevTools protocol: real mouse clicks and typing on a page, for tests.

Chromium (Debian's) is started on a free debugging port with its own profile folder; the page's target is
driven through aiohttp's WebSocket client. ``click`` dispatches mouse events at the element's centre (what a
person's click does: hit testing, focus, the page's handlers), ``type`` inserts text as a keyboard would.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--remote-debugging-port=0"]


class Page:
    def __init__(self, url: str, profile: Path, width: int = 1280, height: int = 800) -> None:
        self.url = url
        self.profile = profile
        self.size = (width, height)
        self._ids = itertools.count(1)
        self._proc: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def __aenter__(self) -> Page:
        binary = shutil.which("chromium")
        assert binary is not None, "chromium is missing: tools/install-system-deps.sh installs it"
        self._proc = await asyncio.create_subprocess_exec(
            binary, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={self.size[0]},{self.size[1]}",
            self.url, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert self._proc.stderr is not None
        endpoint = ""
        deadline = time.monotonic() + 60.0
        while not endpoint:
            line = (await asyncio.wait_for(self._proc.stderr.readline(), max(0.1, deadline - time.monotonic())))
            assert line, "chromium exited before it listened for DevTools"
            text = line.decode(errors="replace")
            if "DevTools listening on " in text:
                endpoint = text.split("DevTools listening on ", 1)[1].strip()
        http = endpoint.replace("ws://", "http://").split("/devtools/")[0]
        self._session = aiohttp.ClientSession()
        page = ""
        while not page:
            async with self._session.get(http + "/json/list") as answer:
                targets = await answer.json()
            page = next((t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page"), "")
            if not page:
                assert time.monotonic() < deadline, f"no page target: {targets}"
                await asyncio.sleep(0.1)
        self._ws = await self._session.ws_connect(page, max_msg_size=0)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 30.0)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        assert self._ws is not None
        ident = next(self._ids)
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads((await asyncio.wait_for(self._ws.receive(), 60.0)).data)
            if message.get("id") == ident:
                assert "error" not in message, f"{method}: {message['error']}"
                result: dict[str, Any] = message.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            await asyncio.sleep(0.1)

    async def click(self, selector: str) -> None:
        box = await self.wait_for(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left",
                            clickCount=1)

    async def type(self, selector: str, text: str) -> None:
        await self.click(selector)
        await self.send("Input.insertText", text=text)
