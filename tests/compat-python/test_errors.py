"""REST refusals as the Python SDK (or a hand-signed request) sees them."""

import json
import time

import pytest
from pusher.errors import PusherBadAuth, PusherBadStatus

from conftest import md5_hex, resign_and_send


def user_events(client, channel):
    return [(e, d) for e, d in client.events_on(channel) if not e.startswith("pusher")]


def test_bad_secret_is_401_and_nothing_delivered(server, pysher_client):
    sub = pysher_client()
    sub.subscribe("guarded")

    with pytest.raises(PusherBadAuth) as exc:
        server.sdk(secret="wrong-secret").trigger("guarded", "forged", "x")
    assert "error" in json.loads(str(exc.value))

    assert server.sdk().trigger("guarded", "marker", "m") == {}
    sub.wait_event("guarded", "marker")
    assert user_events(sub, "guarded") == [("marker", "m")]


def test_stale_or_future_timestamp_is_401(server, pysher_client):
    sdk = server.sdk()
    sub = pysher_client()
    sub.subscribe("clock")
    req = sdk._pusher_client.trigger.make_request("clock", "tick", "late")

    r = resign_and_send(sdk, req, auth_timestamp=int(time.time()) - 700)
    assert r.status_code == 401, r.text
    assert "error" in r.json()
    r = resign_and_send(sdk, req, auth_timestamp=int(time.time()) + 700)
    assert r.status_code == 401, r.text

    # Control: the same hand signing with a current timestamp is accepted.
    r = resign_and_send(sdk, req, auth_timestamp=int(time.time()))
    assert r.status_code == 200, r.text
    assert r.json() == {}

    assert sdk.trigger("clock", "marker", "m") == {}
    sub.wait_event("clock", "marker")
    assert user_events(sub, "clock") == [("tick", "late"), ("marker", "m")]


def test_wrong_body_md5_is_401(server, pysher_client):
    sdk = server.sdk()
    sub = pysher_client()
    sub.subscribe("ledger")
    req = sdk._pusher_client.trigger.make_request("ledger", "entry", "genuine")
    tampered = req.body.replace(b"genuine", b"tampered")

    # Signature valid, but body_md5 is of some other body.
    r = resign_and_send(sdk, req, body_md5=md5_hex(b'{"other": "body"}'))
    assert r.status_code == 401, r.text
    assert "error" in r.json()
    # Signature and body_md5 of the genuine body, but another body sent.
    r = resign_and_send(sdk, req, body=tampered)
    assert r.status_code == 401, r.text

    # Control: genuine request, hand re-signed, goes through.
    r = resign_and_send(sdk, req)
    assert r.status_code == 200, r.text

    assert sdk.trigger("ledger", "marker", "m") == {}
    sub.wait_event("ledger", "marker")
    assert user_events(sub, "ledger") == [("entry", "genuine"), ("marker", "m")]


def test_payload_over_limit_is_413_and_nothing_delivered(start_server, pysher_for):
    srv = start_server("--app-max-event-payload-in-kb", "1")
    sdk = srv.sdk()
    sub = pysher_for(srv)
    sub.subscribe("big")

    with pytest.raises(PusherBadStatus, match=r"^413"):
        sdk.trigger("big", "huge", "x" * 2048)
    # A batch is validated whole: its small event is not sent either.
    with pytest.raises(PusherBadStatus, match=r"^413"):
        sdk.trigger_batch([
            {"channel": "big", "name": "small-in-batch", "data": "ok"},
            {"channel": "big", "name": "huge-in-batch", "data": "y" * 2048},
        ])

    assert sdk.trigger("big", "small", "z" * 100) == {}
    sub.wait_event("big", "small")
    assert user_events(sub, "big") == [("small", "z" * 100)]


def test_unknown_app_id_is_404(server):
    other_app = server.sdk(app_id="999")
    with pytest.raises(PusherBadStatus, match=r"^404"):
        other_app.trigger("news", "e", "d")
    with pytest.raises(PusherBadStatus, match=r"^404"):
        other_app.channels_info()
