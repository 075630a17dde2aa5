"""Publishing with the Python server SDK, receiving with pysher (and a raw socket for users)."""

import base64
import json
import queue

import nacl.secret
import pytest
from pusher.crypto import generate_shared_secret

from conftest import WAIT

MASTER_KEY = bytes(range(32))
MASTER_KEY_B64 = base64.b64encode(MASTER_KEY).decode()


def test_trigger_public_channel_reaches_pysher(server, pysher_client):
    sdk = server.sdk()
    client = pysher_client()
    channel, data = client.subscribe("news")
    assert json.loads(data) == {}

    # What a pysher user writes: bind a callback on the channel.
    received = queue.Queue()
    channel.bind("breaking", received.put)

    assert sdk.trigger("news", "breaking", {"title": "hello", "n": 1}) == {}
    assert json.loads(received.get(timeout=WAIT)) == {"title": "hello", "n": 1}

    # A string payload is relayed exactly as published.
    assert sdk.trigger("news", "breaking", "plain text, not JSON") == {}
    assert received.get(timeout=WAIT) == "plain text, not JSON"


def test_trigger_private_channel(server, pysher_client):
    sdk = server.sdk()
    client = pysher_client()  # pysher signs "socket_id:channel" with the app secret itself
    client.subscribe("private-orders")

    assert sdk.trigger("private-orders", "created", {"id": 7}) == {}
    _, data = client.wait_event("private-orders", "created")
    assert json.loads(data) == {"id": 7}


def test_private_subscription_signed_with_wrong_secret_is_refused(server, pysher_client):
    client = pysher_client(secret="not-the-app-secret")
    client.pusher.subscribe("private-orders")
    _, data = client.wait_event("private-orders", "pusher:subscription_error")
    err = json.loads(data)
    assert err["type"] == "AuthError"
    assert err["status"] == 401
    assert "pusher_internal:subscription_succeeded" not in [e for e, _ in client.events_on("private-orders")]


def test_trigger_presence_channel_with_members(server, pysher_client):
    sdk = server.sdk()
    alice = pysher_client(user_data={"user_id": "alice", "user_info": {"name": "Alice"}})
    _, data = alice.subscribe("presence-lobby")
    presence = json.loads(data)["presence"]
    assert presence == {"ids": ["alice"], "hash": {"alice": {"name": "Alice"}}, "count": 1}

    bob = pysher_client(user_data={"user_id": "bob", "user_info": {"name": "Bob"}})
    _, data = bob.subscribe("presence-lobby")
    presence = json.loads(data)["presence"]
    assert sorted(presence["ids"]) == ["alice", "bob"]
    assert presence["hash"] == {"alice": {"name": "Alice"}, "bob": {"name": "Bob"}}
    assert presence["count"] == 2

    _, added = alice.wait_event("presence-lobby", "pusher_internal:member_added")
    assert json.loads(added) == {"user_id": "bob", "user_info": {"name": "Bob"}}

    assert sdk.trigger("presence-lobby", "announce", {"text": "hi all"}) == {}
    for member in (alice, bob):
        _, data = member.wait_event("presence-lobby", "announce")
        assert json.loads(data) == {"text": "hi all"}


def test_trigger_private_encrypted_channel_is_relayed_untouched(server, pysher_client):
    # pysher cannot decrypt; it subscribes (signed like any private- channel) and we open the
    # payload with the SDK's shared-secret derivation, as pusher-js would.
    sdk = server.sdk(encryption_master_key_base64=MASTER_KEY_B64)
    client = pysher_client()
    client.subscribe("private-encrypted-vault")

    assert sdk.trigger("private-encrypted-vault", "secret", {"pin": 1234}) == {}
    _, data = client.wait_event("private-encrypted-vault", "secret")
    payload = json.loads(data)
    assert set(payload) == {"nonce", "ciphertext"}
    box = nacl.secret.SecretBox(generate_shared_secret(b"private-encrypted-vault", MASTER_KEY))
    plain = box.decrypt(base64.b64decode(payload["ciphertext"]), base64.b64decode(payload["nonce"]))
    assert json.loads(plain) == {"pin": 1234}


def test_sdk_own_rules_for_encrypted_channels(server):
    # Refused by the SDK before any request is sent (its own rules, nothing server-side).
    with pytest.raises(ValueError, match="master key"):
        server.sdk().trigger("private-encrypted-vault", "secret", "x")
    with pytest.raises(ValueError, match="multiple channels"):
        server.sdk(encryption_master_key_base64=MASTER_KEY_B64).trigger(
            ["private-encrypted-a", "private-encrypted-b"], "secret", "x")


def test_trigger_batch(server, pysher_client):
    sdk = server.sdk()
    first = pysher_client()
    first.subscribe("batch-public")
    second = pysher_client()
    second.subscribe("private-batch")

    resp = sdk.trigger_batch([
        {"channel": "batch-public", "name": "one", "data": {"n": 1}},
        {"channel": "private-batch", "name": "two", "data": "second"},
        {"channel": "batch-public", "name": "three", "data": {"n": 3}},
    ])
    assert resp == {}
    _, data = first.wait_event("batch-public", "one")
    assert json.loads(data) == {"n": 1}
    _, data = first.wait_event("batch-public", "three")
    assert json.loads(data) == {"n": 3}
    _, data = second.wait_event("private-batch", "two")
    assert data == "second"
    # Each event went only to its own channel.
    assert [e for e, _ in first.events_on("batch-public") if not e.startswith("pusher")] == ["one", "three"]

    # With `info`, the reply carries one entry per batch event.
    resp = sdk.trigger_batch([
        {"channel": "batch-public", "name": "four", "data": "x", "info": "subscription_count"},
    ])
    assert resp == {"batch": [{"subscription_count": 1}]}
    first.wait_event("batch-public", "four")


def test_socket_id_excludes_that_connection(server, pysher_client):
    sdk = server.sdk()
    sender = pysher_client()
    other = pysher_client()
    sender.subscribe("chat")
    other.subscribe("chat")

    assert sdk.trigger("chat", "said", {"text": "hello"}, socket_id=sender.socket_id) == {}
    _, data = other.wait_event("chat", "said")
    assert json.loads(data) == {"text": "hello"}

    # Marker published after it, without exclusion: once the sender has it, "said" would
    # already have arrived too.
    assert sdk.trigger("chat", "marker", "m") == {}
    sender.wait_event("chat", "marker")
    other.wait_event("chat", "marker")
    assert "said" not in [e for e, _ in sender.events_on("chat")]


def test_cache_channel_miss_then_cached_event(server, pysher_client):
    sdk = server.sdk()
    first = pysher_client()
    first.subscribe("cache-scores")
    i_ok, _ = first.wait_event("cache-scores", "pusher_internal:subscription_succeeded")
    i_miss, _ = first.wait_event("cache-scores", "pusher:cache_miss")
    assert i_miss > i_ok

    assert sdk.trigger("cache-scores", "score", {"home": 2, "away": 1}) == {}
    _, published = first.wait_event("cache-scores", "score")
    assert json.loads(published) == {"home": 2, "away": 1}

    late = pysher_client()
    late.subscribe("cache-scores")
    late.wait_event("cache-scores", "score")
    events = late.events_on("cache-scores")
    # Right after subscription_succeeded: the cached event, verbatim, and no cache_miss.
    assert events[0][0] == "pusher_internal:subscription_succeeded"
    assert events[1] == ("score", published)
    assert "pusher:cache_miss" not in [e for e, _ in events]


def test_send_to_user_reaches_signed_in_connection(server, raw_client):
    sdk = server.sdk()
    carol = raw_client()
    carol.sign_in(sdk, {"id": "carol"})

    assert sdk.send_to_user("carol", "notice", {"x": 1}) == {}
    msg = carol.recv_until_event("notice")
    assert msg["channel"] == "#server-to-user-carol"
    assert json.loads(msg["data"]) == {"x": 1}
