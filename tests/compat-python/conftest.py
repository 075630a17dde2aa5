"""Harness for the Python compatibility suite.

Starts the real `ringcast` binary (RINGCAST_BIN) per test, and offers:
  * the official server SDK (`pusher`, pusher-http-python) pointed at it,
  * `PysherClient`: the `pysher` client (protocol 6) with every received frame recorded,
  * `RawClient`: a plain `websocket-client` connection for what pysher cannot do (sign-in),
  * helpers to re-sign SDK requests by hand (stale timestamp, wrong body_md5).

Every wait has a timeout; no test asserts wall-clock speed. Absence of a delivery is shown
with a later "marker" event on the same channel from the same publisher: a connection receives
one publisher's events on a channel in order, so once the marker has arrived anything sent
before it would have arrived too.
"""

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pusher
import pysher
import pytest
import requests
import websocket
from pusher.http import make_query_string
from pusher.signature import sign

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "target" / "debug" / "ringcast"

APP_ID = "12345"
APP_KEY = "app-key"
APP_SECRET = "app-secret"

BASE_FLAGS = [
    "--port", "0",
    "--bind-address", "127.0.0.1",
    "--shards", "2",
    "--app-id", APP_ID,
    "--app-key", APP_KEY,
    "--app-secret", APP_SECRET,
]

WAIT = 10.0  # seconds: upper bound of every wait for something that should happen
LISTENING_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


def shard_of(socket_id):
    """Shard index of a ringcast socket id (the two digits before the dot)."""
    return int(socket_id.split(".")[0][-2:])


# --------------------------------------------------------------------------- server


class Server:
    def __init__(self, extra_flags=()):
        binary = os.environ.get("RINGCAST_BIN") or str(DEFAULT_BIN)
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            pytest.fail(
                f"ringcast binary not found or not executable: {binary} "
                "(build it: cargo build -p ringcast, or set RINGCAST_BIN)",
                pytrace=False,
            )
        self.argv = [binary, *BASE_FLAGS, *extra_flags]
        # Own working dir (the server reads ./.env when present) and a minimal environment
        # (the server reads PORT, APP_* ... from it), so only the flags configure it.
        self.workdir = tempfile.mkdtemp(prefix="ringcast-compat-py-")
        env = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR") if k in os.environ}
        env["RUST_BACKTRACE"] = "1"
        self.lines = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.workdir,
            env=env,
        )
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True, name="ringcast-stderr")
        self._drain.start()
        self.port = self._wait_listening()
        self.base_url = f"http://127.0.0.1:{self.port}"

    def _drain_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _wait_listening(self):
        deadline = time.monotonic() + WAIT
        with self._cond:
            while True:
                for line in self.lines:
                    m = LISTENING_RE.search(line)
                    if m:
                        return int(m.group(1))
                if self.proc.poll() is not None and not self._drain.is_alive():
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.2))
        self.stop()
        pytest.fail(
            "ringcast did not report `listening on 127.0.0.1:PORT` within %ss (exit code %s)\n"
            "argv: %s\nstderr:\n%s" % (WAIT, self.proc.returncode, " ".join(self.argv), self.stderr()),
            pytrace=False,
        )

    def stderr(self):
        with self._cond:
            return "\n".join(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:  # pragma: no cover - kill cannot be ignored
            pass
        self._drain.join(timeout=WAIT)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # ---- clients bound to this server

    def sdk(self, app_id=APP_ID, key=APP_KEY, secret=APP_SECRET, **kwargs):
        """The official server SDK, exactly as a user would configure it for a self-hosted server."""
        return pusher.Pusher(
            app_id=app_id, key=key, secret=secret,
            host="127.0.0.1", port=self.port, ssl=False, timeout=WAIT, **kwargs,
        )


@pytest.fixture
def start_server(request):
    """Factory: start_server(*extra_flags) -> Server; all are killed at teardown."""
    servers = []

    def start(*extra_flags):
        s = Server(extra_flags)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()
        # Shown by pytest only when the test failed.
        print(f"---- ringcast stderr ({' '.join(s.argv[1:])}) ----\n{s.stderr()}")


@pytest.fixture
def server(start_server):
    return start_server()


@pytest.fixture
def clients(start_server):
    """Every PysherClient/RawClient registered here is closed at teardown (before the servers)."""
    made = []
    yield made
    for c in reversed(made):
        try:
            c.close()
        except Exception:  # teardown must not mask the test result
            pass


# --------------------------------------------------------------------------- pysher


class PysherClient:
    """pysher.Pusher pointed at the local server, recording everything it receives.

    Channel events are recorded where pysher dispatches them (connection.event_handler), so an
    event that arrives before pysher has registered the Channel object is still seen.
    Connection-level events (connection_established, pusher:error) via connection.bind.
    """

    def __init__(self, port, user_data=None, secret=APP_SECRET, key=APP_KEY):
        self.channel_events = []  # (channel, event, data)
        self.conn_events = []  # (event, data)
        self._cond = threading.Condition()
        self.socket_id = None
        self.pusher = pysher.Pusher(
            key,
            custom_host="127.0.0.1",
            port=port,
            secure=False,
            secret=secret,
            user_data=user_data,
            log_level=logging.INFO,
        )
        conn = self.pusher.connection
        pysher_dispatch = conn.event_handler

        def record_channel_event(event_name, data, channel_name):
            with self._cond:
                self.channel_events.append((channel_name, event_name, data))
                self._cond.notify_all()
            pysher_dispatch(event_name, data, channel_name)

        conn.event_handler = record_channel_event
        for name in ("pusher:connection_established", "pusher:error"):
            conn.bind(name, self._record_conn_event, name)

    def _record_conn_event(self, data, name):
        with self._cond:
            self.conn_events.append((name, data))
            self._cond.notify_all()

    def _wait(self, predicate, what, timeout=WAIT):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate()
                if result is not None:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {what}; socket {self.socket_id}; "
                        f"channel events: {self.channel_events!r}; connection events: {self.conn_events!r}"
                    )
                self._cond.wait(left)

    def connect(self):
        self.pusher.connect()

        def established():
            for name, data in self.conn_events:
                if name == "pusher:connection_established":
                    return json.loads(data)["socket_id"]
            return None

        self.socket_id = self._wait(established, "pusher:connection_established")
        # pysher itself must have taken the id (it signs channel auth with it)
        assert self.pusher.connection.socket_id == self.socket_id
        return self.socket_id

    def wait_event(self, channel, event, timeout=WAIT):
        """Wait for `event` on `channel`; returns (index in self.channel_events, data)."""

        def find():
            for i, (c, e, d) in enumerate(self.channel_events):
                if c == channel and e == event:
                    return i, d
            return None

        return self._wait(find, f"{event!r} on {channel!r}", timeout)

    def subscribe(self, channel):
        """Subscribe with pysher (it signs private/presence itself) and wait for success."""
        ch = self.pusher.subscribe(channel)
        _, data = self.wait_event(channel, "pusher_internal:subscription_succeeded")
        return ch, data

    def events_on(self, channel):
        with self._cond:
            return [(e, d) for c, e, d in self.channel_events if c == channel]

    def close(self):
        """Close cleanly and wait for pysher's thread to end.

        Not pysher.disconnect(): it closes the socket from this thread while pysher's reader
        thread sits in epoll on it (websocket-client 1.9, ping_timeout=100 set by pysher), and
        epoll does not wake on a closed fd, so the reader stays up to 100 s. Instead: stop
        pysher's reconnect loop, send a close frame, and let the reader thread receive the
        server's echoed close frame and finish by itself.
        """
        conn = self.pusher.connection
        conn.needs_reconnect = False
        conn.disconnect_called = True
        if conn.is_alive():
            app = conn.socket
            ws = app.sock if app is not None else None
            if ws is not None and ws.connected:
                try:
                    ws.send_close()
                except Exception:
                    pass
            conn.join(WAIT)
            if conn.is_alive() and ws is not None and ws.sock is not None:
                # No close echo within WAIT: end the TCP connection so the reader wakes (EOF).
                try:
                    ws.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.join(WAIT)
            assert not conn.is_alive(), f"pysher thread of {self.socket_id} did not end"
        self.pusher.channels = {}


@pytest.fixture
def pysher_for(clients):
    """Factory: pysher_for(server, user_data=None, secret=...) -> connected PysherClient."""

    def make(srv, **kwargs):
        c = PysherClient(srv.port, **kwargs)
        clients.append(c)
        c.connect()
        return c

    return make


@pytest.fixture
def pysher_client(server, pysher_for):
    """Factory: pysher_client(user_data=None, secret=...) -> PysherClient on the default server."""
    return lambda **kwargs: pysher_for(server, **kwargs)


# --------------------------------------------------------------------------- raw websocket


class RawClient:
    """A bare protocol-7 connection (websocket-client), for sign-in and close codes."""

    def __init__(self, port, key=APP_KEY):
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}/app/{key}?protocol=7&client=compat-python&version=0",
            timeout=WAIT,
        )
        msg = self.recv_json()
        assert msg["event"] == "pusher:connection_established", msg
        self.socket_id = json.loads(msg["data"])["socket_id"]

    def send(self, event, data, channel=None):
        msg = {"event": event, "data": data}
        if channel is not None:
            msg["channel"] = channel
        self.ws.send(json.dumps(msg))

    def recv_frame(self, timeout=WAIT):
        """(opcode, payload bytes); ping frames are answered by websocket-client and skipped."""
        self.ws.settimeout(timeout)
        opcode, frame = self.ws.recv_data_frame(control_frame=False)
        return opcode, frame.data

    def recv_json(self, timeout=WAIT):
        opcode, data = self.recv_frame(timeout)
        assert opcode == websocket.ABNF.OPCODE_TEXT, (opcode, data)
        return json.loads(data)

    def recv_until_event(self, event, timeout=WAIT):
        """Skip other text frames until `event` arrives; returns that message."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {event!r}; got {seen!r}")
            msg = self.recv_json(left)
            if msg.get("event") == event:
                return msg
            seen.append(msg)

    def recv_close_code(self, timeout=WAIT):
        """Read frames until the close frame; returns (close code, text messages before it)."""
        deadline = time.monotonic() + timeout
        before = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for a close frame; got {before!r}")
            opcode, data = self.recv_frame(left)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                return code, before
            before.append(json.loads(data))

    def sign_in(self, sdk, user_data):
        """pusher:signin with the auth computed by the SDK's authenticate_user."""
        auth = sdk.authenticate_user(self.socket_id, user_data)
        self.send("pusher:signin", {"auth": auth["auth"], "user_data": auth["user_data"]})
        msg = self.recv_until_event("pusher:signin_success")
        return auth, msg

    def close(self):
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass


@pytest.fixture
def raw_client(server, clients):
    def make():
        c = RawClient(server.port)
        clients.append(c)
        return c

    return make


# --------------------------------------------------------------------------- hand-signed requests


def resign_and_send(sdk, req, body=None, **overrides):
    """Send an SDK-built Request after replacing query params and signing again by hand.

    `req` comes from `sdk._pusher_client.<method>.make_request(...)` (the SDK's own Request,
    whose body and query it built). `overrides` replace query values (e.g. auth_timestamp,
    body_md5) before the signature is recomputed with the SDK's own signing helpers
    (pusher.signature.sign over "METHOD\\nPATH\\nsorted query"). `body` replaces the bytes sent
    (the signed body_md5 is left as it was). Returns the requests.Response.
    """
    client = sdk._pusher_client
    params = dict(req.query_params)
    params.pop("auth_signature", None)
    params.update({k: str(v) for k, v in overrides.items()})
    string_to_sign = "\n".join([req.method, req.path, make_query_string(params)])
    params["auth_signature"] = sign(client.secret, string_to_sign)
    url = f"{req.base_url}{req.path}?{make_query_string(params)}"
    return requests.request(req.method, url, headers=req.headers,
                            data=req.body if body is None else body, timeout=WAIT)


def md5_hex(b):
    return hashlib.md5(b).hexdigest()
