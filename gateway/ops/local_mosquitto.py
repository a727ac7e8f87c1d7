"""A private mosquitto on a free loopback port, for the demo: plain MQTT, anonymous, nothing persisted.

Only for a demo on one machine: the listener is bound to 127.0.0.1. A
site's broker has TLS, passwords and an ACL (docs/mqtt.md).
"""

from __future__ import annotations

import shlex
import socket
from pathlib import Path

from gateway.ops.local_server import LocalServer, find_binary, free_port

# mosquitto started as root drops to the mosquitto user: the config is read before that, and no file
# (pid, persistence) is written after it, so none has to be the mosquitto user's.
MOSQUITTO_CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
"""


class LocalMosquitto(LocalServer):
    name = "mosquitto"

    def __init__(self, root: Path, binary: str) -> None:
        super().__init__(root, binary)
        self.port = free_port()
        self.config = root / "mosquitto.conf"
        self.config.write_text(MOSQUITTO_CONFIG.format(port=self.port))

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.config)]

    def ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2.0):
            return True


def subscribe_command(port: int, topic: str) -> str:
    """A command a user can paste to watch the topics (mosquitto_sub when installed)."""
    client = "mosquitto_sub" if find_binary("mosquitto_sub") else "mosquitto_sub (Debian: mosquitto-clients)"
    return f"{client} -h 127.0.0.1 -p {port} -t {shlex.quote(topic)} -v"
