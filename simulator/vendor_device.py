"""Vendor Modbus devices in the simulator: a profile's register layout, fed by the same physics as the nodes.

A ``VendorSlave`` is a sans-IO Modbus RTU slave of this simulator (not
pymodbus, which the gateway's tests use as the independent server): it
answers function 3 and 4 reads from the words ``VendorProfile.encode``
lays out (scale, offset, type, byte and word order, bit fields, status
words), refuses what the profile says the device rejects with exception 2,
as it does reads outside the span of its registers, and any other function
with exception 1. Addresses inside the span that the profile does not name
read as 0 (a device's unused registers).

A ``VendorDevice`` stands on a simulated bus where a firmware node would:
``SimBus`` asks it to boot, tick, sample and handle frames. It samples its
physics model every ``update_ms`` (the transmitter refreshing its
registers) and keeps the true values of the newest sample as ground truth.
It has no history ring and no sample sequence on the wire: what the
gateway stores is whatever the registers held when it asked.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import cast

from firmware.modbus_rtu import BROADCAST, ILLEGAL_ADDRESS, ILLEGAL_FUNCTION, ILLEGAL_VALUE, MAX_FRAME, crc16
from firmware.node import Node
from gateway.profiles.vendor import MAX_READ_COUNT, Register, VendorProfile, load_profile, load_vendor_profiles
from simulator.bus import SimNode
from simulator.faults import Fault, SensorFaults
from simulator.sensors import TruthSource, no_faults

DEVICE_FAILURE = 4  # Modbus exception code: slave device failure
DEFAULT_UPDATE_MS = 1000  # a transmitter refreshes its registers about once a second
SAMPLES_KEPT = 3600  # recent samples a device remembers as ground truth


class VendorSlave:
    """A profile's registers behind Modbus RTU: one request frame in, the reply in self.tx. Pure."""

    def __init__(self, unit_id: int, profile: VendorProfile) -> None:
        self.unit_id = unit_id
        self.profile = profile
        self.tx = bytearray(MAX_FRAME)
        self.words: dict[tuple[int, int], int] = {}
        self.frames_ok = 0
        self.crc_errors = 0
        self.exceptions = 0
        self.failing = False  # its sensor is gone: reads get exception 4 (slave device failure)
        spans: dict[int, list[int]] = {}
        for r in profile.registers:
            spans.setdefault(r.function, []).extend(range(r.address, r.address + r.words))
        for s in profile.status:
            spans.setdefault(s.function, []).append(s.address)
        self._span = {function: (min(a), max(a)) for function, a in spans.items()}

    def load(self, values: Mapping[str, float | None], status: int = 0) -> None:
        """New register contents: the quantities' values (None: the profile's sentinel) and status bits."""
        self.words = self.profile.encode(values, status)

    def handle(self, frame: bytes | bytearray, length: int = -1) -> int:
        """Process one request; return the reply length in self.tx (0: silent)."""
        if length < 0:
            length = len(frame)
        if length < 4:
            return 0
        unit = frame[0]
        if unit not in (self.unit_id, BROADCAST):
            return 0
        crc = crc16(frame, length - 2)
        if frame[length - 2] != crc & 0xFF or frame[length - 1] != crc >> 8:
            self.crc_errors += 1
            return 0
        n = self._dispatch(frame, length - 2)
        if unit == BROADCAST:
            return 0
        self.frames_ok += 1
        return n

    def _dispatch(self, f: bytes | bytearray, n: int) -> int:
        function = f[1]
        if function not in (3, 4):
            return self._exception(function, ILLEGAL_FUNCTION)
        if n != 6:
            return self._exception(function, ILLEGAL_VALUE)
        address = (f[2] << 8) | f[3]
        count = (f[4] << 8) | f[5]
        if not 1 <= count <= MAX_READ_COUNT:
            return self._exception(function, ILLEGAL_VALUE)
        if self.failing:
            return self._exception(function, DEVICE_FAILURE)
        span = self._span.get(function)
        end = address + count - 1
        if span is None or address < span[0] or end > span[1] or any(
            f_ == function and first <= end and last >= address for f_, first, last in self.profile.rejected
        ):
            return self._exception(function, ILLEGAL_ADDRESS)
        tx = self.tx
        tx[0] = self.unit_id
        tx[1] = function
        tx[2] = 2 * count
        for i in range(count):
            word = self.words.get((function, address + i), 0)
            tx[3 + 2 * i] = word >> 8
            tx[4 + 2 * i] = word & 0xFF
        return self._finish(3 + 2 * count)

    def _exception(self, function: int, code: int) -> int:
        self.exceptions += 1
        self.tx[0] = self.unit_id
        self.tx[1] = (function | 0x80) & 0xFF
        self.tx[2] = code
        return self._finish(3)

    def _finish(self, n: int) -> int:
        crc = crc16(self.tx, n)
        self.tx[n] = crc & 0xFF
        self.tx[n + 1] = crc >> 8
        return n + 2


def _saturated(value: float, register: Register) -> float:
    low = -math.inf if register.low is None else register.low
    high = math.inf if register.high is None else register.high
    return register.held(min(max(value, low), high))  # and at the ends of its register's type


class _Sensor:
    """What the site's warm-up looks for on a node: its truth source."""

    def __init__(self, source: TruthSource) -> None:
        self.source = source


class _Bank:
    """The one register the bus reads of a node that fell behind: its sample interval."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_ms = interval_ms

    def get_holding_raw(self, name: str) -> int:
        if name != "sample_interval":
            raise KeyError(name)
        return self.interval_ms


class VendorDevice:
    """A vendor transmitter on a simulated bus, in the shape simulator/bus.py drives a firmware Node."""

    def __init__(
        self,
        profile: VendorProfile,
        unit_id: int,
        source: TruthSource,
        epoch_of_ms: Callable[[int], float],
        boot_ms: int = 0,
        update_ms: int = DEFAULT_UPDATE_MS,
        faults: Callable[[int], Sequence[Fault]] = no_faults,
        sensor_faults: SensorFaults | None = None,
    ) -> None:
        self.profile = profile
        self.kind = profile.kind
        self.slave = VendorSlave(unit_id, profile)
        self.sensor = _Sensor(source)
        self.bank = _Bank(update_ms)
        self.epoch_of_ms = epoch_of_ms
        self.boot_ms = boot_ms
        self.update_ms = update_ms
        self.next_sample_ms = boot_ms
        self.seq = 0
        self.faults = faults
        self.sensor_faults = sensor_faults if sensor_faults is not None else SensorFaults(random.Random(unit_id))
        self.last: dict[str, float] = {}  # true values of the newest sample (the ground truth)
        # (epoch time, values the registers held) of recent samples, newest last, after any sensor fault (a stuck
        # or spiking sensor, a missing one: {}): what a test compares stored readings with.
        self.samples: deque[tuple[float, dict[str, float]]] = deque(maxlen=SAMPLES_KEPT)

    @property
    def unit_id(self) -> int:
        return self.slave.unit_id

    def self_test(self, now_ms: int) -> None:
        self.sample(now_ms)

    def sample_due(self, now_ms: int) -> bool:
        return now_ms >= self.next_sample_ms

    def sample(self, now_ms: int) -> None:
        truth = self.sensor.source.values(self.epoch_of_ms(now_ms))
        # A transmitter saturates at the ends of its measuring range (the profile's range): that is what it
        # measured, and the truth a test compares with.
        self.last = {q: _saturated(truth[q], self.profile.register(q)) for q in self.profile.quantities}
        # The run's sensor faults act as on a node's sensor (simulator/faults.py SensorFaults).
        delivered = self.sensor_faults.apply(self.last, self.faults(now_ms))
        if delivered is None:  # the sensor is gone: the transmitter reports a device failure
            self.slave.failing = True
            self.samples.append((self.epoch_of_ms(now_ms), {}))
        else:
            held = {q: _saturated(v, self.profile.register(q)) for q, v in delivered.items()}
            self.slave.failing = False
            self.slave.load(held)
            self.samples.append((self.epoch_of_ms(now_ms), held))
        self.seq += 1
        self.next_sample_ms = now_ms + self.update_ms

    def tick(self, now_ms: int) -> None:
        """Nothing runs between samples on a transmitter."""

    def handle(self, frame: bytes | bytearray, length: int, now_ms: int) -> int:
        return self.slave.handle(frame, length)

    def restarted(self, now_ms: int) -> VendorDevice:
        """The device after a power cycle: same address and physics, registers empty until it samples."""
        return VendorDevice(self.profile, self.unit_id, self.sensor.source, self.epoch_of_ms, now_ms, self.update_ms,
                            self.faults, self.sensor_faults)


def find_profile(name_or_path: str) -> VendorProfile:
    """A profile by name (shipped, or in /etc/sitewatch/profiles), or the path of a .toml profile."""
    if name_or_path.endswith(".toml"):
        return load_profile(Path(name_or_path))
    known = load_vendor_profiles()
    if name_or_path not in known:
        raise KeyError(f"no vendor profile {name_or_path!r} (known: {', '.join(sorted(known))})")
    return known[name_or_path]


class VendorSimNode(SimNode):
    """A vendor device's place on a simulated bus: a reboot fault power-cycles the device."""

    def reboot(self, now_ms: int) -> None:
        device = self.device
        self.node = cast(Node, device.restarted(now_ms))
        self.boot(now_ms)

    @property
    def device(self) -> VendorDevice:
        node: object = self.node
        assert isinstance(node, VendorDevice)
        return node


def vendor_sim_node(device: VendorDevice, turnaround: float) -> VendorSimNode:
    # SimBus drives a node through unit_id, boot/self_test, tick, sample_due/sample, next_sample_ms, handle and
    # slave.tx, all of which VendorDevice has: it stands where the bus expects a firmware Node.
    return VendorSimNode(cast(Node, device), turnaround, unit_id=device.unit_id)
