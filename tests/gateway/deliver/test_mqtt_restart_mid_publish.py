"""Issue 9 review (audit9): the broker restarted while a backlog is being published (QoS 1 in flight).

The gateway has records in flight (a window of publishes awaiting PUBACK) when mosquitto stops. The
publishes in flight when the connection died must fail at once, so the records go again on the next
connection: not wait out ``publish_timeout_s`` for a PUBACK the dead connection will never carry (the sink
here has an hour of it, so a stall fails the test's deadline). Nothing is confirmed without its PUBACK
(test_mqtt.py's restart test) and every record is delivered.
"""

from __future__ import annotations

from pathlib import Path

from tests.gateway.deliver.test_mqtt import Harness, Target, reading, until
from tests.support.mosquitto import Mosquitto

COUNT = 3000


async def test_publishes_in_flight_when_the_broker_stops_fail_at_once_and_go_again(
    broker: Mosquitto, tmp_path: Path
) -> None:
    h = Harness(broker, tmp_path, Target(), publish_timeout_s=3600.0)
    await h.start()
    try:
        await h.append([reading(i) for i in range(COUNT)])
        await until(lambda: h.sink.published >= COUNT // 10, "the backlog is being published")
        broker.stop()  # with publishes in flight
        assert h.deliveries[1].stats.delivered < COUNT, "the backlog drained before the broker stopped"
        await until(lambda: h.deliveries[1].stats.failures > 0, "the in-flight batch fails", 60)
        broker.start()
        await until(lambda: h.deliveries[1].stats.delivered == COUNT, "the cursor reaches the end", 60)
        assert h.sink.published >= COUNT
    finally:
        await h.close()
