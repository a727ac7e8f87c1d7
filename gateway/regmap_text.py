"""What each register of the node register map means: the text the gateway, the docs and the console show.

firmware/regmap.py is the single source of the register map, and it runs on the node, where every
string costs heap: so the map holds only what the node needs (names, addresses, formats, scales, units,
limits) and the descriptions live here, keyed by the section a register belongs to ("diagnostics",
"common" for the holding registers every node has, or the kind name for its measurements, holding
registers and coils, which its profile gives: gateway/profiles/kinds/<kind>.toml) and the register
name. tests/hardware checks that every register has exactly one.
"""

from __future__ import annotations

from firmware import regmap
from gateway.profiles.kinds import kind_profiles

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "diagnostics": {
        "fw_version": "firmware version, major * 256 + minor",
        "node_kind": "node kind: " + ", ".join(f"{code} {name}" for code, name in sorted(regmap.KIND_NAMES.items())),
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
}
# What each kind's registers and coils mean comes from its profile (gateway/profiles/kinds/<kind>.toml).
DESCRIPTIONS.update({name: dict(kind.descriptions) for name, kind in kind_profiles().items()})
