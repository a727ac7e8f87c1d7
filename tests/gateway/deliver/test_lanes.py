"""Sink lanes: a cursor that reads only some kinds of records (the MQTT sink's alarm lane), and the stop of a pump."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.deliver.dispatch import Delivery
from gateway.deliver.queue import Batch, DurableQueue
from gateway.deliver.sinks import Lane, lanes_of
from tests.gateway.deliver.test_queue import Wall, alarm, readings

ALARMS = frozenset({"alarm"})


def test_a_lane_reads_only_its_kinds_and_the_other_lane_skips_them(tmp_path: Path) -> None:
    q = DurableQueue(tmp_path / "q.sqlite3", ["a", "b"])
    q.append([*readings(3), alarm(0), *readings(2, start=3), alarm(1)])
    only = q.read("a", kinds=ALARMS)
    assert [item.kind for item in only.items] == ["alarm", "alarm"]
    rest = q.read("b", skip=ALARMS)
    assert [item.kind for item in rest.items] == ["reading"] * 5
    q.close()


def test_a_lane_with_nothing_of_its_kinds_moves_to_the_end_and_never_holds_back_retention(tmp_path: Path) -> None:
    wall = Wall()
    q = DurableQueue(tmp_path / "q.sqlite3", ["alarms", "rest"], wall=wall)
    q.append(readings(10))
    assert q.read("alarms", kinds=ALARMS).items == ()
    assert q.cursor("alarms") == q.last_id() == 10
    q.confirm("rest", 10)
    wall.t += 10 * 86400
    assert q.prune(86400) == 10
    q.close()


def test_a_lane_resumes_from_its_own_cursor_after_a_restart(tmp_path: Path) -> None:
    q = DurableQueue(tmp_path / "q.sqlite3", ["alarms", "rest"])
    q.append([alarm(0), *readings(5)])
    first = q.read("alarms", kinds=ALARMS)
    q.confirm("alarms", first.last_id)
    q.append([alarm(1)])
    q.close()
    again = DurableQueue(tmp_path / "q.sqlite3", ["alarms", "rest"])
    items = again.read("alarms", kinds=ALARMS).items
    assert [i.record.time for i in items] == [alarm(1).time]  # type: ignore[union-attr]
    again.close()


class Slow:
    """A sink that takes a while per batch (a broker far away)."""

    name = "slow"
    lanes = (Lane("slow"),)

    def __init__(self) -> None:
        self.batches = 0

    async def send(self, batch: Batch) -> int:
        self.batches += 1
        await asyncio.sleep(0)
        return 1  # one record per call: a long backlog

    def close(self) -> None:
        pass


async def test_a_delivery_stops_pumping_a_long_backlog_when_asked(tmp_path: Path) -> None:
    q = DurableQueue(tmp_path / "q.sqlite3", ["slow"])
    q.append(readings(5000))
    sink = Slow()
    assert lanes_of(sink) == (Lane("slow"),)
    delivery = Delivery(q, sink, interval=0.0)
    stop = asyncio.Event()
    task = asyncio.create_task(delivery.run(stop))
    deadline = asyncio.get_running_loop().time() + 60
    while sink.batches < 5:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert q.pending("slow") > 0  # it stopped before the backlog was gone
    q.close()
