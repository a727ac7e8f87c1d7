"""What answered: a sitewatch node (it says so), or the vendor profile its registers fit best. Sans-IO.

A sitewatch node identifies itself: input registers 0 and 1 are its firmware
version and node_kind, and holding register 0 is its own unit id. Anything
else is matched against the vendor profiles (gateway/profiles/vendor.py): a
profile fits when every read it needs was answered (no exception) and the
values decode and are plausible (within the profile's ranges). Several
profiles can fit the same registers; the confidence says how sure the match
is (shared between the fitting profiles, more for one whose default line
settings are the line's and whose values are all valid).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from firmware import regmap
from gateway.profiles.vendor import ReadRequest, VendorProfile
from gateway.protocols import modbus_rtu_master as rtu
from gateway.scan.plan import SerialSettings

# -- sitewatch nodes ---------------------------------------------------------------------

IDENTITY_READ = (rtu.READ_INPUT_REGISTERS, 0, 2)  # fw_version, node_kind
UNIT_ID_READ = (rtu.READ_HOLDING_REGISTERS, 0, 1)  # unit_id


def sitewatch_kind(unit: int, identity: rtu.Reply | None, unit_id: rtu.Reply | None) -> str | None:
    """The node kind if these replies are a sitewatch node's, else None."""
    if not isinstance(identity, rtu.Registers) or not isinstance(unit_id, rtu.Registers):
        return None
    version, kind = identity.values
    if version >> 8 != regmap.FIRMWARE_VERSION >> 8 or kind not in regmap.KIND_NAMES:
        return None
    if unit_id.values[0] != unit:
        return None
    return str(regmap.KIND_NAMES[kind])


# -- vendor devices ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    profile: str
    kind: str
    confidence: float  # 0..1
    values: Mapping[str, float | None]
    profile_settings: tuple[int | None, str | None] = (None, None)  # the profile's default baud and parity


def profile_reads(profiles: Sequence[VendorProfile]) -> list[tuple[int, int, int]]:
    """Every distinct (function, address, count) the profiles need, each asked once per unit."""
    seen: list[tuple[int, int, int]] = []
    for profile in profiles:
        for read in profile.reads():
            key = (read.function, read.address, read.count)
            if key not in seen:
                seen.append(key)
    return seen


def match_profiles(
    profiles: Sequence[VendorProfile], replies: Mapping[tuple[int, int, int], rtu.Reply | None], line: SerialSettings
) -> list[Match]:
    """The profiles the replies fit, best first, with their confidence (summing to 1 when any fit)."""
    scored: list[tuple[float, VendorProfile, Mapping[str, float | None]]] = []
    for profile in profiles:
        answered: dict[ReadRequest, Sequence[int]] = {}
        for read in profile.reads():
            reply = replies.get((read.function, read.address, read.count))
            if not isinstance(reply, rtu.Registers):
                break  # an exception, garbage or silence: this device is not laid out so
            answered[read] = reply.values
        else:
            try:
                values = profile.decode(answered)
            except (ValueError, KeyError, IndexError):
                continue
            if not values or not profile.plausible(values):
                continue
            score = 1.0
            score += 0.5 * (profile.baud == line.baud) + 0.5 * (profile.parity == line.parity)
            score += sum(v is not None for v in values.values()) / len(values)
            scored.append((score, profile, values))
    total = sum(score for score, _, _ in scored)
    matches = [Match(p.name, p.kind, score / total, values, (p.baud, p.parity)) for score, p, values in scored]
    return sorted(matches, key=lambda m: -m.confidence)
