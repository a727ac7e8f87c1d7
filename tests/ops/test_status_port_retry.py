"""A status port that cannot be bound at start is tried again: the page comes back once the port is free.

Audit: the port held by another program at start (or a bind address the network has not brought up yet)
left the gateway without its page and /metrics until someone restarted it: the site office saw nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import tomllib
import urllib.request
from pathlib import Path

import pytest

from gateway.ops.config import parse_config
from gateway.ops.service import Gateway
from gateway.ops.status_server import StatusServer
from tests.ops.service_process import gateway_toml


def _get_status(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=30) as answer:
        state: dict[str, object] = json.loads(answer.read())
    return state


async def test_the_endpoint_listens_once_the_port_is_free(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.ops.status_server")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    config = parse_config(tomllib.loads(gateway_toml(tmp_path, str(tmp_path / "no-bus"), status_port=port)), "t.toml")
    gateway = Gateway(config)
    server = StatusServer(gateway)
    stop = asyncio.Event()
    try:
        assert not await server.start("127.0.0.1", port)
        retrying = asyncio.create_task(server.listen_when_free("127.0.0.1", port, stop, every_s=0.05))
        for _ in range(5):  # some retries while the port is still taken: no more error lines
            await asyncio.sleep(0.05)
        assert not retrying.done()
        holder.close()
        await asyncio.wait_for(retrying, 60)
        assert server.url == f"http://127.0.0.1:{port}"
        state = await asyncio.to_thread(_get_status, port)
        assert state["site"] == "site"
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "trying again every" in errors[0], errors
        assert any(f"status endpoint on http://127.0.0.1:{port}" in r.getMessage() for r in caplog.records)
    finally:
        stop.set()
        holder.close()
        await server.stop()
        gateway.queue.close()
        for sink in gateway.sinks:
            sink.close()


async def test_a_stop_ends_the_retries(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    config = parse_config(tomllib.loads(gateway_toml(tmp_path, str(tmp_path / "no-bus"), status_port=port)), "t.toml")
    gateway = Gateway(config)
    server = StatusServer(gateway)
    stop = asyncio.Event()
    try:
        retrying = asyncio.create_task(server.listen_when_free("127.0.0.1", port, stop, every_s=3600.0))
        stop.set()
        await asyncio.wait_for(retrying, 10)  # at once, not after an hour
        assert server.url == ""
    finally:
        holder.close()
        await server.stop()
        gateway.queue.close()
        for sink in gateway.sinks:
            sink.close()
