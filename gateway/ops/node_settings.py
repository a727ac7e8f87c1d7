"""Node settings the configuration states, checked on each node and written where the node differs.

One today: a dust node's holding register ``rh_correction`` follows ``[[bus.node]] rh_correction``, so
the humidity correction runs where the configuration says, and (with the refusal in config.py of a node
and a gateway that both correct) in one place only. The sample interval is not set here: the
aggregators measure each node's own (docs/data-quality.md).

Requests go through the bus owner (``BusPoller.execute``), between polls. A node that does not answer
is tried again later (``NodeSettings.run``); every difference found is logged and kept for the
status page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from firmware import regmap
from gateway.acquire.decode import KIND_BY_NAME
from gateway.acquire.link import Exchange, NoReply
from gateway.acquire.poller import NodeConfig
from gateway.protocols import modbus_rtu_master as rtu

log = logging.getLogger(__name__)

RETRY_S = 30.0  # a node that did not answer is asked again after this long (project choice)

Execute = Callable[[rtu.Request], Awaitable[Exchange]]


@dataclass(frozen=True)
class SettingCheck:
    node: str
    register: str
    wanted: int
    found: int | None  # None: could not be read
    written: bool  # the node held another value and now holds `wanted`
    problem: str = ""  # why it is not confirmed ("" when it is)

    @property
    def confirmed(self) -> bool:
        return not self.problem


def wanted_registers(node: NodeConfig) -> dict[str, int]:
    """Holding register -> raw value that the configuration implies for a node."""
    if node.profile is not None:  # a vendor device: its registers are its vendor's, sitewatch sets none
        return {}
    if node.kind == "dust":
        return {"rh_correction": 1 if node.rh_correction else 0}
    return {}


def _problem(exchange: Exchange) -> str:
    outcome = exchange.outcome
    if isinstance(outcome, rtu.ExceptionReply):
        return f"exception {outcome.code} ({outcome.name})"
    if isinstance(outcome, NoReply):
        return f"{outcome.reason}: {outcome.detail}"
    return f"{type(outcome).__name__}: {outcome}"


async def check_node(execute: Execute, node: NodeConfig) -> list[SettingCheck]:
    """Read each setting of one node; write it where it differs and read the acknowledgement."""
    rows = regmap.holding_registers(KIND_BY_NAME[node.kind])
    out: list[SettingCheck] = []
    for name, wanted in wanted_registers(node).items():
        address = regmap.find(rows, name)[1]
        read = await execute(rtu.read_registers(node.unit_id, rtu.READ_HOLDING_REGISTERS, address, 1))
        if not isinstance(read.outcome, rtu.Registers) or len(read.outcome.values) != 1:
            out.append(SettingCheck(node.name, name, wanted, None, False, f"read: {_problem(read)}"))
            continue
        found = read.outcome.values[0]
        if found == wanted:
            out.append(SettingCheck(node.name, name, wanted, found, False))
            continue
        write = await execute(rtu.write_register(node.unit_id, address, wanted))
        acknowledged = isinstance(write.outcome, rtu.WriteAck) and write.outcome.value == wanted
        problem = "" if acknowledged else f"write: {_problem(write)}"
        out.append(SettingCheck(node.name, name, wanted, found, acknowledged, problem))
        if acknowledged:
            log.warning("node %s: holding register %s was %d; set to %d as the configuration says",
                        node.name, name, found, wanted)
    return out


class NodeSettings:
    """Brings every configured node's settings in line, retrying the nodes that did not answer."""

    def __init__(self, nodes: Sequence[tuple[Execute, NodeConfig]], retry_s: float = RETRY_S) -> None:
        self._nodes = list(nodes)
        self._retry_s = retry_s
        self.checks: dict[str, list[SettingCheck]] = {}
        self._said: dict[tuple[str, str], str] = {}  # (node, register) -> the problem last logged ("" none)

    @property
    def pending(self) -> list[str]:
        """Nodes with a setting not yet confirmed."""
        out = []
        for _, node in self._nodes:
            checks = self.checks.get(node.name)
            if wanted_registers(node) and (checks is None or not all(c.confirmed for c in checks)):
                out.append(node.name)
        return out

    async def run(self, stop: asyncio.Event) -> None:
        """Until every node is confirmed or stop is set (a bus owner that stopped answers nobody: do not wait)."""
        while not stop.is_set():
            waiting = set(self.pending)
            for execute, node in self._nodes:
                if node.name not in waiting:
                    continue
                checks = await _unless_stopped(check_node(execute, node), stop)
                if checks is None:
                    return
                self.checks[node.name] = checks
                for check in checks:
                    # Said when the problem is new or changes, and when it is over: an offline node is
                    # retried every retry_s for as long as it stays offline, which the poller reports already.
                    key = (node.name, check.register)
                    if check.problem and self._said.get(key) != check.problem:
                        log.warning("node %s: cannot confirm %s = %d: %s (retrying every %g s; said again only "
                                    "when the reason changes)", node.name, check.register, check.wanted,
                                    check.problem, self._retry_s)
                    elif not check.problem and self._said.get(key):
                        log.info("node %s: %s = %d confirmed", node.name, check.register, check.wanted)
                    self._said[key] = check.problem
            if not self.pending:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._retry_s)


async def _unless_stopped(work: Awaitable[list[SettingCheck]], stop: asyncio.Event) -> list[SettingCheck] | None:
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None
