'use strict';
// Cluster-wide REST, users and cache channels: three nodes on one real redis-server, the
// `pusher` SDK talking to one node and pusher-js clients on the others. Channel lists and
// counts are the cluster's from any node; terminateUserConnections and sendToUser reach the
// user's connections on every node; a cache channel's last event is the cluster's, whichever
// node it was published on.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { delay } = require('../lib/server');
const { Clients, Recorder } = require('../lib/clients');
const { startRedis, startNodes } = require('../lib/cluster');
const { restSdk, ok } = require('../lib/rest');
const { RawPusher } = require('../lib/rawws');

// Time for a wrong extra event to show up before asserting it did not (never a speed check).
const SETTLE_MS = 300;

describe('users and cache channels across three nodes', () => {
  let redis;
  let nodes = [];
  let clients = [];

  before(async () => {
    redis = await startRedis();
    nodes = await startNodes(redis, 3);
    clients = nodes.map((n) => new Clients(n.port));
  });

  after(async () => {
    for (const c of clients) c.closeAll();
    await Promise.all(nodes.map((n) => n.kill()));
    if (redis) await redis.stop();
  });

  /** A pusher-js client on node `i`, signed in as `id`, recording `note` user events. */
  async function signedIn(i, id) {
    const c = await clients[i].connect({ name: `${id}@node${i}`, signin: { id } });
    c.notes = new Recorder(`${c.name} notes`);
    c.pusher.user.bind('note', (data) => c.notes.push(data));
    c.pusher.signin();
    await c.messages.first((m) => m.event === 'pusher:signin_success', `signin of ${id}`);
    await c.messages.first((m) => m.event === 'pusher_internal:subscription_succeeded' &&
      m.channel === `#server-to-user-${id}`, `server-to-user channel of ${id}`);
    return c;
  }

  /** The first message on `channel` after subscription_succeeded, for a new subscriber on node `i`. */
  async function firstAfterSubscribing(i, channel) {
    const c = await clients[i].connect({ name: `cache@node${i}` });
    await c.subscribe(channel);
    const on = () => c.messages.filter((m) => m.channel === channel);
    await c.messages.until(() => {
      const xs = on();
      const at = xs.findIndex((m) => m.event === 'pusher_internal:subscription_succeeded');
      return at >= 0 && xs.length > at + 1;
    }, `a message after subscription_succeeded on ${channel}`);
    const xs = on();
    return xs[xs.findIndex((m) => m.event === 'pusher_internal:subscription_succeeded') + 1];
  }

  it('GET /channels and channel info count every node, from any node', async () => {
    const sub = async (i, channel, user) => {
      const c = await clients[i].connect({ name: `${channel}@node${i}`, user });
      await c.subscribe(channel);
      return c;
    };
    await sub(0, 'count-a');
    await sub(0, 'count-a');
    await sub(1, 'count-a');
    await sub(2, 'count-b');
    await sub(0, 'presence-count', { user_id: 'alice' });
    await sub(1, 'presence-count', { user_id: 'bob' });
    await sub(2, 'presence-count', { user_id: 'bob' });
    const list = await ok(restSdk(nodes[2].port).get({ path: '/channels' }), 'GET /channels on node 2');
    for (const name of ['count-a', 'count-b', 'presence-count']) {
      assert.ok(name in list.body.channels, `${name} listed: ${JSON.stringify(list.body)}`);
    }
    const a = await ok(restSdk(nodes[2].port).get({ path: '/channels/count-a',
      params: { info: 'subscription_count' } }), 'GET count-a on node 2, which has none of it');
    assert.deepEqual(a.body, { occupied: true, subscription_count: 3 });
    const p = await ok(restSdk(nodes[0].port).get({ path: '/channels/presence-count',
      params: { info: 'user_count,subscription_count' } }), 'GET presence-count on node 0');
    assert.deepEqual(p.body, { occupied: true, user_count: 2, subscription_count: 3 });
    const filtered = await ok(restSdk(nodes[1].port).get({ path: '/channels',
      params: { filter_by_prefix: 'presence-', info: 'user_count' } }), 'presence channels on node 1');
    assert.deepEqual(filtered.body.channels['presence-count'], { user_count: 2 });
    const none = await ok(restSdk(nodes[1].port).get({ path: '/channels/count-nobody',
      params: { info: 'subscription_count' } }), 'GET an empty channel');
    assert.deepEqual(none.body, { occupied: false, subscription_count: 0 });
  });

  it('sendToUser on one node reaches the user on every node, and nobody else', async () => {
    const tab0 = await signedIn(0, 'ursula');
    const tab2 = await signedIn(2, 'ursula');
    const victor = await signedIn(2, 'victor');
    const res = await ok(restSdk(nodes[1].port).sendToUser('ursula', 'note', { hi: 1 }),
      'sendToUser on node 1');
    assert.equal(res.status, 200);
    assert.deepEqual(await tab0.notes.first(() => true, 'note on node 0'), { hi: 1 });
    assert.deepEqual(await tab2.notes.first(() => true, 'note on node 2'), { hi: 1 });
    await victor.pingPong();
    await delay(SETTLE_MS);
    assert.equal(victor.notes.items.length, 0);
    assert.equal(tab0.notes.items.length, 1, 'once per tab');
    assert.equal(tab2.notes.items.length, 1, 'once per tab');
  });

  it('terminateUserConnections on one node closes the user everywhere with 4009', async () => {
    const tom0 = await signedIn(0, 'tom');
    const tom1 = await signedIn(1, 'tom');
    const uma = await signedIn(1, 'uma');
    await ok(restSdk(nodes[2].port).terminateUserConnections('tom'), 'terminate on node 2');
    for (const [who, t] of [['tom on node 0', tom0], ['tom on node 1', tom1]]) {
      const close = await t.closes.first(() => true, `${who}: WebSocket close`);
      assert.equal(close.code, 4009, `${who}: close code`);
    }
    await uma.pingPong();
    assert.equal(uma.state, 'connected', 'another user stays');
  });

  it('a cache channel has the cluster\'s last event, whichever node published it', async () => {
    const channel = 'cache-cluster-weather';
    await ok(restSdk(nodes[0].port).trigger(channel, 'forecast', { t: 1 }), 'trigger on node 0');
    const first = await firstAfterSubscribing(2, channel);
    assert.equal(first.event, 'forecast', JSON.stringify(first));
    assert.deepEqual(first.data, { t: 1 }, 'published on node 0 with nobody subscribed anywhere');
    await ok(restSdk(nodes[1].port).trigger(channel, 'forecast', { t: 2 }), 'trigger on node 1');
    // Node 0 published t:1 itself; the cluster's last event is t:2 from node 1.
    const latest = await firstAfterSubscribing(0, channel);
    assert.deepEqual(latest.data, { t: 2 }, JSON.stringify(latest));
    const miss = await firstAfterSubscribing(1, 'cache-never-published');
    assert.equal(miss.event, 'pusher:cache_miss');
  });
});

describe('app_max_connections across two nodes', () => {
  let redis;
  let nodes = [];
  const raws = [];

  before(async () => {
    redis = await startRedis();
    nodes = await startNodes(redis, 2, ['--app-max-connections', '3']);
  });

  after(async () => {
    for (const raw of raws) raw.destroy();
    await Promise.all(nodes.map((n) => n.kill()));
    if (redis) await redis.stop();
  });

  /** Opens a raw connection on node `i`; resolves true when admitted, false on a 4004 close. */
  async function connect(i) {
    const raw = new RawPusher(nodes[i].port, `conn@node${i}`);
    raws.push(raw);
    try {
      await raw.open(undefined, 3000);
      return { raw, admitted: true };
    } catch (_) {
      const close = await raw.closeFrame(3000);
      assert.equal(close.code, 4004, `refused with 4004, got ${close.code}`);
      return { raw, admitted: false };
    }
  }

  /**
   * Tries `attempt` until it says yes or `ms` pass (the nodes report their counts once a second,
   * later on a loaded machine); fails naming `what`.
   */
  async function eventually(what, attempt, ms = 20000) {
    const deadline = Date.now() + ms;
    while (!(await attempt())) {
      assert.ok(Date.now() < deadline, `not within ${ms} ms: ${what}`);
      await delay(250);
    }
  }

  /** True when node `i` refuses a new connection; one it admits is closed again at once. */
  async function refuses(i) {
    const { raw, admitted } = await connect(i);
    if (admitted) raw.destroy();
    return !admitted;
  }

  it('counts the connections of every node', async () => {
    for (const i of [0, 0, 1]) {
      assert.equal((await connect(i)).admitted, true, `connection on node ${i} within the limit`);
    }
    // Each node hears the other's count within about a second.
    await eventually('node 1 knows node 0 holds two of three', () => refuses(1));
    await eventually('and node 0 the other way round', () => refuses(0));
    raws[0].destroy(); // one of node 0's leaves
    await eventually('room again, seen from the other node', async () => (await connect(1)).admitted);
  });
});
