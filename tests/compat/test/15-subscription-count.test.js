'use strict';
// subscription_count webhooks from one ringcast node (2 shards) to a real HTTP receiver, checked
// with the official `pusher` SDK's webhook validator, with pusher-js clients making the counts:
// the count is the node's (summed over the shards), it follows unsubscribes, presence channels
// have none (as on Pusher), and a burst is coalesced (at most one event per channel per second,
// the last one carrying the final count).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, delay, APP } = require('../lib/server');
const { Clients } = require('../lib/clients');
const { WebhookReceiver } = require('../lib/webhook_receiver');
const { startRedis, startNodes } = require('../lib/cluster');

// The engine reports a shard's counts once a second; the bridge sends a channel's count at
// most once a second. A change therefore shows within about 2 s; this is a generous margin.
const SETTLE_MS = 3000;

const counts = (channel) => (e) => e.path === '/counts' && e.name === 'subscription_count'
  && e.channel === channel;

/** The counts `receiver` got for `channel`, in order. */
const countsSeen = (receiver, channel) => receiver.accepted(counts(channel))
  .map((e) => e.subscription_count);

/** Waits until the latest count `receiver` got for `channel` is `n`; returns every count seen. */
async function latestCountIs(receiver, channel, n, ms = 10000) {
  try {
    await receiver.events.until(() => {
      const all = countsSeen(receiver, channel);
      return all.length > 0 && all[all.length - 1] === n;
    }, `subscription_count ${n} for ${channel}`, ms);
  } catch (err) {
    err.message += ` (counts seen: ${JSON.stringify(countsSeen(receiver, channel))})`;
    throw err;
  }
  return countsSeen(receiver, channel);
}

describe('subscription_count webhooks from a node alone', () => {
  let server;
  let clients;
  const receiver = new WebhookReceiver();

  const seen = (channel) => countsSeen(receiver, channel);
  const latestIs = (channel, n) => latestCountIs(receiver, channel, n);

  before(async () => {
    await receiver.start();
    const hooks = [
      { url: receiver.url('/counts'), event_types: ['subscription_count'] },
      // Proves that presence channels did reach the webhooks, just not as counts.
      { url: receiver.url('/occupied'), event_types: ['channel_occupied'] },
    ];
    server = await startServer(['--app-webhooks', JSON.stringify(hooks)]);
    clients = new Clients(server.port);
  });

  after(async () => {
    clients.closeAll();
    await server.kill();
    await receiver.stop();
  });

  it('sends the node count summed over both shards, signed, and follows unsubscribes', async () => {
    const a = await clients.connectOnShard(0, { name: 'a' });
    const b = await clients.connectOnShard(1, { name: 'b' });
    const c = await clients.connectOnShard(1, { name: 'c' });
    for (const x of [a, b, c]) await x.subscribe('count-room');
    const rising = await latestIs('count-room', 3);
    assert.ok(rising.every((n) => n >= 1 && n <= 3), `never more than held: ${rising}`);

    const [event] = receiver.accepted(counts('count-room'));
    assert.deepEqual(Object.keys(event).sort(),
      ['channel', 'id', 'name', 'path', 'subscription_count']);
    const request = receiver.requests.items.find((r) => r.path === '/counts'
      && r.rawBody.includes('"count-room"'));
    assert.equal(request.valid, true, `the SDK refused: ${JSON.stringify(request.headers)}`);
    assert.equal(request.headers['x-pusher-key'], APP.key);

    b.pusher.unsubscribe('count-room');
    await b.pingPong();
    await latestIs('count-room', 2);
    a.disconnect(); // a closed connection leaves its channels too
    await latestIs('count-room', 1);
    c.pusher.unsubscribe('count-room');
    await c.pingPong();
    await latestIs('count-room', 0);
  });

  it('sends none for presence channels', async () => {
    const user = { user_id: 'erin' };
    const tab1 = await clients.connectOnShard(0, { name: 'erin-1', user });
    const tab2 = await clients.connectOnShard(1, { name: 'erin-2', user });
    await tab1.subscribe('presence-count');
    await tab2.subscribe('presence-count');
    await receiver.waitFor((e) => e.path === '/occupied' && e.channel === 'presence-count', 1,
      'presence channel occupied');
    // A public channel subscribed after them gets its count; by then presence would have too.
    await tab1.subscribe('after-presence');
    await latestIs('after-presence', 1);
    await delay(SETTLE_MS);
    assert.deepEqual(seen('presence-count'), []);
    assert.deepEqual(seen('after-presence'), [1]);
  });

  it('coalesces a burst: few events, the last one with the final count', async () => {
    const started = Date.now();
    const burst = [];
    // 30 connections subscribe at once (spread over both shards by the kernel), then 10 leave:
    // 40 changes of the count.
    await Promise.all(Array.from({ length: 30 }, async (_, i) => {
      const c = await clients.connect({ name: `burst-${i}` });
      await c.subscribe('burst-room');
      burst.push(c);
    }));
    for (const c of burst.slice(0, 10)) c.pusher.unsubscribe('burst-room');
    await Promise.all(burst.slice(0, 10).map((c) => c.pingPong()));
    const got = await latestIs('burst-room', 20);
    await delay(SETTLE_MS); // nothing stale may follow the final count
    const all = seen('burst-room');
    assert.equal(all[all.length - 1], 20, `the final count is the last word: ${all}`);
    assert.ok(all.length >= got.length);
    const elapsedS = (Date.now() - started) / 1000;
    assert.ok(all.length < 40, `fewer events than changes: ${all}`);
    assert.ok(all.length <= Math.ceil(elapsedS) + 1,
      `at most about one per second (${all.length} in ${elapsedS.toFixed(1)} s): ${all}`);
    const ids = receiver.accepted(counts('burst-room')).map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'every event has its own id');
  });
});

describe('subscription_count webhooks of two nodes on one Redis', () => {
  let redis;
  let nodes = [];
  let clients = [];
  const receiver = new WebhookReceiver();

  before(async () => {
    await receiver.start();
    redis = await startRedis();
    const hooks = [{ url: receiver.url('/counts'), event_types: ['subscription_count'] }];
    nodes = await startNodes(redis, 2, ['--app-webhooks', JSON.stringify(hooks)]);
    clients = nodes.map((n) => new Clients(n.port));
  });

  after(async () => {
    for (const c of clients) c.closeAll();
    await Promise.all(nodes.map((n) => n.kill()));
    if (redis) await redis.stop();
    await receiver.stop();
  });

  it('the count is the cluster\'s: every node\'s subscribers, whichever node changed', async () => {
    const channel = 'cluster-count';
    const a1 = await clients[0].connect({ name: 'a1' });
    const a2 = await clients[0].connect({ name: 'a2' });
    const b1 = await clients[1].connect({ name: 'b1' });
    await a1.subscribe(channel);
    await a2.subscribe(channel);
    await latestCountIs(receiver, channel, 2);
    // A change on node 1 is reported with node 0's subscribers included.
    await b1.subscribe(channel);
    await latestCountIs(receiver, channel, 3);
    a1.disconnect();
    await latestCountIs(receiver, channel, 2);
    b1.pusher.unsubscribe(channel);
    await b1.pingPong();
    const all = await latestCountIs(receiver, channel, 1);
    assert.ok(all.every((n) => n >= 1 && n <= 3), `never more than held: ${all}`);
    const ids = receiver.accepted(counts(channel)).map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'every event has its own id');
  });
});
