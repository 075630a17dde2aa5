'use strict';
// The channels JSON protocol of the websocket Lambda channel server, spoken by a plain
// WebSocket client (`ws`) as the seed's README describes it (join, wait for joinSuccess,
// publish, ping), against the real binary on 2 shards: sender ids, the publisher included,
// publishSuccess after the fan-out, failures answered with the connection kept, one channel
// per connection, the one channel space with pusher-js and the Pusher REST SDK, hostile input.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { startServer, delay, httpGet, APP } = require('../lib/server');
const { Clients } = require('../lib/clients');
const { restSdk } = require('../lib/rest');
const { EkkoClient } = require('../lib/socketio');
const { startRedis, startNodes } = require('../lib/cluster');

const WAIT_MS = 5000;

/** A channels JSON client: every JSON message it got, and waits on them. */
class ChannelsClient {
  static async connect(port, key = APP.key) {
    const client = new ChannelsClient(new WebSocket(`ws://127.0.0.1:${port}/channels/${key}`));
    await new Promise((resolve, reject) => {
      client.ws.once('open', resolve);
      client.ws.once('error', reject);
      client.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    return client;
  }

  constructor(ws) {
    this.ws = ws;
    this.messages = [];
    this.closed = null;
    this.waiters = [];
    ws.on('message', (data, isBinary) => {
      this.messages.push(isBinary ? { binary: true } : JSON.parse(data.toString()));
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  /** Resolves with the first message (from `from` on) matching `pred`. */
  async next(pred, what, from = 0, ms = WAIT_MS) {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.messages.slice(from).find(pred);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(`no ${what} within ${ms} ms; got ${JSON.stringify(this.messages)}`);
      }
      await Promise.race([new Promise((r) => this.waiters.push(r)), delay(50)]);
    }
  }

  async join(channelId) {
    const from = this.messages.length;
    this.send({ type: 'join', channelId });
    return this.next((m) => m.type === 'joinSuccess' || m.type === 'joinFailure', `join answer for ${channelId}`, from);
  }

  ofType(type) {
    return this.messages.filter((m) => m.type === type);
  }

  close() {
    try { this.ws.terminate(); } catch (_) { /* gone */ }
  }
}

describe('channels JSON: the Lambda channel server protocol', () => {
  let server;
  let pusher;
  const open = [];
  const make = async (key) => {
    const c = await ChannelsClient.connect(server.port, key);
    open.push(c);
    return c;
  };

  before(async () => {
    server = await startServer(['--channels-idle-timeout', '3']);
    pusher = new Clients(server.port);
  });

  after(async () => {
    for (const c of open) c.close();
    pusher.closeAll();
    if (server) await server.kill();
  });

  it('joins, publishes to everyone in the channel (the publisher too), then succeeds', async () => {
    const a = await make();
    const b = await make();
    const c = await make();
    assert.deepEqual(await a.join('room-1'), { type: 'joinSuccess' });
    assert.deepEqual(await b.join('room-1'), { type: 'joinSuccess' });
    assert.deepEqual(await c.join('room-2'), { type: 'joinSuccess' });

    const data = { text: 'hello', list: [1, { z: 1, a: 2 }] };
    a.send({ type: 'publish', data });
    const mine = await a.next((m) => m.type === 'message', 'the publisher\'s own message');
    assert.deepEqual(mine.data, data);
    assert.match(mine.senderId, /^[A-Za-z0-9_-]{21}$/);
    await a.next((m) => m.type === 'publishSuccess', 'publishSuccess');
    const types = a.messages.map((m) => m.type);
    assert.ok(types.indexOf('message') < types.indexOf('publishSuccess'), `order: ${types}`);
    const theirs = await b.next((m) => m.type === 'message', 'the other member\'s message');
    assert.deepEqual(theirs, { type: 'message', senderId: mine.senderId, data });
    await delay(200);
    assert.equal(c.ofType('message').length, 0, 'another channel hears nothing');
    assert.equal(b.ofType('message').length, 1, 'exactly once');
  });

  it('moves a connection on a new join, with a new sender id', async () => {
    const a = await make();
    const b = await make();
    await a.join('move-1');
    await b.join('move-1');
    a.send({ type: 'publish', data: 1 });
    const first = await b.next((m) => m.type === 'message', 'first publish');
    await a.join('move-2');
    a.send({ type: 'publish', data: 2 });
    const second = await a.next((m) => m.type === 'message' && m.data === 2, 'second publish');
    assert.notEqual(second.senderId, first.senderId);
    await delay(200);
    assert.equal(b.ofType('message').length, 1, 'the old channel no longer hears it');
    b.send({ type: 'publish', data: 3 });
    await b.next((m) => m.type === 'message' && m.data === 3, 'b\'s own publish');
    await delay(200);
    assert.equal(a.messages.filter((m) => m.data === 3).length, 0, 'a left move-1');
  });

  it('answers failures and keeps the connection', async () => {
    const a = await make();
    a.send({ type: 'publish', data: 'early' });
    const failure = await a.next((m) => m.type === 'publishFailure', 'publishFailure');
    assert.equal(typeof failure.data, 'string');
    for (const channelId of [undefined, '', 42, 'private-x', 'has space', 'x'.repeat(300)]) {
      assert.deepEqual(await a.join(channelId), { type: 'joinFailure' }, `join ${channelId}`);
    }
    let from = a.messages.length;
    a.send('{not json');
    assert.equal((await a.next((m) => m.type === 'error', 'error for bad JSON', from)).type, 'error');
    from = a.messages.length;
    a.send({ type: 'dance' });
    await a.next((m) => m.type === 'error', 'error for an unknown type', from);
    from = a.messages.length;
    a.send({ type: 'ping', data: { t: 7 } });
    assert.deepEqual(await a.next((m) => m.type === 'pong', 'pong', from), { type: 'pong', data: { t: 7 } });
    from = a.messages.length;
    a.send({ type: 'ping' });
    assert.deepEqual(await a.next((m) => m.type === 'pong', 'pong without data', from), { type: 'pong' });
    assert.deepEqual(await a.join('still-open'), { type: 'joinSuccess' });
    assert.equal(a.closed, null);
  });

  it('shares channels with pusher-js and the Pusher REST SDK', async () => {
    const member = await make();
    await member.join('shared-1');
    const p = await pusher.connect({ name: 'pusher-js shared' });
    const seen = p.record(await p.subscribe('shared-1'));
    await restSdk(server.port).trigger('shared-1', 'greet', { hi: 'there' });
    const fromRest = await member.next((m) => m.type === 'message', 'the REST trigger');
    assert.deepEqual(fromRest, {
      type: 'message', senderId: 'server', data: JSON.stringify({ hi: 'there' }), event: 'greet',
    });
    member.send({ type: 'publish', data: { n: [1, 2] } });
    const got = await seen.first((e) => e.event === 'message', 'the channels JSON publish on pusher-js');
    assert.deepEqual(got.data, { n: [1, 2] });
  });

  it('shares channels with Socket.IO (Ekko) clients, both ways', async () => {
    const member = await make();
    await member.join('sio-1');
    const sio = await EkkoClient.connect(server.port, { uuid: 'ekko-7' });
    try {
      assert.deepEqual(await sio.subscribe(['sio-1']), { ok: true });
      assert.deepEqual(await sio.publish('sio-1', { from: 'ekko' }), { ok: true });
      const fromSio = await member.next((m) => m.type === 'message', 'the Socket.IO publish');
      assert.deepEqual(fromSio, { type: 'message', senderId: 'ekko-7', data: { from: 'ekko' } });
      member.send({ type: 'publish', data: ['from', 'channels'] });
      const mine = await member.next((m) => m.type === 'message' && Array.isArray(m.data), 'own publish');
      const got = await sio.first('message', (m) => Array.isArray(m.message), 'the channels JSON publish on Socket.IO');
      assert.deepEqual(got, { channel: 'sio-1', message: ['from', 'channels'], uuid: mine.senderId });
    } finally {
      sio.close();
    }
  });

  it('refuses an unknown app key before the upgrade', async () => {
    await assert.rejects(ChannelsClient.connect(server.port, 'no-such-key'), /HTTP 404/);
  });

  it('closes an idle connection, and a ping keeps one alive', async () => {
    const idle = await make();
    const busy = await make();
    await idle.join('idle-1');
    const timer = setInterval(() => busy.send({ type: 'ping' }), 500);
    try {
      await idle.next(() => false, 'never', 0, 5000).catch(() => {});
      assert.equal(idle.closed && idle.closed.code, 1000, `closed: ${JSON.stringify(idle.closed)}`);
      assert.equal(busy.closed, null, 'pinging kept it open');
    } finally {
      clearInterval(timer);
    }
  });

  it('bounds a client that sends only garbage, and the server goes on', async () => {
    const bad = await make();
    for (let i = 0; i < 100; i += 1) bad.send('[]');
    await bad.next(() => false, 'never', 0, 3000).catch(() => {});
    assert.equal(bad.closed && bad.closed.code, 1008, `closed: ${JSON.stringify(bad.closed)}`);
    assert.ok(bad.ofType('error').length <= 64);
    const ok = await make();
    assert.deepEqual(await ok.join('after-garbage'), { type: 'joinSuccess' });
    assert.equal((await httpGet(server.port, '/ready')).status, 200);
    const metrics = (await httpGet(server.port, '/metrics')).body;
    assert.match(metrics, /ringcast_dialect_connections\{shard="\d",dialect="channels"\} [1-9]/);
    assert.match(metrics, /ringcast_channels_json_errors_total\{shard="\d"\} [1-9]/);
  });
});

describe('channels JSON: two nodes on one Redis', () => {
  let redis;
  let nodes = [];
  const open = [];
  const make = async (node) => {
    const c = await ChannelsClient.connect(nodes[node].port);
    open.push(c);
    return c;
  };

  before(async () => {
    redis = await startRedis();
    nodes = await startNodes(redis, 2);
  });

  after(async () => {
    for (const c of open) c.close();
    await Promise.all(nodes.map((n) => n.kill()));
    if (redis) await redis.stop();
  });

  it('carries a publish to the members on the other node once, with its sender id', async () => {
    const near = await make(0);
    const far = await make(1);
    assert.deepEqual(await near.join('x-room'), { type: 'joinSuccess' });
    assert.deepEqual(await far.join('x-room'), { type: 'joinSuccess' });
    const sio = await EkkoClient.connect(nodes[1].port, { uuid: 'far-sio' });
    try {
      assert.deepEqual(await sio.subscribe(['x-room']), { ok: true });
      near.send({ type: 'publish', data: { hop: 1 } });
      const mine = await near.next((m) => m.type === 'message', 'own publish');
      const got = await far.next((m) => m.type === 'message', 'the publish from node 0');
      assert.deepEqual(got, { type: 'message', senderId: mine.senderId, data: { hop: 1 } });
      const onSio = await sio.first('message', (m) => m.channel === 'x-room', 'the publish on Socket.IO at node 1');
      assert.deepEqual(onSio, { channel: 'x-room', message: { hop: 1 }, uuid: mine.senderId });
      await restSdk(nodes[1].port).trigger('x-room', 'note', 'from node 1');
      const fromRest = await near.next((m) => m.event === 'note', 'the REST trigger on node 1');
      assert.deepEqual(fromRest, { type: 'message', senderId: 'server', data: 'from node 1', event: 'note' });
      await delay(400);
      assert.equal(far.ofType('message').filter((m) => m.data && m.data.hop === 1).length, 1, 'exactly once');
      assert.equal(near.ofType('message').filter((m) => m.data && m.data.hop === 1).length, 1, 'exactly once');
    } finally {
      sio.close();
    }
  });
});
