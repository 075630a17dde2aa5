"""Terminating a signed-in user's connections (sign-in done on raw sockets: pysher has none)."""

import json

import pytest
from pusher.http import POST, Request

from conftest import APP_ID


def assert_terminated(conn):
    code, before = conn.recv_close_code()
    errors = [m for m in before if m.get("event") == "pusher:error"]
    assert errors, f"no pusher:error before the close frame: {before!r}"
    assert errors[-1]["data"]["code"] == 4009
    assert code == 4009


def test_sign_in_with_sdk_authenticate_user(server, raw_client):
    sdk = server.sdk()
    conn = raw_client()
    auth, msg = conn.sign_in(sdk, {"id": "dave", "user_info": {"name": "Dave"}})
    assert json.loads(msg["data"])["user_data"] == auth["user_data"]


def test_terminate_user_connections_signed_with_sdk_helper(server, raw_client):
    sdk = server.sdk()
    tab1 = raw_client()
    tab1.sign_in(sdk, {"id": "mallory", "user_info": {"name": "M"}})
    tab2 = raw_client()
    tab2.sign_in(sdk, {"id": "mallory"})
    bystander = raw_client()
    bystander.sign_in(sdk, {"id": "trent"})

    # The documented route, signed by the SDK's own Request class and sent by its backend.
    client = sdk._pusher_client
    req = Request(client, POST, f"/apps/{APP_ID}/users/mallory/terminate_connections", {})
    assert client.http.send_request(req) == {}

    assert_terminated(tab1)
    assert_terminated(tab2)

    # Another user's connection is untouched.
    bystander.send("pusher:ping", {})
    assert bystander.recv_until_event("pusher:pong")["event"] == "pusher:pong"


# pusher 3.3.4's terminate_user_connections() POSTs to /users/{id}/terminate_connections (no
# /apps/{app_id} prefix); ringcast accepts that path and finds the app by the signed auth_key.
def test_sdk_terminate_user_connections_method(server, raw_client):
    sdk = server.sdk()
    conn = raw_client()
    conn.sign_in(sdk, {"id": "mallory"})
    assert sdk.terminate_user_connections("mallory") == {}
    assert_terminated(conn)
