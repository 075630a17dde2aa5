'use strict';
// pusher.signin() and watchlist online/offline events, with users on different shards.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, delay, withTimeout } = require('../lib/server');
const { Clients, Recorder } = require('../lib/clients');

const SETTLE_MS = 300;

async function signInOnShard(clients, shard, user, name = user.id) {
  const c = await clients.connectOnShard(shard, { name, signin: user });
  c.watch = new Recorder(`${name} watchlist events`);
  c.pusher.user.watchlist.bind('online', (e) => c.watch.push({ name: 'online', ids: e.user_ids }));
  c.pusher.user.watchlist.bind('offline', (e) => c.watch.push({ name: 'offline', ids: e.user_ids }));
  c.pusher.signin();
  const ok = await c.messages.first((m) => m.event === 'pusher:signin_success',
    `pusher:signin_success for ${user.id}`);
  assert.deepEqual(JSON.parse(ok.data.user_data), user, 'signin_success echoes user_data');
  return c;
}

/** How often `id` went online/offline for the watcher. */
function count(c, name, id) {
  return c.watch.filter((e) => e.name === name && e.ids.includes(id)).length;
}

function until(c, name, id, what) {
  return c.watch.until(() => count(c, name, id) >= 1, what || `${name} for ${id}`);
}

describe('sign-in and watchlist', () => {
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

  it('pusher.signin() with a server-SDK signature succeeds and pusher-js knows the user', async () => {
    const user = { id: 'signer', user_info: { name: 'Signer' } };
    const c = await signInOnShard(clients, 1, user);
    await withTimeout(c.pusher.user.signinDonePromise, 5000, 'pusher-js signinDonePromise');
    assert.deepEqual(c.pusher.user.user_data, user);
    // pusher-js then subscribes to the user's #server-to-user channel.
    await c.messages.first((m) => m.event === 'pusher_internal:subscription_succeeded' &&
      m.channel === '#server-to-user-signer', 'subscription_succeeded on #server-to-user-signer');
    assert.equal(c.state, 'connected');
    assert.equal(c.errors.items.length, 0, JSON.stringify(c.errors.items));
  });

  it('a bad sign-in signature gets pusher:error 4009 and close 4009; pusher-js does not reconnect', async () => {
    const c = await clients.connectOnShard(0, { name: 'forger', signin: { id: 'forger' }, secret: 'wrong' });
    c.pusher.signin();
    const msg = await c.messages.first((m) => m.event === 'pusher:error', 'pusher:error');
    assert.equal(msg.data.code, 4009);
    const close = await c.closes.first(() => true, 'the WebSocket close');
    assert.equal(close.code, 4009, 'close frame code');
    await c.states.until((xs) => xs[xs.length - 1] === 'disconnected', 'state disconnected');
    await delay(SETTLE_MS);
    assert.equal(c.state, 'disconnected', 'no reconnect after 4009');
    assert.equal(c.received('pusher:signin_success').length, 0);
  });

  it('watchers on one shard get online/offline for users on the other shard, once per user', async () => {
    const alice = await signInOnShard(clients, 0, { id: 'alice', watchlist: ['bob', 'carol'] });
    assert.equal(alice.watch.items.length, 0, 'nobody watched is online yet');

    // bob's first tab, on the other shard: online.
    const bob1 = await signInOnShard(clients, 1, { id: 'bob' });
    await until(alice, 'online', 'bob');

    // bob's second tab (other shard than the first): no second online.
    const bob2 = await signInOnShard(clients, 0, { id: 'bob' });
    // Barrier: carol coming online through the same shard as bob's second tab.
    const carol = await signInOnShard(clients, 0, { id: 'carol' });
    await until(alice, 'online', 'carol');
    await delay(SETTLE_MS);
    assert.equal(count(alice, 'online', 'bob'), 1, 'a second tab does not send online again');

    // Closing one of bob's tabs: still online.
    await bob1.disconnected();
    carol.disconnect();
    await until(alice, 'offline', 'carol');
    await delay(SETTLE_MS);
    assert.equal(count(alice, 'offline', 'bob'), 0, 'bob still has a tab open');

    // Closing the last one: offline, once.
    bob2.disconnect();
    await until(alice, 'offline', 'bob');
    await delay(SETTLE_MS);
    assert.equal(count(alice, 'offline', 'bob'), 1, 'offline for bob exactly once');
    assert.equal(count(alice, 'online', 'bob'), 1);
    assert.equal(count(alice, 'online', 'carol'), 1);
    assert.equal(count(alice, 'offline', 'carol'), 1);
  });

  it('a watcher signing in learns at once which watched users are already online', async () => {
    const dave = await signInOnShard(clients, 1, { id: 'dave' });
    const erin = await signInOnShard(clients, 0, { id: 'erin', watchlist: ['dave', 'nobody-home'] });
    await until(erin, 'online', 'dave', 'online for dave at sign-in');
    const online = erin.watch.filter((e) => e.name === 'online');
    assert.ok(online.every((e) => !e.ids.includes('nobody-home')), 'offline users are not listed');
    dave.disconnect();
    await until(erin, 'offline', 'dave');
  });

  it('a user not on the watchlist does not produce events', async () => {
    const frank = await signInOnShard(clients, 0, { id: 'frank', watchlist: ['grace'] });
    const stranger = await signInOnShard(clients, 1, { id: 'stranger' });
    const grace = await signInOnShard(clients, 1, { id: 'grace' });
    await until(frank, 'online', 'grace');
    stranger.disconnect();
    grace.disconnect();
    await until(frank, 'offline', 'grace');
    await delay(SETTLE_MS);
    assert.ok(frank.watch.items.every((e) => !e.ids.includes('stranger')),
      `no events about an unwatched user: ${JSON.stringify(frank.watch.items)}`);
  });
});
