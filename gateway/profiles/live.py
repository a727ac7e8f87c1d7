"""A read-only table computed afresh at each use: the kinds installed from folders join it as they come."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

V = TypeVar("V")


class LiveTable(Mapping[str, V]):
    """`table()` as a mapping, recomputed at every use (the tables are small; the kinds may grow)."""

    def __init__(self, table: Callable[[], Mapping[str, V]]) -> None:
        self._table = table

    def __getitem__(self, key: str) -> V:
        return self._table()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())
