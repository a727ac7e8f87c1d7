"""The site quantities a vendor device may supply: the channel names and units the gateway's processors use.

A vendor register names one of these; its readings then reach the same
aggregators as those of sitewatch nodes (pm: pm25/pm10/pm1, noise:
laeq_1s/lamax_1s/lamin_1s, wind: wind_speed/wind_dir/wind_gust_3s, tilt:
slope_x/slope_y), so the names and units follow the kinds' register tables
(firmware/kind_<kind>.py). Both views are live: a kind installed from a profile
folder (gateway/profiles/kinds.py) adds its quantities and its name.
"""

from __future__ import annotations

from collections.abc import Mapping

from firmware import regmap
from gateway.profiles.live import LiveTable


def _quantity_units() -> dict[str, str]:
    """quantity -> unit of its readings, over every kind the register map knows now."""
    return {str(row[0]): str(row[4]) for rows in regmap.MEASUREMENTS.values() for row in rows}


# quantity -> unit of its readings; the profile's scale and offset must produce this unit.
QUANTITY_UNITS: Mapping[str, str] = LiveTable(_quantity_units)
# The kinds of device a profile may declare (readings carry it as Reading.kind), in node_kind order.
KINDS = regmap.KIND_CODES.keys()
