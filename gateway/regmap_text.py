"""What each register of the node register map means: the text the gateway, the docs and the console show.

firmware/regmap.py is the single source of the register map, and it runs on the node, where every
string costs heap: so the map holds only what the node needs (names, addresses, formats, scales, units,
limits) and the descriptions live here, keyed by the section a register belongs to ("diagnostics",
"common" for the holding registers every node has, or the kind name for its measurements, holding
registers and coils) and the register name. tests/hardware checks that every register has exactly one.
"""

from __future__ import annotations

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "diagnostics": {
        "fw_version": "firmware version, major * 256 + minor",
        "node_kind": "node kind: 1 dust, 2 noise, 3 tilt, 4 wind",
        "uptime": "seconds since boot",
        "sample_seq": "sequence number of the newest sample; restarts at 1 after a reboot",
        "sample_age": "age of the newest sample at the moment of the read (saturates at 65535)",
        "sensor_status": "status bits of the newest sample (see the status table)",
        "frames_ok": "requests answered (wraps at 65536)",
        "crc_errors": "frames dropped for a bad CRC (wraps)",
        "sensor_errors": "failed sensor reads (wraps)",
        "boot_count": "number of boots, persisted",
        "history_oldest": "sequence number of the oldest sample in the history ring (0: empty)",
        "boot_flags": "self-test: 1 register map, 2 no sample yet, 4 config reset, 8 watchdog reset",
    },
    "common": {
        "unit_id": "Modbus unit ID (applies after a restart)",
        "baud_code": "0: 9600, 1: 19200, 2: 38400, 3: 57600, 4: 115200 baud",
        "parity": "0: none (8N1), 1: even (8E1), 2: odd (8O1)",
        "sample_interval": "time between samples",
        "factory_reset": "write 0xA55A to restore every default",
        "history_seq": "first sample the history window shows (see HISTORY_BASE)",
    },
    "dust": {
        "pm25": "PM2.5 mass concentration",
        "pm10": "PM10 mass concentration",
        "pm1": "PM1.0 mass concentration",
        "temperature": "air temperature",
        "humidity": "relative humidity",
        "pressure": "air pressure",
        "rh_flag_threshold": "flag optical PM readings above this humidity",
        "rh_correction": "1: apply the kappa-Koehler humidity correction",
        "kappa": "hygroscopicity kappa of the correction",
        "spray_relay": "spray / fog-cannon relay; on = spraying",
    },
    "noise": {
        "laeq_1s": "A-weighted equivalent level over the last second",
        "lamax_1s": "highest 125 ms (Fast) level in the last second",
        "lamin_1s": "lowest 125 ms (Fast) level in the last second",
        "calibration_offset": "added to every level; set against a reference meter",
    },
    "tilt": {
        "pitch": "pitch from the zeroed baseline",
        "roll": "roll from the zeroed baseline",
        "slope_x": "slope along x, 1000 * tan(pitch)",
        "slope_y": "slope along y, 1000 * tan(roll)",
        "temperature": "sensor temperature",
        "zero_baseline": "write 1 to take the present attitude as the zero baseline",
        "baseline_pitch": "stored zero of pitch",
        "baseline_roll": "stored zero of roll",
    },
    "wind": {
        "wind_speed": "wind speed, mean over the sample interval",
        "wind_dir": "wind direction, degrees from north (where the wind comes from)",
        "wind_gust_3s": "highest 3 s running mean since the previous sample",
        "anemometer_factor": "wind speed per pulse frequency",
        "anemometer_offset": "wind speed offset",
        "vane_offset": "vane mounting offset from north",
    },
}
