# The tilt kind"s register tables: the tilt node: an SCL3300 or ADXL355 inclinometer.
#
# Plain data the node needs (MicroPython: no typing, no dataclasses); firmware/regmap.py
# assembles every firmware/kind_*.py it finds. Rows as in regmap.py; formats:
# 0 u16, 1 s16, 2 u32, 3 s32 (regmap.U16 ...). What each register means, ranges, limits,
# stages and the simulator model are gateway-side: gateway/profiles/kinds/tilt.toml.

U16 = 0
S16 = 1
U32 = 2
S32 = 3

CODE = 3  # the value of input register node_kind
NAME = "tilt"
ADAPTER = "firmware.tilt_sensor"  # the sensor module main.py loads when node.json names none

# Input registers from regmap.MEASUREMENT_BASE: (name, address, format, scale, unit)
MEASUREMENTS = (
    ("pitch", 16, S32, 1, "mdeg"),
    ("roll", 18, S32, 1, "mdeg"),
    ("slope_x", 20, S32, 1000, "permille"),
    ("slope_y", 22, S32, 1000, "permille"),
    ("temperature", 24, S16, 10, "degC"),
)

# Holding registers: (name, address, format, scale, unit, minimum_raw, maximum_raw, default_raw)
HOLDING = (
    ("zero_baseline", 16, U16, 1, "", 0, 1, 0),
    ("baseline_pitch", 17, S32, 1, "mdeg", -90000, 0x15f90, 0),
    ("baseline_roll", 19, S32, 1, "mdeg", -90000, 0x15f90, 0),
)

# Coils: (name, address)
COILS = ()

# Channels of the second sensor (regmap.STATUS_SPLIT); () when the kind has one sensor.
AUX_CHANNELS = ()
