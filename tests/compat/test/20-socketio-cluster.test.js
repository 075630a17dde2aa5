'use strict';
// Socket.IO across two ringcast nodes on one real redis-server, through the official
// socket.io-client 4 and pusher-js: a Pusher REST publish on node 0 reaches Socket.IO clients
// on node 1, a Socket.IO publish on node 1 reaches pusher-js and Socket.IO clients on node 0
// exactly once, presence rooms and the admin room are cluster-wide.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { delay } = require('../lib/server');
const { Clients } = require('../lib/clients');
const { restSdk } = require('../lib/rest');
const { startRedis, startNodes } = require('../lib/cluster');
const { EkkoClient } = require('../lib/socketio');

const OK = { ok: true };
const SETTLE_MS = 400;

describe('socket.io: two nodes on one Redis', () => {
  let redis;
  let nodes = [];
  let clients = [];
  const ekko = [];
  const make = async (node, opts) => {
    const client = await EkkoClient.connect(nodes[node].port, opts);
    ekko.push(client);
    return client;
  };

  before(async () => {
    redis = await startRedis();
    nodes = await startNodes(redis, 2);
    clients = nodes.map((n) => new Clients(n.port));
  });

  after(async () => {
    for (const client of ekko) client.close();
    for (const c of clients) c.closeAll();
    await Promise.all(nodes.map((n) => n.kill()));
    if (redis) await redis.stop();
  });

  it('a Pusher REST publish on one node reaches Socket.IO clients on the other, once', async () => {
    const far = await make(1, { uuid: 'far' });
    assert.deepEqual(await far.subscribe(['x-news']), OK);
    await delay(SETTLE_MS); // the other node's bridge learns the interest through Redis
    await restSdk(nodes[0].port).trigger('x-news', 'price', { usd: 5 });
    const got = await far.first('message', (m) => m.event === 'price', 'the REST publish from node 0');
    assert.deepEqual(got, { channel: 'x-news', message: JSON.stringify({ usd: 5 }), event: 'price' });
    await delay(SETTLE_MS);
    assert.equal(far.received('message').length, 1, 'exactly once');
  });

  it('a Socket.IO publish on one node reaches pusher-js and Socket.IO on the other, once', async () => {
    const near = await make(0, { uuid: 'near' });
    await near.subscribe(['x-chat']);
    const pusherClient = await clients[0].connect({ name: 'pusher-js@node0' });
    const seen = pusherClient.record(await pusherClient.subscribe('x-chat'));
    const far = await make(1, { uuid: 'far2' });
    await far.subscribe(['x-chat']);
    await delay(SETTLE_MS);
    const payload = { channel: 'x-chat', message: { text: 'hello' }, uuid: 'far2', extra: [1] };
    assert.deepEqual(await far.call('publish', payload), OK);
    assert.deepEqual(await near.first('message', () => true, 'node 0 Socket.IO'), payload);
    assert.deepEqual(await far.first('message', () => true, 'the sender itself'), payload);
    const pusherEvent = await seen.first((e) => e.event === 'message', 'node 0 pusher-js');
    assert.deepEqual(pusherEvent.data, { text: 'hello' });
    await delay(SETTLE_MS);
    assert.equal(near.received('message').length, 1);
    assert.equal(far.received('message').length, 1);
    assert.equal(seen.filter((e) => e.event === 'message').length, 1);
  });

  it('presence rooms and the admin room span the nodes', async () => {
    const admin = await make(0, { uuid: 'boss', admin: true });
    const a = await make(0, { uuid: 'pa' });
    await a.subscribe(['x-lobby'], { withPresence: true });
    await delay(SETTLE_MS);
    const b = await make(1, { uuid: 'pb' });
    await b.subscribe(['x-lobby'], { withPresence: true });
    const joined = await a.first('presence', (p) => p.uuid === 'pb', 'node 0 hears pb join on node 1');
    assert.equal(joined.eventName, 'joined');
    b.close();
    const left = await a.first('presence', (p) => p.uuid === 'pb' && p.eventName === 'left', 'pb left');
    assert.equal(left.presenceChannel, 'x-lobby_presence');
    for (const event of ['connection', 'joined', 'disconnect']) {
      await admin.first('status', (s) => s.uuid === 'pb' && s.event === event, `admin on node 0: pb ${event}`);
    }
  });
});
