"""LimitsResolver.changed: one setting changed at run time (the MQTT `threshold` command), checked like the config."""

from __future__ import annotations

import pytest

from gateway.process.limits import LimitsError, LimitsResolver


def test_a_site_wide_change_reaches_every_node_without_a_table_of_its_own() -> None:
    resolver = LimitsResolver.from_config({}, {"wind-2": {"wind": {"crane_gust": 7.0}}})
    changed = resolver.changed("wind.crane_gust", 8.5)
    assert changed.site.wind.crane_gust == 8.5
    assert changed.for_node("wind-1").wind.crane_gust == 8.5
    assert changed.for_node("wind-2").wind.crane_gust == 7.0  # its own table still wins
    assert resolver.site.wind.crane_gust == 9.0  # the old resolver is unchanged


def test_a_node_change_keeps_the_node_table_s_other_settings() -> None:
    resolver = LimitsResolver.from_config({}, {"wind-2": {"wind": {"crane_gust": 7.0}}})
    changed = resolver.changed("wind.lifting_gust", 11.0, node="wind-2")
    node = changed.for_node("wind-2")
    assert (node.wind.crane_gust, node.wind.lifting_gust) == (7.0, 11.0)
    assert changed.for_node("wind-1").wind.lifting_gust == resolver.site.wind.lifting_gust


@pytest.mark.parametrize("setting", ["wind.crane_gusto", "nothing.at_all", "wind"])
def test_an_unknown_setting_is_refused_with_its_name(setting: str) -> None:
    with pytest.raises(LimitsError, match=r"unknown setting|expected"):
        LimitsResolver().changed(setting, 8.0)
