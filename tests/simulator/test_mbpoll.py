"""An independent Modbus master (mbpoll) against simulated firmware nodes on a pty."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware import regmap
from simulator.site import BusSpec, NodeSpec, Site
from tests.support.mbpoll import mbpoll, read


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with Site((BusSpec("bus0", (NodeSpec("dust", 1), NodeSpec("wind", 2))),), tmp_path, seed=3) as s:
        yield s


def port(site: Site) -> str:
    return str(site.link_dir / "bus0")


def physical(words: dict[int, int], row: tuple[object, ...]) -> float:
    address, fmt, scale = int(str(row[1])), int(str(row[2])), int(str(row[3]))
    raw = words[address] if regmap.FORMAT_WORDS[fmt] == 1 else (words[address] << 16) | words[address + 1]
    return regmap.decode_raw(raw, fmt) / scale


@pytest.mark.parametrize(("unit", "kind"), [(1, regmap.KIND_DUST), (2, regmap.KIND_WIND)])
def test_mbpoll_reads_what_the_simulated_sensor_produced(site: Site, unit: int, kind: int) -> None:
    count = regmap.input_count(kind)
    words = read(port(site), unit, "input", 0, count)
    sequence = physical(words, regmap.find(regmap.DIAGNOSTICS, "sample_seq"))
    assert words[regmap.find(regmap.DIAGNOSTICS, "node_kind")[1]] == kind
    assert sequence >= 1
    truth = site.node("bus0", unit).sensor.truth[int(sequence)]
    for row in regmap.MEASUREMENTS[kind]:
        assert physical(words, row) == pytest.approx(truth[row[0]], abs=0.5 / row[3] + 1e-9), row[0]


def test_mbpoll_writes_a_holding_register_and_reads_it_back(site: Site) -> None:
    interval = regmap.find(regmap.COMMON_HOLDING, "sample_interval")[1]
    proc = mbpoll(port(site), 2, "holding", interval, 2500)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert site.node("bus0", 2).node.bank.get_holding_raw("sample_interval") == 2500
    assert read(port(site), 2, "holding", interval, 1) == {interval: 2500}


def test_mbpoll_sees_exception_3_for_an_out_of_range_value(site: Site) -> None:
    interval = regmap.find(regmap.COMMON_HOLDING, "sample_interval")[1]
    proc = mbpoll(port(site), 1, "holding", interval, 5)  # below the 100 ms minimum
    assert proc.returncode != 0
    assert "Illegal data value" in proc.stdout + proc.stderr
    assert site.node("bus0", 1).node.bank.get_holding_raw("sample_interval") == 1000


def test_mbpoll_switches_the_spray_coil(site: Site) -> None:
    relay = regmap.find(regmap.COILS[regmap.KIND_DUST], "spray_relay")[1]
    assert read(port(site), 1, "coil", relay, 1) == {relay: 0}
    proc = mbpoll(port(site), 1, "coil", relay, 1)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert site.node("bus0", 1).node.bank.coils[relay] == 1
    assert read(port(site), 1, "coil", relay, 1) == {relay: 1}


def test_a_silent_unit_times_out_in_mbpoll(site: Site) -> None:
    proc = mbpoll(port(site), 9, "input", 0, count=1, timeout=0.2)
    assert proc.returncode != 0
    assert "timed out" in (proc.stdout + proc.stderr).lower()
