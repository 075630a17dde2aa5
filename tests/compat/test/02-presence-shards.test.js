'use strict';
// Presence channels with members on different shards, and one user with several tabs.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, delay } = require('../lib/server');
const { Clients, shardOf } = require('../lib/clients');

// Time given to a wrong extra event to show up before asserting it did not (never a speed check:
// each such check also waits on a later event that travels the same way first).
const SETTLE_MS = 300;

function memberIds(channel) {
  const ids = [];
  channel.members.each((m) => ids.push(m.id));
  return ids.sort();
}

/** Raw protocol messages `event` about `userId` on `channel` seen by client c. */
function memberEvents(c, event, channel, userId) {
  return c.received(event, channel).filter((m) => m.data && m.data.user_id === userId);
}

describe('presence across shards', () => {
  let server;
  let clients;

  before(async () => {
    server = await startServer();
    clients = new Clients(server.port);
  });

  after(async () => {
    if (clients) clients.closeAll();
    if (server) await server.kill();
  });

  it('two users on different shards see each other; member_added/member_removed fire once', async () => {
    const ch = 'presence-room-1';
    const alice = await clients.connectOnShard(0, {
      name: 'alice', user: { user_id: 'alice', user_info: { name: 'Alice' } },
    });
    const bob = await clients.connectOnShard(1, {
      name: 'bob', user: { user_id: 'bob', user_info: { name: 'Bob' } },
    });
    assert.notEqual(shardOf(alice.socketId), shardOf(bob.socketId));

    const aliceCh = await alice.subscribe(ch);
    const aliceEvents = alice.record(aliceCh);
    assert.deepEqual(memberIds(aliceCh), ['alice']);

    const bobCh = await bob.subscribe(ch);
    assert.deepEqual(memberIds(bobCh), ['alice', 'bob'], 'bob sees both members');
    assert.equal(bobCh.members.count, 2);
    assert.deepEqual(bobCh.members.get('alice').info, { name: 'Alice' });
    assert.equal(bobCh.members.me.id, 'bob');

    const added = await aliceEvents.first((x) => x.event === 'pusher:member_added',
      'member_added for bob on alice (other shard)');
    assert.equal(added.data.id, 'bob');
    assert.deepEqual(added.data.info, { name: 'Bob' });
    assert.deepEqual(memberIds(aliceCh), ['alice', 'bob']);
    assert.equal(aliceCh.members.count, 2);

    // bob never hears about himself joining.
    assert.equal(bob.received('pusher_internal:member_added', ch).length, 0,
      'no member_added to the joining connection');

    bob.disconnect();
    const removed = await aliceEvents.first((x) => x.event === 'pusher:member_removed',
      'member_removed for bob on alice');
    assert.equal(removed.data.id, 'bob');
    assert.deepEqual(memberIds(aliceCh), ['alice']);
    await delay(SETTLE_MS);
    assert.equal(memberEvents(alice, 'pusher_internal:member_added', ch, 'bob').length, 1,
      'member_added for bob exactly once');
    assert.equal(memberEvents(alice, 'pusher_internal:member_removed', ch, 'bob').length, 1,
      'member_removed for bob exactly once');
  });

  it('members list from a user whose presence is on the other shard has the user_info of each', async () => {
    const ch = 'presence-room-info';
    const a = await clients.connectOnShard(1, {
      name: 'a', user: { user_id: 'user-a', user_info: { role: 'admin', n: 1 } },
    });
    const b = await clients.connectOnShard(0, {
      name: 'b', user: { user_id: 'user-b', user_info: { role: 'guest', n: 2 } },
    });
    await a.subscribe(ch);
    const bCh = await b.subscribe(ch);
    assert.deepEqual(bCh.members.get('user-a').info, { role: 'admin', n: 1 });
    assert.deepEqual(bCh.members.get('user-b').info, { role: 'guest', n: 2 });
    const raw = b.received('pusher_internal:subscription_succeeded', ch)[0];
    assert.equal(raw.data.presence.count, 2);
    assert.deepEqual([...raw.data.presence.ids].sort(), ['user-a', 'user-b']);
  });

  it('a user with two tabs on different shards is one member; only the last tab leaving removes it', async () => {
    const ch = 'presence-room-tabs';
    const observer = await clients.connectOnShard(0, {
      name: 'observer', user: { user_id: 'obs', user_info: {} },
    });
    const obsCh = await observer.subscribe(ch);
    const obsEvents = observer.record(obsCh);

    const tabUser = { user_id: 'multi', user_info: { name: 'Multi' } };
    const tab1 = await clients.connectOnShard(0, { name: 'tab1', user: tabUser });
    const tab2 = await clients.connectOnShard(1, { name: 'tab2', user: tabUser });

    await tab1.subscribe(ch);
    await obsEvents.first((x) => x.event === 'pusher:member_added' && x.data.id === 'multi',
      'member_added for multi (first tab)');

    const tab2Ch = await tab2.subscribe(ch);
    assert.deepEqual(memberIds(tab2Ch), ['multi', 'obs'], 'second tab sees the user once');
    assert.equal(tab2Ch.members.count, 2);
    const raw = tab2.received('pusher_internal:subscription_succeeded', ch)[0];
    assert.equal(raw.data.presence.count, 2, 'presence count counts users, not connections');

    // A marker user joining through the second tab's shard: once the observer sees it, any
    // (wrong) member_added caused by tab2 would have been sent already.
    const marker = await clients.connectOnShard(1, {
      name: 'marker', user: { user_id: 'marker', user_info: {} },
    });
    await marker.subscribe(ch);
    await obsEvents.first((x) => x.event === 'pusher:member_added' && x.data.id === 'marker',
      'member_added for marker');
    await delay(SETTLE_MS);
    assert.equal(memberEvents(observer, 'pusher_internal:member_added', ch, 'multi').length, 1,
      'the second tab does not fire member_added again');
    assert.equal(obsCh.members.count, 3);

    // Closing one tab keeps the user present.
    await tab1.disconnected();
    marker.disconnect();
    await obsEvents.first((x) => x.event === 'pusher:member_removed' && x.data.id === 'marker',
      'member_removed for marker');
    await delay(SETTLE_MS);
    assert.equal(memberEvents(observer, 'pusher_internal:member_removed', ch, 'multi').length, 0,
      'closing one of two tabs does not fire member_removed');
    assert.deepEqual(memberIds(obsCh), ['multi', 'obs']);

    // A newcomer still sees the user with one tab left.
    const late = await clients.connectOnShard(0, {
      name: 'late', user: { user_id: 'late', user_info: {} },
    });
    const lateCh = await late.subscribe(ch);
    assert.deepEqual(memberIds(lateCh), ['late', 'multi', 'obs']);

    // Closing the last tab removes the user, once.
    tab2.disconnect();
    await obsEvents.first((x) => x.event === 'pusher:member_removed' && x.data.id === 'multi',
      'member_removed for multi after its last tab closed');
    await late.messages.until(
      () => memberEvents(late, 'pusher_internal:member_removed', ch, 'multi').length === 1,
      'member_removed for multi on late');
    await delay(SETTLE_MS);
    assert.equal(memberEvents(observer, 'pusher_internal:member_removed', ch, 'multi').length, 1,
      'member_removed fires exactly once');
    assert.deepEqual(memberIds(obsCh), ['late', 'obs']);
  });

  it('unsubscribing (not disconnecting) the last tab also removes the member', async () => {
    const ch = 'presence-room-unsub';
    const observer = await clients.connectOnShard(1, {
      name: 'observer2', user: { user_id: 'obs2', user_info: {} },
    });
    const obsCh = await observer.subscribe(ch);
    const obsEvents = observer.record(obsCh);
    const leaver = await clients.connectOnShard(0, {
      name: 'leaver', user: { user_id: 'leaver', user_info: {} },
    });
    await leaver.subscribe(ch);
    await obsEvents.first((x) => x.event === 'pusher:member_added' && x.data.id === 'leaver',
      'member_added for leaver');
    leaver.pusher.unsubscribe(ch);
    await obsEvents.first((x) => x.event === 'pusher:member_removed' && x.data.id === 'leaver',
      'member_removed for leaver after unsubscribe');
    assert.equal(leaver.state, 'connected');
  });
});
