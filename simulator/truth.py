"""Ground truth of a simulated run, as JSON Lines.

One line per sample a simulated sensor produced:

    {"time": 1744668000.0, "bus": "bus0", "unit_id": 1, "kind": "dust",
     "values": {"pm10": 83.2, ...}, "faults": ["stuck_value(pm10)"]}

- time: the simulated moment in seconds since the Unix epoch (the time base of
  the gateway's readings), so a test can line truth up with what was stored;
- values: true physical values by register name (firmware/regmap.py units),
  before any sensor fault; empty when the sensor produced nothing;
- faults: labels of the faults active on that node at that time (sorted);
- sequence (optional): the node's sample sequence number (input register
  sample_seq) of that sample, so a reader's values line up with their truth
  exactly; it restarts at 1 when the node reboots.

:class:`TruthWriter` writes a file (flushes every line, so a crashed run still
leaves a readable file); :func:`read_truth` reads one back and checks it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from firmware import regmap

# Every kind the register map knows (live: a kind installed from a profile folder counts).
KINDS: dict[str, int] = regmap.KIND_CODES


class TruthError(ValueError):
    """A ground-truth file or record that is not what this module writes."""


@dataclass(frozen=True, slots=True)
class TruthRecord:
    time: float
    bus: str
    unit_id: int
    kind: str
    values: Mapping[str, float] = field(default_factory=dict)
    faults: tuple[str, ...] = ()
    sequence: int | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.time):
            raise TruthError(f"time: {self.time!r} is not a finite number")
        if not self.bus:
            raise TruthError("bus: empty")
        if not 0 <= self.unit_id <= 247:
            raise TruthError(f"unit_id: {self.unit_id} is outside 0 .. 247")
        if self.kind not in KINDS:
            raise TruthError(f"kind: {self.kind!r} is not one of {', '.join(KINDS)}")
        for name, value in self.values.items():
            if not math.isfinite(value):
                raise TruthError(f"values.{name}: {value!r} is not a finite number")
        if self.sequence is not None and not 0 <= self.sequence <= 0xFFFFFFFF:
            raise TruthError(f"sequence: {self.sequence} is outside 0 .. 2**32 - 1")

    def to_json(self) -> str:
        record: dict[str, object] = {
            "time": self.time,
            "bus": self.bus,
            "unit_id": self.unit_id,
            "kind": self.kind,
            "values": dict(self.values),
            "faults": list(self.faults),
        }
        if self.sequence is not None:
            record["sequence"] = self.sequence
        return json.dumps(record, allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> TruthRecord:
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise TruthError(f"not JSON: {error}") from None
        if not isinstance(data, dict):
            raise TruthError("a record must be a JSON object")
        expected = {"time", "bus", "unit_id", "kind", "values", "faults"}
        optional = {"sequence"}
        if not expected <= set(data) <= expected | optional:
            missing = sorted(expected - set(data))
            extra = sorted(set(data) - expected - optional)
            raise TruthError(f"keys: missing {missing}, unexpected {extra}")
        time, bus, unit_id, kind = data["time"], data["bus"], data["unit_id"], data["kind"]
        values, faults = data["values"], data["faults"]
        if isinstance(time, bool) or not isinstance(time, int | float):
            raise TruthError(f"time: expected a number, got {time!r}")
        if not isinstance(bus, str):
            raise TruthError(f"bus: expected a string, got {bus!r}")
        if isinstance(unit_id, bool) or not isinstance(unit_id, int):
            raise TruthError(f"unit_id: expected an integer, got {unit_id!r}")
        if not isinstance(kind, str):
            raise TruthError(f"kind: expected a string, got {kind!r}")
        if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) for k, v in values.items()
        ):
            raise TruthError("values: expected an object of numbers")
        if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
            raise TruthError("faults: expected a list of strings")
        sequence = data.get("sequence")
        if sequence is not None and (isinstance(sequence, bool) or not isinstance(sequence, int)):
            raise TruthError(f"sequence: expected an integer, got {sequence!r}")
        values_ = {k: float(v) for k, v in values.items()}
        return cls(float(time), bus, unit_id, kind, values_, tuple(faults), sequence)


class TruthWriter:
    """Appends ground-truth records to a JSON Lines file (created or truncated on open)."""

    def __init__(self, path: str | Path, *, append: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("a" if append else "w", encoding="utf-8")
        self.count = 0

    def write(self, record: TruthRecord) -> None:
        if self._file is None:
            raise ValueError(f"{self.path}: the truth writer is closed")
        self._file.write(record.to_json() + "\n")
        self._file.flush()
        self.count += 1

    def record(
        self,
        time: float,
        bus: str,
        unit_id: int,
        kind: str,
        values: Mapping[str, float],
        faults: Iterable[str] = (),
        sequence: int | None = None,
    ) -> TruthRecord:
        """Build, write and return one record."""
        entry = TruthRecord(time, bus, unit_id, kind, dict(values), tuple(sorted(faults)), sequence)
        self.write(entry)
        return entry

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> TruthWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def iter_truth(path: str | Path) -> Iterator[TruthRecord]:
    """Records of a truth file in order; TruthError names the file and line of a bad one."""
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield TruthRecord.from_json(line)
            except TruthError as error:
                raise TruthError(f"{path}:{number}: {error}") from None


def read_truth(path: str | Path) -> list[TruthRecord]:
    return list(iter_truth(path))
