"""Configurations whose parts contradict each other are refused, with errors naming every key involved."""

from __future__ import annotations

import tomllib

import pytest

from gateway.ops.config import ConfigError, GatewayConfig, parse_config


def config(text: str) -> GatewayConfig:
    return parse_config(tomllib.loads(text), "site.toml")


def error(text: str) -> str:
    with pytest.raises(ConfigError) as raised:
        config(text)
    return str(raised.value)


def bus(*nodes: str) -> str:
    return '[[bus]]\nport = "/dev/ttyUSB0"\n' + "".join(f"[[bus.node]]\n{n}\n" for n in nodes)


DUST = 'kind = "dust"\nunit_id = 1'
WIND = 'kind = "wind"\nunit_id = 2'


def test_late_s_shorter_than_a_poll_interval_is_refused() -> None:
    # Samples between two polls arrive (by backfill) after a window that closed late_s after its end.
    message = error("[processing]\nlate_s = 5.0\n" + bus(DUST, WIND + "\ninterval = 10.0"))
    assert "processing.late_s" in message and "bus[0].node[1].interval" in message
    assert config("[processing]\nlate_s = 12.0\n" + bus(DUST, WIND + "\ninterval = 10.0")).processing.late_s == 12.0


def test_humidity_correction_on_the_node_and_on_the_gateway_is_refused() -> None:
    message = error("[limits.humidity]\ncorrection = true\n" + bus(DUST + "\nrh_correction = true"))
    assert "bus[0].node[0].rh_correction" in message and "limits.humidity.correction" in message
    per_node = (
        bus(DUST + '\nname = "d1"\nrh_correction = true')
        + '\n[node_limits.d1.humidity]\ncorrection = true\n'
    )
    message = error(per_node)
    assert "bus[0].node[0].rh_correction" in message and "node_limits.d1.humidity.correction" in message
    # Either alone is fine.
    assert config(bus(DUST + "\nrh_correction = true")).buses[0].nodes[0].rh_correction
    assert not config("[limits.humidity]\ncorrection = true\n" + bus(DUST)).buses[0].nodes[0].rh_correction


def test_rh_correction_is_for_dust_nodes_only() -> None:
    assert "bus[0].node[0].rh_correction" in error(bus(WIND + "\nrh_correction = true"))


def test_a_day_boundary_that_splits_an_evaluation_period_is_refused() -> None:
    # 20-min windows start at :00, :20, :40: a day that starts 06:10 would split one.
    message = error('[limits.noise]\nday_start = "06:10"\n' + bus(DUST))
    assert "limits.noise" in message and "noise.day_start" in message and "evaluation_period_s" in message
    message = error('[limits.noise]\nevaluation_period_s = 14400\n' + bus(DUST))  # 4 h: 06:00 is not on one
    assert "noise.day_start" in message
    assert config('[limits.noise]\nday_start = "06:40"\n' + bus(DUST)).limits["noise"]["day_start"] == "06:40"


def test_a_spray_channel_no_stage_produces_is_refused() -> None:
    # The pm aggregator makes 1-min and 1-h means only: the spray would never see its 15-min mean.
    text = '[[processing.aggregator]]\ntype = "pm"\nwindows = ["1min", "1h"]\n' + bus(DUST)
    message = error(text)
    assert "spray.channel" in message and "pm10_15min_mean" in message
    assert config('[spray]\nchannel = "pm10_1min_mean"\n' + text).spray.channel == "pm10_1min_mean"
    assert config('[spray]\nenabled = false\n' + text).spray_plan() is None


def test_a_noise_aggregator_without_the_evaluation_window_is_refused() -> None:
    # The noise alarms read the Leq of the evaluation period (20 min): without that window they never fire.
    text = '[spray]\nenabled = false\n[[processing.aggregator]]\ntype = "noise"\nwindows = ["1min", "1h"]\n' + bus(DUST)
    message = error(text)
    assert "processing.aggregator[0]" in message and "20min" in message and "evaluation_period_s" in message
    assert config('[limits.noise]\nevaluation_period_s = 3600\n' + text).limits["noise"]["evaluation_period_s"] == 3600
