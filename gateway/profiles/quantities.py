"""The site quantities a vendor device may supply: the channel names and units the gateway's processors use.

A vendor register names one of these; its readings then reach the same
aggregators as those of sitewatch nodes (pm: pm25/pm10/pm1, noise:
laeq_1s/lamax_1s/lamin_1s, wind: wind_speed/wind_dir/wind_gust_3s, tilt:
slope_x/slope_y), so the names and units follow firmware/regmap.py.
"""

from __future__ import annotations

from types import MappingProxyType

from firmware import regmap

# quantity -> unit of its readings; the profile's scale and offset must produce this unit.
QUANTITY_UNITS = MappingProxyType(
    {row[0]: row[4] for rows in regmap.MEASUREMENTS.values() for row in rows}
)
# The kinds of device a profile may declare (readings carry it as Reading.kind).
KINDS = tuple(sorted(regmap.KIND_NAMES.values()))
