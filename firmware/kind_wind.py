# The wind kind"s register tables: the wind node: a pulse anemometer and a vane.
#
# Plain data the node needs (MicroPython: no typing, no dataclasses); firmware/regmap.py
# assembles every firmware/kind_*.py it finds. Rows as in regmap.py; formats:
# 0 u16, 1 s16, 2 u32, 3 s32 (regmap.U16 ...). What each register means, ranges, limits,
# stages and the simulator model are gateway-side: gateway/profiles/kinds/wind.toml.

U16 = 0
S16 = 1
U32 = 2
S32 = 3

CODE = 4  # the value of input register node_kind
NAME = "wind"
ADAPTER = "firmware.wind_sensor"  # the sensor module main.py loads when node.json names none

# Input registers from regmap.MEASUREMENT_BASE: (name, address, format, scale, unit)
MEASUREMENTS = (
    ("wind_speed", 16, U16, 100, "m/s"),
    ("wind_dir", 17, U16, 10, "deg"),
    ("wind_gust_3s", 18, U16, 100, "m/s"),
)

# Holding registers: (name, address, format, scale, unit, minimum_raw, maximum_raw, default_raw)
HOLDING = (
    ("anemometer_factor", 16, U16, 10000, "m/s/Hz", 1, 65535, 1000),
    ("anemometer_offset", 17, U16, 1000, "m/s", 0, 5000, 0),
    ("vane_offset", 18, U16, 10, "deg", 0, 3599, 0),
)

# Coils: (name, address)
COILS = ()

# Channels of the second sensor (regmap.STATUS_SPLIT); () when the kind has one sensor.
AUX_CHANNELS = ("wind_dir",)
