"""A broker that keeps the connection but sends no PUBACK (stalled: here, mosquitto stopped with SIGSTOP).

The sink waits for each publish's PUBACK at most ``publish_timeout_s`` (the sliding window's head deadline,
gateway/deliver/mqtt.py), then fails the batch: nothing is confirmed without its PUBACK, the publishes it gave
up on leave the client's table of pending publishes (no leak across retries), PUBACKs that come after it gave
up are harmless, and once the broker answers again every record is delivered.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.gateway.deliver.test_mqtt import Harness, Target, reading, until
from tests.support.mosquitto import Mosquitto


async def test_a_missing_puback_fails_the_batch_after_the_timeout_and_the_records_go_again(
    broker: Mosquitto, tmp_path: Path
) -> None:
    h = Harness(broker, tmp_path, Target(), publish_timeout_s=1.0)
    await h.start()
    lane = h.deliveries[1]
    assert broker.process is not None
    try:
        await h.append([reading(0)])
        await until(lambda: lane.stats.delivered == 1, "the first record is delivered")
        os.kill(broker.process.pid, signal.SIGSTOP)  # the TCP connection stays; nothing is answered
        try:
            await h.append([reading(i) for i in range(1, 6)])
            await until(lambda: lane.stats.failures >= 3, "three sends fail for want of a PUBACK", 30)
            assert lane.stats.delivered == 1, "confirmed without a PUBACK"
            assert "no PUBACK within 1 s" in lane.stats.last_error, lane.stats.last_error
            client = h.sink._client
            assert client is not None
            # The send in progress has its five publishes in the table at most; the failed ones left none behind.
            assert len(client._pending_publishes) <= 5, client._pending_publishes
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        await until(lambda: lane.stats.delivered == 6, "every record is delivered once the broker answers", 60)
        assert lane.stats.down_since is None
    finally:
        await h.close()
