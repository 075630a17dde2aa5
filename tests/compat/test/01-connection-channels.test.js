'use strict';
// Connection handshake and every channel type, through the official pusher-js client.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('../lib/server');
const { Clients, SOCKET_ID_RE, shardOf } = require('../lib/clients');
const { RawPusher } = require('../lib/rawws');

describe('connection and channel types', () => {
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

  it('sends pusher:connection_established first, with a data string holding socket_id and activity_timeout', async () => {
    const raw = new RawPusher(server.port, 'raw');
    try {
      await raw.open();
      const first = raw.frames.items[0];
      assert.equal(first.json.event, 'pusher:connection_established', 'first frame');
      assert.equal(typeof first.json.data, 'string', 'data must be a JSON string');
      const data = JSON.parse(first.json.data);
      assert.match(data.socket_id, SOCKET_ID_RE);
      assert.equal(data.activity_timeout, 120);
      assert.ok([0, 1].includes(shardOf(data.socket_id)),
        `shard digits of ${data.socket_id} name shard 0 or 1`);
    } finally {
      raw.destroy();
    }
  });

  it('pusher-js connects and exposes a socket id of the form digits.digits', async () => {
    const c = await clients.connect({ name: 'a' });
    assert.equal(c.state, 'connected');
    assert.match(c.socketId, SOCKET_ID_RE);
    // The server SDK refuses malformed socket ids, so signing is a second check.
    assert.doesNotThrow(() => c.signer.authorizeChannel(c.socketId, 'private-x'));
  });

  it('gives distinct socket ids to distinct connections', async () => {
    const a = await clients.connect({ name: 'a' });
    const b = await clients.connect({ name: 'b' });
    assert.notEqual(a.socketId, b.socketId);
  });

  it('subscribes to a public channel', async () => {
    const c = await clients.connect({ name: 'pub' });
    const ch = await c.subscribe('my-channel');
    assert.equal(ch.subscribed, true);
  });

  it('subscribes to a private channel with a valid signature', async () => {
    const c = await clients.connect({ name: 'priv' });
    const ch = await c.subscribe('private-orders');
    assert.equal(ch.subscribed, true);
  });

  it('subscribes to a private-encrypted channel with a valid signature', async () => {
    const c = await clients.connect({ name: 'enc' });
    const ch = await c.subscribe('private-encrypted-secrets');
    assert.equal(ch.subscribed, true);
  });

  it('subscribes to a presence channel and lists itself as the only member', async () => {
    const c = await clients.connect({
      name: 'pres', user: { user_id: 'u-1', user_info: { name: 'One' } },
    });
    const ch = await c.subscribe('presence-lobby');
    assert.equal(ch.members.count, 1);
    assert.equal(ch.members.me.id, 'u-1');
    assert.deepEqual(ch.members.me.info, { name: 'One' });
  });

  for (const name of ['cache-news', 'private-cache-news', 'private-encrypted-cache-news',
    'presence-cache-news']) {
    it(`surfaces pusher:cache_miss on ${name} after subscribing (nothing cached yet)`, async () => {
      const c = await clients.connect({
        name: 'cache', user: { user_id: 'u-cache', user_info: {} },
      });
      const channel = c.pusher.subscribe(name);
      const rec = c.record(channel);
      await rec.until((xs) => xs.some((x) => x.event === 'pusher:cache_miss'),
        'pusher:cache_miss on the channel');
      const names = rec.items.map((x) => x.event);
      assert.ok(names.indexOf('pusher:subscription_succeeded') >= 0, 'subscription succeeded');
      assert.ok(names.indexOf('pusher:subscription_succeeded') < names.indexOf('pusher:cache_miss'),
        `cache_miss comes after subscription_succeeded (got ${names.join(', ')})`);
      await c.pingPong(); // a duplicate would come before the pong
      const raw = c.received('pusher:cache_miss', name);
      assert.equal(raw.length, 1, 'exactly one cache_miss message');
    });
  }

  for (const name of ['private-orders', 'private-encrypted-secrets', 'presence-lobby']) {
    it(`refuses a bad signature on ${name} with pusher:subscription_error status 401`, async () => {
      const c = await clients.connect({
        name: 'bad', secret: 'not-the-secret', user: { user_id: 'u-bad', user_info: {} },
      });
      const channel = c.pusher.subscribe(name);
      const rec = c.record(channel);
      const err = await rec.first((x) => x.event === 'pusher:subscription_error',
        'pusher:subscription_error');
      assert.equal(err.data.status, 401);
      assert.equal(err.data.type, 'AuthError');
      assert.equal(typeof err.data.error, 'string');
      assert.equal(channel.subscribed, false);
      await c.pingPong(); // a duplicate would come before the pong
      assert.ok(!rec.items.some((x) => x.event === 'pusher:subscription_succeeded'));
      assert.equal(c.received('pusher:subscription_error', name).length, 1,
        'the server sends subscription_error once');
      assert.equal(c.state, 'connected', 'an auth failure keeps the connection');
    });
  }

  it('refuses a signature for a different socket id with 401', async () => {
    const c = await clients.connect({ name: 'replay' });
    const other = await clients.connect({ name: 'other' });
    // Sign for the other connection's socket id: a replayed signature must not work.
    c.signer.authorizeChannel = ((orig) => (socketId, ch, data) =>
      orig.call(c.signer, other.socketId, ch, data))(c.signer.authorizeChannel);
    const channel = c.pusher.subscribe('private-replay');
    const rec = c.record(channel);
    const err = await rec.first((x) => x.event === 'pusher:subscription_error',
      'pusher:subscription_error');
    assert.equal(err.data.status, 401);
  });
});
