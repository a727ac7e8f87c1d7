"""A real mosquitto for the tests: TLS with a CA made here, password file, ACL, persistence.

``broker`` (a pytest fixture) starts ``/usr/sbin/mosquitto -c <conf>`` on a
free loopback port and stops it after the test. What it makes, in a folder of
its own (mode 0755, owned by the ``mosquitto`` user when we run as root:
mosquitto started as root drops to that user and must still read its key,
password and ACL files and write its persistence file):

* a CA, a server certificate for 127.0.0.1 / localhost, and a client
  certificate, with the ``openssl`` command line;
* a password file (``mosquitto_passwd -b``) with three users: the gateway
  (``GATEWAY_USER``), a second gateway of another site, and the municipal
  platform's operator;
* an ACL: a gateway may publish only under its own prefix
  (``sitewatch/<site>/<gateway>/...``, not its ``cmd`` topic) and read only
  its ``cmd`` topic; the operator may read everything and publish commands.

A missing mosquitto, mosquitto_passwd or openssl is a test failure, never a
skip (the project's rule): ``make setup`` installs them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import queue
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import pytest

PREFIX = "sitewatch"
SITE = "site-a"
GATEWAY = "gw-1"
GATEWAY_USER = "gw-1"
OTHER_USER = "gw-9"  # a gateway of another site
OPERATOR_USER = "platform"
PASSWORDS = {GATEWAY_USER: "gw-secret-Xq7", OTHER_USER: "other-secret-9", OPERATOR_USER: "operator-secret-4"}
OWN = f"{PREFIX}/{SITE}/{GATEWAY}"

ACL = f"""\
# the gateway: its own data, status and replies; reads only its command topic
user {GATEWAY_USER}
topic write {OWN}/status
topic write {OWN}/reading/#
topic write {OWN}/aggregate/#
topic write {OWN}/alarm/#
topic write {OWN}/event/#
topic write {OWN}/health
topic write {OWN}/cmd/reply
topic read {OWN}/cmd

user {OTHER_USER}
topic readwrite {PREFIX}/site-b/gw-9/#

# the municipal platform: reads every gateway, sends commands
user {OPERATOR_USER}
topic read {PREFIX}/#
topic write {PREFIX}/+/+/cmd
"""


def _require(tool: str) -> str:
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.fail(f"{tool} is not installed (Debian packages mosquitto, mosquitto-clients, openssl): "
                    "`make setup` installs them")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*args: str, cwd: Path) -> None:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")


def make_certificates(folder: Path) -> None:
    """ca.crt/ca.key, server.crt/server.key (127.0.0.1, localhost), client.crt/client.key, all signed by the CA."""
    openssl = _require("openssl")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _run(openssl, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3",
         "-subj", "/CN=sitewatch test CA", cwd=folder)
    for name, cn, ext in (
        ("server", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ("client", GATEWAY_USER, "extendedKeyUsage=clientAuth\n"),
    ):
        (folder / f"{name}.ext").write_text(ext)
        _run(openssl, "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=folder)
        _run(openssl, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", "3", "-extfile", f"{name}.ext", cwd=folder)


@dataclass
class Mosquitto:
    folder: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None

    @property
    def ca(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def log(self) -> Path:
        return self.folder / "mosquitto.log"

    def prepare(self) -> None:
        make_certificates(self.folder)
        passwd = _require("mosquitto_passwd")
        password_file = self.folder / "passwd"
        password_file.touch()
        for user, password in PASSWORDS.items():
            _run(passwd, "-b", str(password_file), user, password, cwd=self.folder)
        (self.folder / "acl").write_text(ACL)
        (self.folder / "data").mkdir()
        (self.folder / "mosquitto.conf").write_text(
            "per_listener_settings false\n"
            "allow_anonymous false\n"
            f"password_file {password_file}\n"
            f"acl_file {self.folder / 'acl'}\n"
            "persistence true\n"
            f"persistence_location {self.folder / 'data'}/\n"
            "autosave_interval 1\n"
            "set_tcp_nodelay true\n"
            f"log_dest file {self.log}\n"
            "log_type all\n"
            f"listener {self.port} {self.host}\n"
            f"cafile {self.ca}\n"
            f"certfile {self.folder / 'server.crt'}\n"
            f"keyfile {self.folder / 'server.key'}\n"
            "require_certificate false\n"
        )
        for path in [self.folder, *self.folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        if os.geteuid() == 0:  # mosquitto drops to its own user: it must read the keys and write its data
            user = pwd.getpwnam("mosquitto")
            for path in [self.folder, *self.folder.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)

    def start(self, timeout: float = 20.0) -> None:
        exe = _require("mosquitto")
        self.process = subprocess.Popen([exe, "-c", str(self.folder / "mosquitto.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited ({self.process.returncode}): {err} {self.log_text()}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=1):
                return
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s: {self.log_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tls_context(self, client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        if client_cert:
            context.load_cert_chain(str(self.folder / "client.crt"), str(self.folder / "client.key"))
        return context

    def client(self, user: str, client_id: str = "", clean: bool = True) -> Listener:
        return Listener(self, user, client_id or f"test-{user}-{time.monotonic_ns()}", clean)


class Listener:
    """A paho client (its own network thread) for the test side: subscribe, collect, publish."""

    def __init__(self, broker: Mosquitto, user: str, client_id: str, clean: bool) -> None:
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self._connected = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        self.client.username_pw_set(user, PASSWORDS[user])
        self.client.tls_set_context(broker.tls_context())
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.on_connect = lambda *_args: self._connected.set()
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(20):
            raise RuntimeError(f"test client {user} could not connect: {broker.log_text()[-2000:]}")

    def subscribe(self, topic: str, qos: int = 1) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_args: done.set()
        self.client.subscribe(topic, qos)
        if not done.wait(20):
            raise RuntimeError(f"no SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos, retain)
        info.wait_for_publish(20)

    def wait_for(self, predicate: object, timeout: float = 30.0) -> paho.MQTTMessage:
        """The first message (consumed in order) for which predicate(message) is true."""
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching message within {timeout} s")
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if predicate(message):
                return message

    def drain(self) -> list[paho.MQTTMessage]:
        out = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self.messages.get_nowait())
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    folder = Path(tempfile.mkdtemp(prefix="sitewatch-mosquitto-"))
    server = Mosquitto(folder)
    try:
        server.prepare()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def operator(broker: Mosquitto) -> Iterator[Listener]:
    """The municipal platform's client, subscribed to everything under sitewatch/."""
    listener = broker.client(OPERATOR_USER)
    listener.subscribe(f"{PREFIX}/#")
    yield listener
    listener.close()
