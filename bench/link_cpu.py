"""CPU of the event loop's thread per RtuLink transaction, against the simulator: the link alone.

`sitewatch simulate` (its own process) runs one 19200-baud paced pty bus with 8 nodes (the layout of
`bench/cpu_per_poll.py --config 8`); this process opens the bus with `RtuLink` and reads each node's
input registers in turn, back to back (each transaction still waits t3.5 and the node's turnaround),
and prints the loop thread's CPU time per transaction (user and system, getrusage of the thread), its
voluntary context switches per transaction (the kernel's wake-ups, whether or not they reached the
event loop) and the wall time per transaction. No pipeline, queue or store: what a change to the link
saves shows here without the rest of the gateway's noise. Measure trees against each other by running
them alternately: `PYTHONPATH=TREE python TREE/bench/link_cpu.py`.

    python bench/link_cpu.py [--transactions 300]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cpu_per_poll import KINDS, scenario_text, start_site, stop_process
from firmware import regmap
from gateway.acquire.decode import KIND_BY_NAME
from gateway.acquire.link import RtuLink
from gateway.protocols import modbus_rtu_master as rtu

NODES = 8
TIMEOUT_S = 0.2  # per transaction: far above a reply's 20-30 ms at 19200 baud


async def measure(port: str, transactions: int) -> str:
    link = RtuLink(port, baud=19200)
    await link.open()
    try:
        requests = [
            rtu.read_registers(unit, rtu.READ_INPUT_REGISTERS, 0,
                               regmap.input_count(KIND_BY_NAME[KINDS[(unit - 1) % len(KINDS)]]))
            for unit in range(1, NODES + 1)
        ]
        for request in requests * 2:  # warm-up: the nodes' first samples, the link's adaptive state
            await link.transact(request, TIMEOUT_S)
        before = resource.getrusage(resource.RUSAGE_THREAD)
        started = time.monotonic()
        failed = 0
        for i in range(transactions):
            exchange = await link.transact(requests[i % NODES], TIMEOUT_S)
            failed += not isinstance(exchange.outcome, rtu.Registers)
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_THREAD)
    finally:
        link.close()
    user = (after.ru_utime - before.ru_utime) / transactions
    system = (after.ru_stime - before.ru_stime) / transactions
    switches = (after.ru_nvcsw - before.ru_nvcsw) / transactions
    return (f"{1e6 * (user + system):.1f} us CPU per transaction (user {1e6 * user:.1f}, system {1e6 * system:.1f}), "
            f"{switches:.2f} voluntary switches, {1e3 * wall / transactions:.2f} ms wall; "
            f"{failed} of {transactions} without registers")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=300)
    args = parser.parse_args()
    sitewatch = Path(sys.executable).with_name("sitewatch")
    with tempfile.TemporaryDirectory(prefix="sitewatch-link-cpu-") as tmp:
        folder = Path(tmp)
        scenario = folder / "scenario.toml"
        scenario.write_text(scenario_text((NODES,)))
        site, where = start_site(sitewatch, scenario, (NODES,), folder / "buses", 600)
        try:
            print(asyncio.run(measure(where["bus0"], args.transactions)))
        finally:
            stop_process(site, signal.SIGINT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
