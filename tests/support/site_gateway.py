"""A Gateway against a simulated site, in this process: the set-up several tests share.

* ``gateway_config``: a configuration with a store under the test's folder, no clock sync, and one
  bus of the given nodes, plus the test's own sections;
* ``running``: the gateway's run loop as a context (stopped as SIGTERM would, whatever happens);
* ``run_until``: run it until a condition holds (what the test judges), however busy the host;
* ``stored``: the readings of one channel of a node in the store, as a test reads them afterwards;
* ``ScriptedOwner``: a bus owner that answers each request with the next outcome of a script.
"""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from gateway.acquire.link import Exchange, Outcome
from gateway.acquire.poller import BusConfig
from gateway.deliver.sqlite_store import SqliteStore
from gateway.model import Reading
from gateway.ops.config import GatewayConfig, parse_config
from gateway.ops.service import Gateway
from gateway.protocols import modbus_rtu_master as rtu
from tests.support.waiting import wait_until_async

# (name, kind, unit id, poll interval in seconds, extra lines of its [[bus.node]] table)
NodeEntry = tuple[str, str, int, float, str]


def gateway_config(tmp_path: Path, port: Path, nodes: Sequence[NodeEntry], extra: str = "") -> GatewayConfig:
    """The store in tmp_path, no clock sync; `extra` goes before the bus (sections of the test's own)."""
    tables = "".join(
        f'[[bus.node]]\nname = "{name}"\nkind = "{kind}"\nunit_id = {unit}\ninterval = {interval}\n{more}\n'
        for name, kind, unit, interval, more in nodes
    )
    text = (
        f'[store]\npath = "{tmp_path / "store.sqlite3"}"\n[clock]\nrequire_sync = "never"\n{extra}\n'
        f'[[bus]]\nname = "bus0"\nport = "{port}"\n{tables}'
    )
    return parse_config(tomllib.loads(text), "test.toml")


@asynccontextmanager
async def running(gateway: Gateway, stop_timeout: float = 30.0) -> AsyncIterator[Gateway]:
    """Run the gateway for the body of the `async with`, then stop it and wait for it to finish."""
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    try:
        yield gateway
    finally:
        stop.set()
        await asyncio.wait_for(task, stop_timeout)


async def run_until(gateway: Gateway, condition: Callable[[], bool], timeout: float = 60.0,
                    at_least: float = 0.0) -> None:
    """Run the gateway until `condition` holds (and `at_least` seconds have passed), then stop it."""
    started = time.monotonic()
    async with running(gateway):
        await wait_until_async(lambda: condition() and time.monotonic() - started >= at_least, timeout=timeout)


def stored(store_path: Path, node: str, channel: str) -> list[Reading]:
    """The node's readings of `channel` with a sample behind them (sequence > 0), in the store's order."""
    store = SqliteStore(store_path)
    try:
        return [r for r in store.readings(node=node, channel=channel) if r.sequence > 0]
    finally:
        store.close()


class ScriptedOwner:
    """Stands in for a bus owner: answers each request with the next outcome of a script."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.bus = BusConfig("bus0", "/dev/null", ())
        self.outcomes = list(outcomes)
        self.requests: list[rtu.Request] = []

    async def execute(self, request: rtu.Request, timeout: float | None = None) -> Exchange:
        self.requests.append(request)
        return Exchange(self.outcomes.pop(0), 0.0, 0.0, 0.0)
