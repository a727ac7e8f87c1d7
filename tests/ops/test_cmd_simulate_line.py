"""`sitewatch simulate --line`: a bus's or one node's line settings without editing the scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.ops.cmd_simulate import with_lines
from simulator.scenario import load_builtin
from simulator.site import Site


def test_line_overrides_a_bus_then_one_node(tmp_path: Path) -> None:
    demo = load_builtin("demo")
    scenario = with_lines(demo, ["bus0=19200-8E1", "bus0:2=9600 8O1"])
    bus = scenario.buses[0]
    assert (bus.baud, bus.parity) == (19200, "E")
    assert [(n.unit_id, n.baud, n.parity) for n in bus.nodes] == [
        (1, None, None), (2, 9600, "O"), (3, None, None), (4, None, None)
    ]
    with Site(scenario, tmp_path) as site:
        assert "(19200 baud 8E1; dust 1, wind 2 at 9600 8O1, noise 3" in site.describe()[0]
        assert site.node("bus0", 2).node.bank.get_holding_raw("parity") == 2
        assert site.node("bus0", 2).node.bank.get_holding_raw("baud_code") == 0
        assert site.node("bus0", 1).node.bank.get_holding_raw("baud_code") == 1


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("bus9=9600", "BUS one of: bus0"),
        ("bus0", "expected BUS\\[:UNIT\\]=SETTINGS"),
        ("bus0:7=9600", "bus bus0 has no unit 7"),
        ("bus0=4800", "a sitewatch node runs at 9600, 19200"),
        ("bus0=9600 7E1", "character format '7E1'"),
        ("bus0:x=9600", "unit 'x' is not a unit id"),
    ],
)
def test_bad_line_overrides_say_what_is_wrong(override: str, problem: str) -> None:
    with pytest.raises(SystemExit, match=problem):
        with_lines(load_builtin("demo"), [override])
