# The dust kind"s register tables: the dust node: PM sensor (PMS5003 or SDS011) and a T/RH/P chip.
#
# Plain data the node needs (MicroPython: no typing, no dataclasses); firmware/regmap.py
# assembles every firmware/kind_*.py it finds. Rows as in regmap.py; formats:
# 0 u16, 1 s16, 2 u32, 3 s32 (regmap.U16 ...). What each register means, ranges, limits,
# stages and the simulator model are gateway-side: gateway/profiles/kinds/dust.toml.

U16 = 0
S16 = 1
U32 = 2
S32 = 3

CODE = 1  # the value of input register node_kind
NAME = "dust"
ADAPTER = "firmware.dust_sensor"  # the sensor module main.py loads when node.json names none

# Input registers from regmap.MEASUREMENT_BASE: (name, address, format, scale, unit)
MEASUREMENTS = (
    ("pm25", 16, U16, 1, "ug/m3"),
    ("pm10", 17, U16, 1, "ug/m3"),
    ("pm1", 18, U16, 1, "ug/m3"),
    ("temperature", 19, S16, 10, "degC"),
    ("humidity", 20, U16, 10, "%"),
    ("pressure", 21, U16, 100, "kPa"),
)

# Holding registers: (name, address, format, scale, unit, minimum_raw, maximum_raw, default_raw)
HOLDING = (
    ("rh_flag_threshold", 16, U16, 10, "%", 300, 1000, 750),
    ("rh_correction", 17, U16, 1, "", 0, 1, 0),
    ("kappa", 18, U16, 1000, "", 0, 2000, 300),
)

# Coils: (name, address)
COILS = (("spray_relay", 0),)

# Channels of the second sensor (regmap.STATUS_SPLIT); () when the kind has one sensor.
AUX_CHANNELS = ("temperature", "humidity", "pressure")
