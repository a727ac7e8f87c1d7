"""Issue 9 review (audit9): the retained status after a gateway restarted before the broker saw it die.

A Pi that loses power (or a gateway killed with ``kill -9`` whose TCP connection the broker has not yet
noticed) comes back within the keepalive: the new connection, same client id, takes the session over. The
broker may publish the old connection's last will ("offline"); the retained status must end up "online",
because the gateway is.
"""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as paho

from gateway.deliver.mqtt_topics import TopicTree, status_payload
from tests.gateway.deliver.test_mqtt import body, message, running, until
from tests.support.mosquitto import GATEWAY, GATEWAY_USER, OPERATOR_USER, OWN, PASSWORDS, SITE, Listener, Mosquitto


def stale_session(broker: Mosquitto) -> paho.Client:
    """The gateway's client id, connected with its will, then silent: what a power cut leaves at the broker."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"sitewatch-{SITE}-{GATEWAY}",
                         clean_session=False)
    client.username_pw_set(GATEWAY_USER, PASSWORDS[GATEWAY_USER])
    client.tls_set_context(broker.tls_context())
    tree = TopicTree("sitewatch", SITE, GATEWAY)
    client.will_set(tree.status, status_payload(tree, "offline", 0.0, "connection lost"), qos=1, retain=True)
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    client.connect(broker.host, broker.port, keepalive=600)
    client.loop_start()
    assert connected.wait(20), broker.log_text()[-2000:]
    online = client.publish(tree.status, status_payload(tree, "online", 0.0, "connected"), qos=1, retain=True)
    online.wait_for_publish(20)
    client.loop_stop()  # no more reads, pings or DISCONNECT: the socket stays open, as after a power cut
    return client


async def test_after_a_session_takeover_the_retained_status_is_online(
    broker: Mosquitto, operator: Listener, tmp_path: Path
) -> None:
    old = stale_session(broker)
    try:
        async with running(broker, tmp_path) as h:
            # The new connection's online status (the stale one's says time 0). Mosquitto 2 takes the session
            # over without publishing the old connection's will; a broker that does publishes it before the
            # CONNACK, so whatever it did is settled once the new status has arrived.
            await message(operator, lambda m: m.topic == f"{OWN}/status" and body(m)["time"] != 0.0
                          and body(m)["state"] == "online")
            await until(lambda: h.sink.connections >= 1, "the new connection")
            late = broker.client(OPERATOR_USER)
            try:
                late.subscribe(f"{OWN}/status")
                retained = late.wait_for(lambda m: True, 20)
            finally:
                late.close()
            assert retained.retain and body(retained)["state"] == "online", body(retained)
    finally:
        sock = old.socket()
        if sock is not None:
            sock.close()
