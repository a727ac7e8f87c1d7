"""normal_day.toml through the real gateway: an ordinary morning raises nothing, over RS-485 and Modbus TCP.

One run at 600x from 09:00 to 10:30 local time with the gateway polling a boundary dust monitor
(RS-485, 9600 baud), the mast anemometer (Wi-Fi: Modbus TCP) and a formwork inclinometer (RS-485)
back to back. The intended outcome of the scenario is the absence of alarms on an ordinary day,
with every node's samples arriving: a wrong limit, a broken decoder on either transport or a lost
sample shows here.

Numbers changed for speed, and why: the nodes sample once a minute (sample_interval = 60000 ms;
limits.sampling.interval_s = 60) so 90 simulated minutes take about nine real seconds. The limits
are the defaults.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from firmware import regmap
from gateway.process.alarms import AlarmEvent
from tests.integration.support import Polled, Run, run_scenario

SPEED = 600.0
NODES = {"dust-north": ("boundary", 1), "wind-mast": ("tower", 1), "tilt-bay-a": ("formwork", 1)}


@pytest.fixture(scope="module")
def morning(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield asyncio.run(
        run_scenario(
            tmp_path_factory.mktemp("normal"), "normal_day", skip=3 * 3600, until=4.5 * 3600, speed=SPEED,
            polled=[Polled(bus, unit, 60.0) for bus, unit in NODES.values()],
        )
    )


def test_every_node_delivers_every_sample_over_rs485_and_tcp(morning: Run) -> None:
    for name, (bus, unit) in NODES.items():
        channel = {"dust-north": "pm10", "wind-mast": "wind_speed", "tilt-bay-a": "slope_x"}[name]
        readings = [r for r in morning.readings(name, channel) if r.sequence > 0]
        sequences = [r.sequence for r in readings]
        assert len(sequences) >= 60, (name, len(sequences))  # ~90 samples in the run
        assert sequences == list(range(sequences[0], sequences[-1] + 1)), name  # none lost, none twice
        site_node = morning.site.node(bus, unit)
        truth = site_node.sensor.truth
        scale = regmap.find(regmap.MEASUREMENTS[site_node.node.kind], channel)[3]
        for r in readings:
            if r.sequence in truth:  # to the register's resolution
                assert r.value is not None
                assert r.value == pytest.approx(truth[r.sequence][channel], abs=0.5 / scale + 1e-9), name


def test_an_ordinary_morning_raises_no_alarm(morning: Run) -> None:
    events = morning.of(AlarmEvent)
    assert events == [], events
    # ...and it is not for want of data: the aggregates the alarms watch were computed.
    assert morning.aggregates("wind-mast", "wind_2min_speed_mean")
    assert morning.aggregates("dust-north", "pm10_1h_mean") or morning.aggregates("dust-north", "pm10_15min_mean")
