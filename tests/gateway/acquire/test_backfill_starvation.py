"""Which node's backfill gets bus time: an intermittent failure must not restart a node's wait."""

from __future__ import annotations

from gateway.acquire.poller import BusConfig, BusPoller, NodeConfig


def poller_with_backlog() -> BusPoller:
    bus = BusConfig("bus0", "/dev/null-sitewatch-test", (NodeConfig("dust-1", "dust", 1, 1.0),))
    poller = BusPoller(bus, lambda readings: None)
    node = poller._nodes[0]
    # Sample 1 delivered, then sample 5 seen: 2..4 wait in the node's ring to be fetched.
    node.backfill.sample(1, 1, 100.0, [])
    node.backfill.sample(5, 1, 104.0, [])
    assert node.backfill.busy
    node.backfill_since = 0.0
    poller.health["dust-1"].answered = 10
    return poller


def test_a_failed_poll_defers_the_backfill_but_its_wait_keeps_counting() -> None:
    poller = poller_with_backlog()
    node, health = poller._nodes[0], poller.health["dust-1"]
    health.consecutive_failures = 1  # one CRC error just now: the node is still online
    assert poller._backfill_candidate(20.0, starving=True) is None
    assert node.backfill_since == 0.0
    health.consecutive_failures = 0
    # It has waited 20 s for free bus time: it goes before the next poll.
    assert poller._backfill_candidate(20.0, starving=True) is node


def test_an_offline_node_does_not_count_as_waiting() -> None:
    poller = poller_with_backlog()
    node, health = poller._nodes[0], poller.health["dust-1"]
    health.consecutive_failures = 10  # offline
    assert poller._backfill_candidate(20.0, starving=True) is None
    assert node.backfill_since == 20.0
    health.consecutive_failures = 0
    assert poller._backfill_candidate(25.0, starving=True) is None  # back for 5 s only
