# The noise kind"s register tables: the noise node: a sound-level module or an I2S microphone.
#
# Plain data the node needs (MicroPython: no typing, no dataclasses); firmware/regmap.py
# assembles every firmware/kind_*.py it finds. Rows as in regmap.py; formats:
# 0 u16, 1 s16, 2 u32, 3 s32 (regmap.U16 ...). What each register means, ranges, limits,
# stages and the simulator model are gateway-side: gateway/profiles/kinds/noise.toml.

U16 = 0
S16 = 1
U32 = 2
S32 = 3

CODE = 2  # the value of input register node_kind
NAME = "noise"
ADAPTER = "firmware.noise_sensor"  # the sensor module main.py loads when node.json names none

# Input registers from regmap.MEASUREMENT_BASE: (name, address, format, scale, unit)
MEASUREMENTS = (
    ("laeq_1s", 16, U16, 10, "dB(A)"),
    ("lamax_1s", 17, U16, 10, "dB(A)"),
    ("lamin_1s", 18, U16, 10, "dB(A)"),
)

# Holding registers: (name, address, format, scale, unit, minimum_raw, maximum_raw, default_raw)
HOLDING = (
    ("calibration_offset", 16, S16, 10, "dB", -200, 200, 0),
)

# Coils: (name, address)
COILS = ()

# Channels of the second sensor (regmap.STATUS_SPLIT); () when the kind has one sensor.
AUX_CHANNELS = ()
