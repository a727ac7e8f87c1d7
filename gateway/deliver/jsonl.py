"""A sink that appends every record to a JSON Lines file: one object per line.

For an archive on a USB stick, or for feeding another program (``tail -F``).
Each line is ``{"queue_id": ..., "id": ..., "kind": ..., "record": {...}}``
with the record's body as the queue stores it (records.py); ``queue_id`` and
``id`` let a reader drop the duplicates that at-least-once delivery can
produce after a crash.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from gateway.deliver.queue import Batch
from gateway.deliver.records import to_json
from gateway.deliver.sinks import SINKS, SinkError


@SINKS.register("jsonl")
class JsonLinesSink:
    def __init__(self, name: str, path: str, fsync: bool = True) -> None:
        self.name = name
        self.path = Path(path)
        self.fsync = fsync

    async def send(self, batch: Batch) -> int:
        return await asyncio.to_thread(self._write, batch)

    def _write(self, batch: Batch) -> int:
        lines = [
            json.dumps({"queue_id": batch.queue_id, "id": item.id, "kind": item.kind}, separators=(",", ":"))[:-1]
            + ',"record":' + to_json(item.record) + "}\n"
            for item in batch.items
        ]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write("".join(lines))
                out.flush()
                if self.fsync:
                    os.fsync(out.fileno())
        except OSError as error:
            raise SinkError(f"{self.path}: {error.strerror or error}") from error
        return len(lines)

    def close(self) -> None:
        pass
