'use strict';
// Three ringcast nodes (each with the bridge it supervises) on one real redis-server: the
// official `pusher` SDK publishes on one node, pusher-js clients on the others receive, once;
// presence member lists and member events are cluster-wide, also when a node dies.
const { describe, it, before, after } = require('node:test');
const { execSync } = require('node:child_process');
const assert = require('node:assert/strict');
const { delay } = require('../lib/server');
const { Clients, ENCRYPTION_MASTER_KEY_BASE64 } = require('../lib/clients');
const { restSdk, ok } = require('../lib/rest');
const { startRedis, startNodes } = require('../lib/cluster');

const SETTLE_MS = 400;

describe('three nodes on one Redis', () => {
  let redis;
  let nodes = [];
  let clients = [];

  before(async () => {
    redis = await startRedis();
    nodes = await startNodes(redis, 3, ['--app-enable-client-messages', 'true']);
    clients = nodes.map((n) => new Clients(n.port));
  });

  after(async () => {
    for (const c of clients) c.closeAll();
    await Promise.all(nodes.map((n) => n.kill()));
    if (redis) await redis.stop();
  });

  /** A pusher-js client on node `i` subscribed to `channel`, with its recorder. */
  async function subscriber(i, channel, opts = {}) {
    const c = await clients[i].connect({ name: `node${i}`, ...opts });
    const ch = await c.subscribe(channel);
    return { c, ch, rec: c.record(ch) };
  }

  it('an SDK trigger on node 0 reaches subscribers on every node exactly once', async () => {
    const channel = 'cluster-news';
    const subs = await Promise.all([0, 1, 2, 2].map((i) => subscriber(i, channel)));
    await ok(restSdk(nodes[0].port).trigger(channel, 'headline', { n: 1 }), 'trigger on node 0');
    for (const [k, s] of subs.entries()) {
      // eslint-disable-next-line no-await-in-loop
      const got = await s.rec.first((x) => x.event === 'headline', `headline for subscriber ${k}`);
      assert.deepEqual(got.data, { n: 1 });
    }
    await delay(SETTLE_MS);
    for (const s of subs) {
      assert.equal(s.rec.filter((x) => x.event === 'headline').length, 1, 'delivered once');
    }
  });

  it('socket_id exclusion names a connection on another node', async () => {
    const channel = 'cluster-excl';
    const a = await subscriber(1, channel);
    const b = await subscriber(2, channel);
    await ok(restSdk(nodes[0].port).trigger(channel, 'not-for-a', { x: 1 }, { socket_id: a.c.socketId }),
      'trigger excluding a connection of node 1');
    await b.rec.first((x) => x.event === 'not-for-a', 'event on node 2');
    await delay(SETTLE_MS);
    assert.equal(a.rec.filter((x) => x.event === 'not-for-a').length, 0, 'excluded on node 1');
  });

  it('client events cross nodes and never come back to the sender', async () => {
    const channel = 'private-cluster-chat';
    const a = await subscriber(0, channel);
    const b = await subscriber(2, channel);
    assert.equal(a.ch.trigger('client-hello', { from: 'a' }), true);
    const got = await b.rec.first((x) => x.event === 'client-hello', 'client-hello on node 2');
    assert.deepEqual(got.data, { from: 'a' });
    b.ch.trigger('client-reply', { from: 'b' });
    await a.rec.first((x) => x.event === 'client-reply', 'client-reply on node 0');
    await delay(SETTLE_MS);
    assert.equal(a.rec.filter((x) => x.event === 'client-hello').length, 0, 'not echoed');
    assert.equal(b.rec.filter((x) => x.event === 'client-hello').length, 1, 'delivered once');
  });

  it('encrypted channels: the SDK encrypts on node 1, pusher-js decrypts on node 0', async () => {
    const channel = 'private-encrypted-cluster';
    const a = await subscriber(0, channel);
    const rest = restSdk(nodes[1].port, { encryptionMasterKeyBase64: ENCRYPTION_MASTER_KEY_BASE64 });
    await ok(rest.trigger(channel, 'secret', { pin: 1234 }), 'encrypted trigger on node 1');
    const got = await a.rec.first((x) => x.event === 'secret', 'decrypted event on node 0');
    assert.deepEqual(got.data, { pin: 1234 });
  });

  it('order per publisher holds across the hop', async () => {
    const channel = 'cluster-order';
    const s = await subscriber(2, channel);
    const rest = restSdk(nodes[0].port);
    for (let i = 0; i < 30; i += 1) {
      // eslint-disable-next-line no-await-in-loop
      await ok(rest.trigger(channel, 'seq', { i }), `trigger ${i}`);
    }
    await s.rec.until((xs) => xs.filter((x) => x.event === 'seq').length >= 30, '30 events');
    assert.deepEqual(s.rec.filter((x) => x.event === 'seq').map((x) => x.data.i),
      Array.from({ length: 30 }, (_, i) => i));
  });
});

describe('presence across three nodes', () => {
  let redis;
  let nodes = [];
  let clients = [];
  let frozenBridgePid = null;

  before(async () => {
    redis = await startRedis();
    nodes = await startNodes(redis, 3, ['--node-heartbeat-ttl-ms', '1500']);
    clients = nodes.map((n) => new Clients(n.port));
  });

  after(async () => {
    for (const c of clients) c.closeAll();
    await Promise.all(nodes.map((n) => n.kill()));
    if (redis) await redis.stop();
    if (frozenBridgePid) {
      try { process.kill(frozenBridgePid, 'SIGKILL'); } catch (_) { /* already gone */ }
    }
  });

  async function member(i, channel, userId) {
    const c = await clients[i].connect({
      name: `${userId}@node${i}`, user: { user_id: userId, user_info: { name: userId } },
    });
    const ch = await c.subscribe(channel);
    return { c, ch, rec: c.record(ch) };
  }

  it('member lists are cluster-wide and member events come once per user, whatever the node', async () => {
    const channel = 'presence-cluster-room';
    const alice = await member(0, channel, 'alice');
    const bob = await member(1, channel, 'bob');
    assert.deepEqual(Object.keys(bob.ch.members.members).sort(), ['alice', 'bob'],
      'bob sees alice, who joined on another node');
    await alice.rec.first((x) => x.event === 'pusher:member_added', 'alice hears bob join');
    // GET …/users on a third node, which has no member of its own: the cluster's users.
    const users = await ok(restSdk(nodes[2].port).get({ path: `/channels/${channel}/users` }),
      'GET users on node 2');
    assert.deepEqual(users.body.users.map((u) => u.id).sort(), ['alice', 'bob']);

    // A second tab of bob on a third node: no event; the list still has two users.
    const bobTab2 = await member(2, channel, 'bob');
    assert.equal(bobTab2.ch.members.count, 2);
    await delay(SETTLE_MS);
    assert.equal(alice.rec.filter((x) => x.event === 'pusher:member_added').length, 1,
      'one member_added for bob, not one per tab');

    // Bob's first tab leaves: bob is still a member (tab 2); then tab 2 leaves: removed once.
    bob.c.disconnect();
    await delay(SETTLE_MS);
    assert.equal(alice.rec.filter((x) => x.event === 'pusher:member_removed').length, 0);
    bobTab2.c.disconnect();
    await alice.rec.first((x) => x.event === 'pusher:member_removed', 'bob leaves the cluster');
    await delay(SETTLE_MS);
    assert.equal(alice.rec.filter((x) => x.event === 'pusher:member_removed').length, 1);
    assert.equal(alice.ch.members.count, 1);
  });

  it('a node that dies without a word: its members are removed everywhere within the TTL, once', async () => {
    const channel = 'presence-cluster-kill';
    const alice = await member(0, channel, 'alice');
    await member(2, channel, 'carol');
    await alice.rec.first((x) => x.event === 'pusher:member_added', 'alice hears carol');
    // Freeze node 2's bridge (no heartbeat, no goodbye), then kill -9 its engine: the node is
    // gone as if its host died. The other nodes notice when its heartbeat expires.
    const bridgePid = Number(execSync(`pgrep -P ${nodes[2].child.pid} ringcast-bridge`).toString().trim());
    frozenBridgePid = bridgePid;
    process.kill(bridgePid, 'SIGSTOP');
    nodes[2].child.kill('SIGKILL');
    const removed = await alice.rec.first((x) => x.event === 'pusher:member_removed',
      'carol removed after node 2 died', 15000);
    assert.equal(removed.data.id, 'carol');
    await delay(2000);
    assert.equal(alice.rec.filter((x) => x.event === 'pusher:member_removed').length, 1, 'once');
    assert.equal(alice.ch.members.count, 1);
  });
});
