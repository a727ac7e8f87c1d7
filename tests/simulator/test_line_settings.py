"""The simulated bus honours the line settings the master chose on the pty (issue 11).

A node configured at 9600 8E1 answers only a master at 9600 8E1; at any other baud rate or
parity the master gets garbage where the node would have answered, and silence elsewhere.
The master here opens the port exactly as the gateway does (gateway/acquire/link.py).
"""

from __future__ import annotations

import os
import time
import tty
from pathlib import Path

import pytest

from gateway.acquire.link import RtuLink, open_serial
from gateway.protocols import modbus_rtu_master as rtu
from gateway.scan.plan import SerialSettings
from gateway.scan.run import SerialLine
from simulator.bus import PtyBus
from simulator.faults import Fault
from simulator.site import BusSpec, NodeSpec, Site
from simulator.uart import LineSettings
from tests.support.waiting import wait_until

LATENCY = 0.150  # s: a loaded host's slack; the site runs in burst mode


@pytest.mark.parametrize(
    ("parity", "expected"), [("N", LineSettings(19200, "N")), ("E", LineSettings(19200, "E")),
                             ("O", LineSettings(19200, "O"))]
)
def test_the_bus_reads_the_masters_baud_and_parity_from_the_pty(parity: str, expected: LineSettings) -> None:
    bus = PtyBus("b", [], baud=9600)
    path = bus.start()
    try:
        with SerialLine(path) as line:
            assert bus.master_line(LineSettings(1)) == LineSettings(9600)  # the bus's own until a master sets one
            line.use(SerialSettings(19200, parity))
            assert bus.master_line(LineSettings(1)) == expected
    finally:
        bus.stop()


def test_a_master_that_sets_nothing_talks_at_the_buses_settings(tmp_path: Path) -> None:
    with Site([BusSpec("bus0", (NodeSpec("dust", 1),), baud=19200, parity="O")], tmp_path) as site:
        fd = os.open(site.paths["bus0"], os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd)  # raw, speed and parity check left as they are
            bus = site.bus("bus0")
            assert isinstance(bus, PtyBus)
            assert bus.master_line(LineSettings(1)) == LineSettings(19200, "O")
        finally:
            os.close(fd)


def test_a_node_at_9600_8e1_answers_only_a_master_at_9600_8e1(tmp_path: Path) -> None:
    spec = BusSpec("bus0", (NodeSpec("dust", 4, baud=9600, parity="E"),), baud=9600)
    with Site([spec], tmp_path, burst=True) as site, SerialLine(site.paths["bus0"], LATENCY) as line:
        bus = site.bus("bus0")
        line.use(SerialSettings(9600, "E"))
        assert line.probe(4).answered
        assert line.probe(5).kind == "silence"
        for wrong in (SerialSettings(9600, "N"), SerialSettings(9600, "O"), SerialSettings(19200, "E"),
                      SerialSettings(4800, "E")):
            line.use(wrong)
            heard = line.probe(4)
            assert heard.kind in ("garbage", "silence") and not heard.answered, wrong
            assert line.probe(5).kind == "silence", wrong  # not meant for it: nothing, as on a real line
        # The bus reads the master's settings when its thread takes the frame in: one kept off the CPU past the
        # probe's timeout would take the last wrong probe in at the settings switched back to below.
        wait_until(lambda: bus.stats.frames_in >= 10)
        # Back at the right settings, it answers again; it counted the garbage it heard as CRC errors.
        line.use(SerialSettings(9600, "E"))
        assert line.probe(4).answered
        assert bus.stats.mismatched >= 8
        node = site.node("bus0", 4).node
        assert int(node.bank.get_input("crc_errors")) >= 1
        assert node.bank.get_holding_raw("parity") == 1  # its registers say 8E1, as flashed


def test_garbage_at_the_wrong_baud_rate_is_what_a_uart_makes_of_the_reply(tmp_path: Path) -> None:
    spec = BusSpec("bus0", (NodeSpec("noise", 2),), baud=9600)
    with Site([spec], tmp_path, burst=True) as site, SerialLine(site.paths["bus0"], LATENCY) as line:
        line.use(SerialSettings(19200))
        heard = line.probe(2)
    # Twice as fast: the 7 characters the node sent look like more than 7 to the master.
    assert heard.kind == "garbage"
    assert heard.size > 7


def test_the_gateway_reopens_a_pty_at_even_parity(tmp_path: Path) -> None:
    # Linux refuses a termios request whose only change is PARENB on a pty (EINVAL): the second open at
    # 8E1 failed, and the error (no OSError) escaped RtuLink.open and leaked the fd and its lock.
    bus = PtyBus("b", [], baud=9600)
    path = bus.start()
    try:
        for _ in range(3):
            fd = open_serial(path, 9600, "E", 1)
            os.close(fd)
        assert bus.master_line(LineSettings(1)) == LineSettings(9600, "E")
    finally:
        bus.stop()


async def test_the_gateways_link_reads_a_node_only_at_its_baud_and_parity(tmp_path: Path) -> None:
    # The rehearsal issue 11 asks for: a gateway at the wrong parity gets no readings (garbage, counted as
    # frame errors or timeouts), at the right one it reads.
    spec = BusSpec("bus0", (NodeSpec("tilt", 3, baud=19200, parity="E"),), baud=19200)
    request = rtu.read_registers(3, rtu.READ_INPUT_REGISTERS, 0, 2)
    with Site([spec], tmp_path, burst=True) as site:
        outcomes = {}
        for parity in ("N", "O", "E"):
            link = RtuLink(site.paths["bus0"], baud=19200, parity=parity)
            await link.open()
            try:
                # Up to five tries: a busy host may hold the simulated node's reply past the timeout once, a
                # timeout at any parity; the wrong parities must never read, the right one must.
                for _ in range(5):
                    outcomes[parity] = (await link.transact(request, timeout=LATENCY)).outcome
                    if isinstance(outcomes[parity], rtu.Registers):
                        break
            finally:
                link.close()
    assert isinstance(outcomes["E"], rtu.Registers) and outcomes["E"].values[1] == 3  # node_kind: tilt
    for parity in ("N", "O"):
        assert not isinstance(outcomes[parity], rtu.Registers), (parity, outcomes[parity])


def test_parity_written_over_modbus_applies_after_the_nodes_restart(tmp_path: Path) -> None:
    # What hardware/register-map.md tells the installer: write parity = 1 (even), restart, talk 8E1.
    with Site([BusSpec("bus0", (NodeSpec("dust", 1),), baud=9600)], tmp_path, burst=True) as site, \
            SerialLine(site.paths["bus0"], LATENCY) as line:
        line.use(SerialSettings(9600, "N"))
        write = rtu.write_register(1, 2, 1)  # holding register 2: parity
        assert rtu.parse_reply(write, line.exchange(write)) == rtu.WriteAck(2, 1)
        assert line.probe(1).answered  # still 8N1 until it restarts
        site.faults.add(Fault.reboot("bus0", 1, at=site.scenario_time(), boot_time=0.1))
        bus = site.bus("bus0")
        deadline = time.monotonic() + 10
        while bus.stats.reboots < 1:
            assert time.monotonic() < deadline, "the node never rebooted"
            time.sleep(0.01)
        assert not line.probe(1).answered
        line.use(SerialSettings(9600, "E"))
        assert line.probe(1).answered
