"""Vendor Modbus device profiles: TOML files that say how to read a third-party transmitter. Pure (but loading).

A profile (format: docs/profiles.md) lists the registers of a device, each
with its function code (3 holding, 4 input), address, data type, byte and
word order, scale and offset, an optional bit field, an optional "value
invalid" sentinel, the plausible range and the site quantity it supplies
(gateway/profiles/quantities.py). ``VendorProfile.reads`` merges the
registers into as few requests as the device allows (``max_gap`` unused
registers may be read over, never a register the device rejects, never more
than ``max_count`` per request); ``decode`` turns the replies into values.

This module is the contract with ``sitewatch scan`` (common working rules):
``load_vendor_profiles``, ``VendorProfile`` (name, kind, description,
source, baud, parity, reads, decode, plausible) and ``ReadRequest``.
"""

from __future__ import annotations

import math
import struct
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from gateway.model import Quality
from gateway.profiles.quantities import KINDS, QUANTITY_UNITS
from gateway.profiles.words import (
    INTEGER_TYPES,
    ORDERS,
    TYPES,
    integer_bounds,
    value_to_words,
    word_count,
    words_to_value,
)

SYSTEM_PROFILE_DIR = Path("/etc/sitewatch/profiles")
READ_FUNCTIONS = (3, 4)  # read holding registers, read input registers
MAX_READ_COUNT = 125  # the most registers one FC 3/4 request may ask for (Modbus application protocol 6.3)
DEFAULT_MAX_GAP = 0  # unused registers read over to merge two requests: none unless the profile says so
PARITIES = ("N", "E", "O")
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
TRANSFORMS = ("", "degrees_to_permille")
GUST_SOURCES = ("", "gateway", "device")
MAX_ROUNDED_DECIMALS = 9  # a scale or offset with more decimals than this is not a decimal step: no rounding


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file and the key."""


class DecodeError(ValueError):
    """Replies that do not fit the profile (a missing or short reply)."""


@dataclass(frozen=True, slots=True)
class ReadRequest:
    function: int  # 3 or 4
    address: int
    count: int

    @property
    def end(self) -> int:
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class Register:
    """One value of the device: where it is, how it is encoded, which quantity it supplies."""

    quantity: str
    function: int
    address: int
    type: str
    byte_order: str = "big"
    word_order: str = "big"
    scale: float = 1.0  # value = raw * scale + offset (then transform)
    offset: float = 0.0
    unit: str = ""
    bits: tuple[int, int] | None = None  # (lowest bit, width) of an integer register
    invalid: tuple[float, ...] = ()  # raw values (after bits) that mean "no valid value"
    low: float | None = None  # plausible range, in unit
    high: float | None = None
    transform: str = ""  # "degrees_to_permille": an angle in degrees becomes a slope 1000 * tan(angle)
    # Decimals of an integer register's value (those of scale and offset): 3 * 0.1 is 0.3, not 0.30000000000000004.
    decimals: int | None = field(default=None, init=False, compare=False)

    def __post_init__(self) -> None:
        if self.type != "f32":
            places = max(_decimal_places(self.scale), _decimal_places(self.offset))
            object.__setattr__(self, "decimals", places if places <= MAX_ROUNDED_DECIMALS else None)

    @property
    def words(self) -> int:
        return word_count(self.type)

    def raw(self, words: Sequence[int]) -> float:
        raw = words_to_value(words, self.type, self.byte_order, self.word_order)
        if self.bits is not None:
            lowest, width = self.bits
            raw = (int(raw) >> lowest) & ((1 << width) - 1)
        return raw

    def value(self, raw: float) -> float | None:
        """The quantity's value of a raw number; None for a sentinel (or a float that is not a number)."""
        if raw in self.invalid or (isinstance(raw, float) and not math.isfinite(raw)):
            return None
        value = raw * self.scale + self.offset
        if self.decimals is not None:
            value = round(value, self.decimals)
        if self.transform == "degrees_to_permille":
            value = 1000.0 * math.tan(math.radians(value))
        return value if math.isfinite(value) else None  # a raw value the scale carries beyond any float

    def raw_of(self, value: float) -> float:
        """The raw number that decodes to value (the simulator's and the tests' encoder)."""
        if self.transform == "degrees_to_permille":
            value = math.degrees(math.atan(value / 1000.0))
        raw = (value - self.offset) / self.scale
        return raw if self.type == "f32" else round(raw)

    def held(self, value: float) -> float:
        """The value nearest value that the register can hold (not its sentinel): a transmitter saturates there.

        The simulator's devices use it, so that a truth beyond the register's type is what the device
        reports, not a crash or a wrapped word.
        """
        if self.type == "f32":
            return value
        low, high = integer_bounds(self.type, self.bits[1] if self.bits is not None else None)
        wanted = self.raw_of(value)
        raw = min(max(wanted, low), high)
        if raw == wanted and raw not in self.invalid:
            return value  # it fits: the truth as it is (the register's rounding is the decoder's business)
        step = 1 if raw <= (low + high) / 2 else -1  # a sentinel at an end: one word inward
        while raw in self.invalid and low <= raw + step <= high:
            raw += step
        held = self.value(raw)
        return value if held is None else held

    def in_range(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


def _decimal_places(number: float) -> int:
    """The decimals of number as written (0.1 -> 1, 25.0 -> 0, 1e-05 -> 5)."""
    exponent = Decimal(repr(number)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else MAX_ROUNDED_DECIMALS + 1


@dataclass(frozen=True, slots=True)
class StatusBits:
    """A status register whose bits, when any of fault_mask is set, void the values of some quantities."""

    function: int
    address: int
    fault_mask: int
    quantities: tuple[str, ...]


@dataclass(frozen=True)
class VendorProfile:
    name: str
    kind: str
    description: str
    source: str
    baud: int | None
    parity: str | None
    registers: tuple[Register, ...] = ()
    status: tuple[StatusBits, ...] = ()
    max_gap: int = DEFAULT_MAX_GAP
    max_count: int = MAX_READ_COUNT
    rejected: tuple[tuple[int, int, int], ...] = ()  # (function, first, last): addresses the device refuses
    gust: str = ""  # wind: "gateway" (3 s gust from the speed samples) or "device" (it reports wind_gust_3s)
    aggregators: tuple[str, ...] = ()  # the gateway's aggregators that apply to its readings (documentation)
    path: str = ""  # the file it was loaded from

    # -- the contract ------------------------------------------------------------------
    def reads(self) -> list[ReadRequest]:
        """The merged requests that fetch every register (and status word), in function and address order."""
        spans = sorted({(r.function, r.address, r.words) for r in self.registers}
                       | {(s.function, s.address, 1) for s in self.status})
        requests: list[ReadRequest] = []
        for function, address, words in spans:
            last = requests[-1] if requests else None
            end = address + words
            if (
                last is not None
                and last.function == function
                and address - last.end <= self.max_gap
                and max(end, last.end) - last.address <= self.max_count
                and not self._rejects(function, last.end, address)
            ):
                requests[-1] = ReadRequest(function, last.address, max(end, last.end) - last.address)
            else:
                requests.append(ReadRequest(function, address, words))
        return requests

    def decode(self, replies: Mapping[ReadRequest, Sequence[int]]) -> dict[str, float | None]:
        """Quantity -> value; None where the sentinel (or a status fault bit) says the value is invalid."""
        return {name: value for name, (value, _) in self.decode_quality(replies).items()}

    def plausible(self, values: Mapping[str, float | None]) -> bool:
        """Every quantity present and within its range, and at least one of them valid.

        A None (the device's own "invalid" sentinel) is an answer the profile
        foresees, so it does not count against it; but a reply that is all
        sentinels proves nothing.
        """
        seen = False
        for register in self.registers:
            if register.quantity not in values:
                return False
            value = values[register.quantity]
            if value is None:
                continue
            if not register.in_range(value):
                return False
            seen = True
        return seen

    # -- what the gateway, the simulator and the tests need besides --------------------------
    @property
    def quantities(self) -> tuple[str, ...]:
        return tuple(r.quantity for r in self.registers)

    def unit(self, quantity: str) -> str:
        return self.register(quantity).unit

    def register(self, quantity: str) -> Register:
        for r in self.registers:
            if r.quantity == quantity:
                return r
        raise KeyError(f"profile {self.name} has no quantity {quantity!r}")

    def decode_quality(self, replies: Mapping[ReadRequest, Sequence[int]]) -> dict[str, tuple[float | None, Quality]]:
        """Quantity -> (value, HJ 212 flag): N; T out of the profile's range (value kept); D invalid (no value)."""
        faulty: set[str] = set()
        for s in self.status:
            if int(_words_at(replies, s.function, s.address, 1)[0]) & s.fault_mask:
                faulty.update(s.quantities)
        out: dict[str, tuple[float | None, Quality]] = {}
        for r in self.registers:
            value = None if r.quantity in faulty else r.value(r.raw(_words_at(replies, r.function, r.address, r.words)))
            if value is None:
                out[r.quantity] = (None, Quality.DEVICE_FAULT)
            else:
                out[r.quantity] = (value, Quality.NORMAL if r.in_range(value) else Quality.OVER_RANGE)
        return out

    def encode(self, values: Mapping[str, float | None], status: int = 0) -> dict[tuple[int, int], int]:
        """(function, address) -> register word holding values (None: the first sentinel); status words too.

        The inverse of decode, for the simulator and tests: registers a
        quantity shares through bit fields are OR-ed together.
        """
        words: dict[tuple[int, int], int] = {}
        for s in self.status:
            words[(s.function, s.address)] = status & 0xFFFF
        for r in self.registers:
            value = values.get(r.quantity)
            if value is None:
                if not r.invalid:
                    raise ValueError(f"profile {self.name}: {r.quantity} has no invalid sentinel to encode None")
                raw = r.invalid[0]
            else:
                raw = r.raw_of(value)
            if r.bits is not None:
                lowest, width = r.bits
                field = int(raw) & ((1 << width) - 1)
                key = (r.function, r.address)
                words[key] = words.get(key, 0) | (field << lowest)
                continue
            for i, word in enumerate(value_to_words(raw, r.type, r.byte_order, r.word_order)):
                words[(r.function, r.address + i)] = word
        return words

    def _rejects(self, function: int, start: int, end: int) -> bool:
        """Whether the device refuses any address in [start, end) of function."""
        return any(f == function and first < end and last >= start for f, first, last in self.rejected)


def _words_at(replies: Mapping[ReadRequest, Sequence[int]], function: int, address: int, count: int) -> list[int]:
    for request, words in replies.items():
        if request.function == function and request.address <= address and address + count <= request.end:
            if len(words) != request.count:
                raise DecodeError(
                    f"reply to FC {request.function} {request.address}+{request.count}: {len(words)} registers"
                )
            start = address - request.address
            return list(words[start:start + count])
    raise DecodeError(f"no reply covers FC {function} address {address} ({count} registers)")


# ---------------------------------------------------------------------------------------
# Parsing: TOML data -> VendorProfile, with errors that name file and key.
# ---------------------------------------------------------------------------------------

_DEVICE_KEYS = {"kind", "description", "source", "baud", "parity", "max_gap", "max_count", "gust", "aggregators",
                "byte_order", "word_order"}
_REGISTER_KEYS = {"quantity", "function", "address", "type", "byte_order", "word_order", "scale", "offset", "unit",
                  "bits", "invalid", "range", "transform"}
_STATUS_KEYS = {"function", "address", "fault_mask", "quantities"}
_REJECTED_KEYS = {"function", "first", "last"}
_MISSING = object()


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> ProfileError:
        return ProfileError(f"{self.source}: {key}: {problem}")

    def get(self, table: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...],
            default: Any = _MISSING) -> Any:
        path = f"{where}.{key}" if where else key
        value = table.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise self.fail(path, "required")
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.fail(path, f"expected {names}, got {type(value).__name__} {value!r}")
        return value

    def unknown(self, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                path = f"{where}.{key}" if where else key
                raise self.fail(path, f"unknown key (known: {', '.join(sorted(allowed))})")

    def choice(self, table: Mapping[str, Any], key: str, where: str, choices: Sequence[Any], default: Any) -> Any:
        value = self.get(table, key, where, type(default) if default is not None else str, default)
        if value not in choices:
            raise self.fail(f"{where}.{key}", f"{value!r} is not one of {', '.join(map(repr, choices))}")
        return value

    def table_list(self, data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
        items: list[Mapping[str, Any]] = []
        for i, item in enumerate(self.get(data, key, "", list, [])):
            if not isinstance(item, dict):
                raise self.fail(f"{key}[{i}]", "expected a table")
            items.append(item)
        return items


def parse_profile(data: Mapping[str, Any], name: str, source: str = "") -> VendorProfile:
    """A profile from parsed TOML; name is the profile's name (its file's stem), source names it in errors."""
    c = _Reader(source or name)
    c.unknown(data, {"device", "register", "status", "rejected"}, "")
    device = c.get(data, "device", "", dict)
    c.unknown(device, _DEVICE_KEYS, "device")
    kind = c.get(device, "kind", "device", str)
    if kind not in KINDS:
        raise c.fail("device.kind", f"{kind!r} is not one of {', '.join(map(repr, KINDS))}")
    baud = c.get(device, "baud", "device", int, None)
    if baud is not None and baud not in BAUD_RATES:
        raise c.fail("device.baud", f"{baud} is not a standard rate ({', '.join(map(str, BAUD_RATES))})")
    parity = c.get(device, "parity", "device", str, None)
    if parity is not None and parity not in PARITIES:
        raise c.fail("device.parity", f"{parity!r} is not N, E or O")
    max_gap = c.get(device, "max_gap", "device", int, DEFAULT_MAX_GAP)
    if not 0 <= max_gap < MAX_READ_COUNT:
        raise c.fail("device.max_gap", f"{max_gap} is outside 0 .. {MAX_READ_COUNT - 1}")
    max_count = c.get(device, "max_count", "device", int, MAX_READ_COUNT)
    if not 1 <= max_count <= MAX_READ_COUNT:
        raise c.fail("device.max_count", f"{max_count} is outside 1 .. {MAX_READ_COUNT}")
    byte_order = c.choice(device, "byte_order", "device", ORDERS, "big")
    word_order = c.choice(device, "word_order", "device", ORDERS, "big")
    aggregators = tuple(c.get(device, "aggregators", "device", list, []))
    for i, a in enumerate(aggregators):
        if not isinstance(a, str):
            raise c.fail(f"device.aggregators[{i}]", f"expected a string, got {a!r}")

    rejected = []
    for i, raw in enumerate(c.table_list(data, "rejected")):
        where = f"rejected[{i}]"
        c.unknown(raw, _REJECTED_KEYS, where)
        function = c.choice(raw, "function", where, READ_FUNCTIONS, 3)
        first = _address(c, raw, "first", where)
        last = _address(c, raw, "last", where, first)
        if last < first:
            raise c.fail(f"{where}.last", f"{last} is below first ({first})")
        rejected.append((function, first, last))

    registers = []
    seen: set[str] = set()
    for i, raw in enumerate(c.table_list(data, "register")):
        register = _register(c, raw, f"register[{i}]", byte_order, word_order)
        if register.quantity in seen:
            raise c.fail(f"register[{i}].quantity", f"{register.quantity!r} is supplied twice")
        seen.add(register.quantity)
        registers.append(register)
    if not registers:
        raise c.fail("register", "no [[register]]: the profile reads nothing")

    status = []
    for i, raw in enumerate(c.table_list(data, "status")):
        where = f"status[{i}]"
        c.unknown(raw, _STATUS_KEYS, where)
        mask = c.get(raw, "fault_mask", where, int)
        if not 0 < mask <= 0xFFFF:
            raise c.fail(f"{where}.fault_mask", f"{mask} is outside 1 .. 0xFFFF")
        quantities = tuple(c.get(raw, "quantities", where, list, list(seen)))
        for q in quantities:
            if q not in seen:
                raise c.fail(f"{where}.quantities", f"{q!r} is not a quantity of this profile")
        status.append(StatusBits(c.choice(raw, "function", where, READ_FUNCTIONS, 3),
                                 _address(c, raw, "address", where), mask, quantities))

    spans = [(f"register[{i}]", r.function, r.address, r.words) for i, r in enumerate(registers)]
    spans += [(f"status[{i}]", s.function, s.address, 1) for i, s in enumerate(status)]
    for where, function, address, words in spans:
        for f, first, last in rejected:
            if f == function and first < address + words and last >= address:
                raise c.fail(f"{where}.address", f"FC {function} {address} lies in rejected {first} .. {last}")

    gust = c.choice(device, "gust", "device", GUST_SOURCES, "")
    if gust == "device" and "wind_gust_3s" not in seen:
        raise c.fail("device.gust", "\"device\" needs a register with quantity wind_gust_3s")
    if gust == "gateway" and "wind_speed" not in seen:
        raise c.fail("device.gust", "\"gateway\" needs a register with quantity wind_speed (the gust is made from it)")
    profile = VendorProfile(
        name=name,
        kind=kind,
        description=c.get(device, "description", "device", str),
        source=_source(c, device),
        baud=baud,
        parity=parity,
        registers=tuple(registers),
        status=tuple(status),
        max_gap=max_gap,
        max_count=max_count,
        rejected=tuple(rejected),
        gust=gust,
        aggregators=aggregators,
        path=source,
    )
    for request in profile.reads():
        if request.count > max_count:  # one register wider than the device's limit
            raise c.fail("device.max_count", f"{max_count} is less than a register's {request.count} words")
    return profile


def _source(c: _Reader, device: Mapping[str, Any]) -> str:
    source: str = c.get(device, "source", "device", str)
    if not source.strip():
        raise c.fail("device.source", "empty: name the manual the register map comes from (or say it has none)")
    return source


def _address(c: _Reader, table: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> int:
    address: int = c.get(table, key, where, int, default)
    if not 0 <= address <= 0xFFFF:
        raise c.fail(f"{where}.{key}", f"{address} is outside 0 .. 65535")
    return address


def _number(c: _Reader, table: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = float(c.get(table, key, where, (int, float), default))
    if not math.isfinite(value):
        raise c.fail(f"{where}.{key}", f"{value} is not a finite number")
    return value


def _register(c: _Reader, raw: Mapping[str, Any], where: str, byte_order: str, word_order: str) -> Register:
    c.unknown(raw, _REGISTER_KEYS, where)
    quantity = c.get(raw, "quantity", where, str)
    if quantity not in QUANTITY_UNITS:
        raise c.fail(f"{where}.quantity", f"{quantity!r} is not a site quantity ({', '.join(QUANTITY_UNITS)})")
    unit = c.get(raw, "unit", where, str)
    if unit != QUANTITY_UNITS[quantity]:
        raise c.fail(f"{where}.unit", f"{quantity} is in {QUANTITY_UNITS[quantity]!r}, not {unit!r}: "
                                      "set scale and offset to convert")
    data_type = c.choice(raw, "type", where, tuple(TYPES), "u16")
    scale = _number(c, raw, "scale", where, 1.0)
    if scale == 0:
        raise c.fail(f"{where}.scale", "must not be 0")
    bits = None
    if "bits" in raw:
        pair = c.get(raw, "bits", where, list)
        if data_type not in INTEGER_TYPES:
            raise c.fail(f"{where}.bits", f"bit fields need an integer type, not {data_type}")
        size = 16 * word_count(data_type)
        if len(pair) != 2 or not all(isinstance(b, int) and not isinstance(b, bool) for b in pair) or not (
            0 <= pair[0] < size and 1 <= pair[1] <= size - pair[0]
        ):
            raise c.fail(f"{where}.bits", f"expected [lowest bit, width] within {size} bits, got {pair!r}")
        bits = (pair[0], pair[1])
    invalid_raw = c.get(raw, "invalid", where, (int, float, list), [])
    invalid_list = invalid_raw if isinstance(invalid_raw, list) else [invalid_raw]
    for value in invalid_list:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise c.fail(f"{where}.invalid", f"expected a number or a list of numbers, got {value!r}")
        _check_sentinel(c, f"{where}.invalid", value, data_type, bits)
    low = high = None
    if "range" in raw:
        bounds = c.get(raw, "range", where, list)
        if len(bounds) != 2 or not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds) or (
            bounds[0] > bounds[1]
        ):
            raise c.fail(f"{where}.range", f"expected [low, high] with low <= high, got {bounds!r}")
        low, high = float(bounds[0]), float(bounds[1])
    return Register(
        quantity=quantity,
        function=c.choice(raw, "function", where, READ_FUNCTIONS, 3),
        address=_address(c, raw, "address", where),
        type=data_type,
        byte_order=c.choice(raw, "byte_order", where, ORDERS, byte_order),
        word_order=c.choice(raw, "word_order", where, ORDERS, word_order),
        scale=scale,
        offset=_number(c, raw, "offset", where, 0.0),
        unit=unit,
        bits=bits,
        invalid=tuple(_as_float32(v) if data_type == "f32" else int(v) for v in invalid_list),
        low=low,
        high=high,
        transform=c.choice(raw, "transform", where, TRANSFORMS, ""),
    )


def _check_sentinel(c: _Reader, key: str, value: float, data_type: str, bits: tuple[int, int] | None) -> None:
    """A sentinel the register can hold: one it cannot (0xD8F1 on an s16 that sends -9999) would never match."""
    if data_type == "f32":
        if math.isfinite(value) and not math.isfinite(_as_float32(value)):
            raise c.fail(key, f"{value!r} is beyond any float32")
        return
    low, high = integer_bounds(data_type, bits[1] if bits is not None else None)
    what = f"a {bits[1]}-bit field" if bits is not None else data_type
    if not math.isfinite(value) or value != int(value) or not low <= value <= high:
        raise c.fail(key, f"{value!r} is not a raw value of {what} ({low} .. {high}): the sentinel is compared "
                          "with the register's raw number (a signed type's 0xD8F1 is -9999)")


def _as_float32(value: float) -> float:
    """The float32 nearest value, as the device sends it (inf beyond the float32 range)."""
    try:
        result: float = struct.unpack(">f", struct.pack(">f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)
    return result


def load_profile(path: Path) -> VendorProfile:
    """One profile file; its name is the file's stem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ProfileError(f"{path}: cannot read: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"{path}: not valid TOML: {error}") from error
    return parse_profile(data, path.stem, str(path))


def _shipped() -> Iterable[tuple[str, str, str]]:
    """(name, source, text) of the profiles shipped as package data."""
    folder = resources.files("gateway.profiles") / "vendor"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            yield entry.name[: -len(".toml")], f"gateway/profiles/vendor/{entry.name}", entry.read_text("utf-8")


def load_vendor_profiles(
    extra_dirs: Sequence[Path] = (), *, system_dir: Path | None = SYSTEM_PROFILE_DIR
) -> dict[str, VendorProfile]:
    """Every profile by name: the shipped ones, then system_dir's, then extra_dirs' (a later one of the same
    name replaces an earlier one: a site may correct a shipped profile). A bad file raises ProfileError."""
    profiles: dict[str, VendorProfile] = {}
    for name, source, text in _shipped():
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ProfileError(f"{source}: not valid TOML: {error}") from error
        profiles[name] = parse_profile(data, name, source)
    for folder in ([system_dir] if system_dir is not None else []) + list(extra_dirs):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            profiles[path.stem] = load_profile(path)
    return profiles
