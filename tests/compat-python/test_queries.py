"""GET endpoints through the Python server SDK (which signs GETs with the MD5 of the empty body)."""

import time

import pytest
from pusher.errors import PusherBadRequest

from conftest import WAIT, md5_hex, shard_of


def presence_pair_on_distinct_shards(pysher_client, channel, first_id, second_id, attempts=40):
    """Two pysher presence members of `channel` whose connections sit on different shards."""
    first = pysher_client(user_data={"user_id": first_id, "user_info": {"n": first_id}})
    for _ in range(attempts):
        second = pysher_client(user_data={"user_id": second_id, "user_info": {"n": second_id}})
        if shard_of(second.socket_id) != shard_of(first.socket_id):
            break
        second.close()
    else:
        pytest.fail(f"no connection landed on a shard other than {first.socket_id} in {attempts} tries")
    first.subscribe(channel)
    second.subscribe(channel)
    return first, second


def test_get_is_signed_with_md5_of_empty_body_and_accepted(server, pysher_client):
    sdk = server.sdk()
    client = pysher_client()
    client.subscribe("lobby")

    req = sdk._pusher_client.channels_info.make_request()
    assert req.method == "GET"
    assert req.body == b""
    assert req.query_params["body_md5"] == md5_hex(b"") == "d41d8cd98f00b204e9800998ecf8427e"

    assert sdk.channels_info() == {"channels": {"lobby": {}}}


def test_channels_info_presence_user_count(server, pysher_client):
    sdk = server.sdk()
    presence_pair_on_distinct_shards(pysher_client, "presence-a", "alice", "bob")
    carol = pysher_client(user_data={"user_id": "carol", "user_info": {}})
    carol.subscribe("presence-b")
    carol.subscribe("public-x")

    assert sdk.channels_info(prefix_filter="presence-", attributes=["user_count"]) == {
        "channels": {"presence-a": {"user_count": 2}, "presence-b": {"user_count": 1}}
    }
    assert sdk.channels_info(prefix_filter="public-") == {"channels": {"public-x": {}}}
    assert sdk.channels_info() == {
        "channels": {"presence-a": {}, "presence-b": {}, "public-x": {}}
    }
    # user_count needs a presence- prefix
    with pytest.raises(PusherBadRequest):
        sdk.channels_info(attributes=["user_count"])


def test_channel_info_user_and_subscription_count(server, pysher_client):
    sdk = server.sdk()
    presence_pair_on_distinct_shards(pysher_client, "presence-room", "alice", "bob")
    # alice's second tab: one more subscription, same user
    alice2 = pysher_client(user_data={"user_id": "alice", "user_info": {"n": "alice"}})
    alice2.subscribe("presence-room")

    assert sdk.channel_info("presence-room", ["user_count", "subscription_count"]) == {
        "occupied": True, "user_count": 2, "subscription_count": 3,
    }
    assert sdk.channel_info("presence-room") == {"occupied": True}
    empty = sdk.channel_info("nobody-here", ["subscription_count"])
    assert empty["occupied"] is False
    assert empty.get("subscription_count", 0) == 0

    public = pysher_client()
    public.subscribe("public-room")
    assert sdk.channel_info("public-room", ["subscription_count"]) == {
        "occupied": True, "subscription_count": 1,
    }
    with pytest.raises(PusherBadRequest):
        sdk.channel_info("public-room", ["user_count"])


def test_users_info_presence_members(server, pysher_client):
    sdk = server.sdk()
    alice, bob = presence_pair_on_distinct_shards(pysher_client, "presence-team", "alice", "bob")

    resp = sdk.users_info("presence-team")
    assert sorted(u["id"] for u in resp["users"]) == ["alice", "bob"]

    # bob leaves: the member list follows (the server handles the close asynchronously).
    bob.close()
    deadline = time.monotonic() + WAIT
    while True:
        ids = sorted(u["id"] for u in sdk.users_info("presence-team")["users"])
        if ids == ["alice"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert ids == ["alice"]

    with pytest.raises(PusherBadRequest):
        sdk.users_info("not-presence")
