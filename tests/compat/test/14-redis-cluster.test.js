'use strict';
// `--redis-cluster`: three ringcast nodes (engine + bridge each) on a real three-master Redis
// Cluster. Ordinary channels travel over sharded pub/sub (SSUBSCRIBE on the master owning the
// channel's slot), presence over classic pub/sub with its state under one hash tag; pusher-js
// clients and the `pusher` SDK must not see the difference: events published on one node reach
// the others once, whichever master carries them, presence is cluster-wide, and both survive
// Redis dropping every pub/sub connection (CLIENT KILL TYPE pubsub) and forgetting its scripts
// (SCRIPT FLUSH). Webhooks through the Redis queue are sent once per event.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { delay, APP } = require('../lib/server');
const { Clients } = require('../lib/clients');
const { startNodes } = require('../lib/cluster');
const { startRedisCluster } = require('../lib/redis_cluster');
const { restSdk, ok } = require('../lib/rest');
const { WebhookReceiver } = require('../lib/webhook_receiver');

// Time for a wrong extra event to show up before asserting it did not (never a speed check).
const SETTLE_MS = 400;
// How long Redis pub/sub may take to come back after its connections were killed.
const RESUBSCRIBE_MS = 15000;
const LEAVE_DELAY_MS = 3000;
const STREAM_ID_RE = /^\d+-\d+$/;
const CLUSTER_ARGS = ['--redis-cluster', '--app-enable-client-messages', 'true'];

/** The `--redis-prefix` startNodes gave a node. */
const prefixOf = (node) => node.args[node.args.indexOf('--redis-prefix') + 1];
/** The Redis channel of a Pusher channel (bridge/src/redis/layout.rs `redis_channel_name`). */
const redisChannel = (prefix, channel) => `${prefix}#${APP.appId}#${channel}`;
const count = (rec, event) => rec.filter((x) => x.event === event).length;

/**
 * `${stem}-N` channel names, `perMaster` on each master, all in different slots (a
 * resubscription in one multi-slot SSUBSCRIBE fails): [{channel, name, slot, port}].
 */
async function channelsOnEveryMaster(cluster, prefix, stem, perMaster) {
  const byPort = new Map(cluster.ports.map((p) => [p, []]));
  for (let i = 0; [...byPort.values()].some((xs) => xs.length < perMaster); i += 1) {
    if (i > 10000) throw new Error(`no ${perMaster} channels per master found for ${stem}`);
    const channel = `${stem}-${i}`;
    const name = redisChannel(prefix, channel);
    const slot = cluster.slotOf(name);
    // eslint-disable-next-line no-await-in-loop
    const port = await cluster.ownerPort(slot);
    const xs = byPort.get(port);
    if (xs.length < perMaster && !xs.some((x) => x.slot === slot)) xs.push({ channel, name, slot, port });
  }
  return [...byPort.values()].flat();
}

/** `PUBSUB <sub> names…` on one master → Map name → subscriber count. */
async function numsub(cluster, port, sub, names) {
  const lines = (await cluster.redisCli(port, 'PUBSUB', sub, ...names)).trim().split('\n');
  const counts = new Map();
  for (let i = 0; i + 1 < lines.length; i += 2) counts.set(lines[i], Number(lines[i + 1]));
  return counts;
}

/** Starts a Redis Cluster and three nodes on it with `extraArgs`. */
async function startAll(extraArgs = []) {
  const cluster = await startRedisCluster({ masters: 3 });
  try {
    const nodes = await startNodes(cluster, 3, [...CLUSTER_ARGS, ...extraArgs]);
    return { cluster, nodes, clients: nodes.map((n) => new Clients(n.port)) };
  } catch (e) {
    await cluster.stop();
    throw e;
  }
}

async function stopAll(setup) {
  if (!setup) return;
  for (const c of setup.clients) c.closeAll();
  await Promise.all(setup.nodes.map((n) => n.kill()));
  await setup.cluster.stop();
}

describe('three nodes on a three-master Redis Cluster', () => {
  let setup;
  let cluster;
  let nodes;
  let clients;
  let prefix;
  let channels = []; // ordinary channels, two per master
  const subs = []; // subscribers of every channel of `channels`: one on node 1, two on node 2

  before(async () => {
    setup = await startAll();
    ({ cluster, nodes, clients } = setup);
    prefix = prefixOf(nodes[0]);
    channels = await channelsOnEveryMaster(cluster, prefix, 'rc-news', 2);
    for (const i of [1, 2, 2]) {
      // eslint-disable-next-line no-await-in-loop
      const c = await clients[i].connect({ name: `sub${subs.length}@node${i}` });
      const recs = {};
      for (const { channel } of channels) {
        // eslint-disable-next-line no-await-in-loop
        recs[channel] = c.record(await c.subscribe(channel));
      }
      subs.push({ c, recs });
    }
  });

  after(async () => {
    await stopAll(setup);
  });

  async function member(i, channel, userId) {
    const c = await clients[i].connect({
      name: `${userId}@node${i}`, user: { user_id: userId, user_info: { name: userId } },
    });
    const ch = await c.subscribe(channel);
    return { c, ch, rec: c.record(ch) };
  }

  /**
   * After a fault: publishes on node 0 with a new event name (`tag`-round) each round until every
   * subscriber got one on every channel, then one more event that must arrive exactly once;
   * no event twice, and the sharded subscriptions back on each channel's master.
   */
  async function deliversAgainOnEveryChannel(tag) {
    // Publish with a new event name each round until every subscriber has one on every channel.
    const rest = restSdk(nodes[0].port);
    const resubbed = (channel) => subs.every((s) => s.recs[channel].items
      .some((x) => x.event.startsWith(`${tag}-`)));
    const deadline = Date.now() + RESUBSCRIBE_MS;
    for (let round = 0; !channels.every(({ channel }) => resubbed(channel)); round += 1) {
      if (Date.now() > deadline) {
        const missing = [];
        for (const { channel, name, port } of channels.filter((x) => !resubbed(x.channel))) {
          const who = subs.filter((x) => !x.recs[channel].items
            .some((e) => e.event.startsWith(`${tag}-`))).map((x) => x.c.name);
          // eslint-disable-next-line no-await-in-loop
          const shard = await numsub(cluster, port, 'SHARDNUMSUB', [name]);
          missing.push(`${channel} (master ${port}, SHARDNUMSUB ${shard.get(name)}) for ${who.join(' ')}`);
        }
        assert.fail(`no delivery after ${RESUBSCRIBE_MS} ms of publishing on: ${missing.join('; ')}` +
          `\nnode logs (warnings and errors):\n${nodes.map((n, i) => n.stderr.split('\n')
            .filter((l) => /WARN|ERROR/.test(l)).slice(-8).map((l) => `node ${i}: ${l}`).join('\n'))
            .join('\n')}`);
      }
      for (const { channel } of channels.filter((x) => !resubbed(x.channel))) {
        // eslint-disable-next-line no-await-in-loop
        await ok(rest.trigger(channel, `${tag}-${round}`, { round }), `trigger round ${round}`);
      }
      // eslint-disable-next-line no-await-in-loop
      await delay(250);
    }
    // Resubscribed once: one more event arrives once on every channel.
    for (const { channel } of channels) {
      // eslint-disable-next-line no-await-in-loop
      await ok(rest.trigger(channel, `${tag}-once`, { channel }), `trigger on ${channel}`);
    }
    for (const s of subs) {
      for (const { channel, port } of channels) {
        // eslint-disable-next-line no-await-in-loop
        await s.recs[channel].first((x) => x.event === `${tag}-once`,
          `${s.c.name}: ${tag}-once on ${channel} (master ${port})`);
      }
    }
    await delay(SETTLE_MS);
    for (const s of subs) {
      for (const { channel } of channels) {
        const events = s.recs[channel].items.map((x) => x.event)
          .filter((e) => e.startsWith(`${tag}-`) || e === `${tag}-once`);
        assert.equal(new Set(events).size, events.length, `${s.c.name} on ${channel}: no duplicates ` +
          `(${events.join(', ')})`);
        assert.equal(count(s.recs[channel], `${tag}-once`), 1);
      }
    }
    for (const { channel, name, port } of channels) {
      // eslint-disable-next-line no-await-in-loop
      const shard = await numsub(cluster, port, 'SHARDNUMSUB', [name]);
      assert.ok(shard.get(name) >= 2, `${channel}: sharded subscriptions back on master ${port}`);
    }
  }

  it('an SDK trigger on node 0 reaches every subscriber on nodes 1 and 2 once, on every master', async () => {
    assert.equal(new Set(channels.map((x) => x.port)).size, 3, 'the channels cover all three masters');
    const rest = restSdk(nodes[0].port);
    for (const { channel } of channels) {
      // eslint-disable-next-line no-await-in-loop
      await ok(rest.trigger(channel, 'headline', { channel }), `trigger on ${channel}`);
    }
    for (const [k, s] of subs.entries()) {
      for (const { channel, port } of channels) {
        // eslint-disable-next-line no-await-in-loop
        const got = await s.recs[channel].first((x) => x.event === 'headline',
          `headline on ${channel} (master ${port}) for subscriber ${k}`);
        assert.deepEqual(got.data, { channel });
      }
    }
    await delay(SETTLE_MS);
    for (const s of subs) {
      for (const { channel } of channels) {
        assert.equal(count(s.recs[channel], 'headline'), 1, `${s.c.name}: ${channel} delivered once`);
      }
    }
  });

  it('ordinary channels are sharded subscriptions on the master owning their slot', async () => {
    for (const { channel, name, port } of channels) {
      // eslint-disable-next-line no-await-in-loop
      const shard = await numsub(cluster, port, 'SHARDNUMSUB', [name]);
      assert.ok(shard.get(name) >= 2,
        `${channel}: nodes 1 and 2 each hold an SSUBSCRIBE of ${name} on master ${port}; ` +
        `PUBSUB SHARDNUMSUB says ${shard.get(name)}`);
    }
    const names = channels.map((x) => x.name);
    for (const port of cluster.ports) {
      // eslint-disable-next-line no-await-in-loop
      const classic = await numsub(cluster, port, 'NUMSUB', names);
      for (const name of names) {
        assert.equal(classic.get(name), 0, `${name}: no classic SUBSCRIBE on master ${port}`);
      }
    }
  });

  it('a cache channel has the last event published on another node, whichever master holds it', async () => {
    const caches = await channelsOnEveryMaster(cluster, prefix, 'cache-rc', 1);
    const rest = restSdk(nodes[0].port);
    for (const { channel } of caches) {
      // eslint-disable-next-line no-await-in-loop
      await ok(rest.trigger(channel, 'forecast', { channel }), `trigger on ${channel}`);
    }
    for (const { channel, port } of [...caches, { channel: 'cache-rc-never', port: 'any' }]) {
      // eslint-disable-next-line no-await-in-loop
      const c = await clients[2].connect({ name: `cache@node2 ${channel}` });
      // eslint-disable-next-line no-await-in-loop
      await c.subscribe(channel);
      // From the connection's own record: the cached event comes right after the success.
      const on = () => c.messages.filter((m) => m.channel === channel);
      const at = () => on().findIndex((m) => m.event === 'pusher_internal:subscription_succeeded');
      // eslint-disable-next-line no-await-in-loop
      await c.messages.until(() => at() >= 0 && on().length > at() + 1,
        `a message after subscription_succeeded on ${channel} (master ${port})`);
      const first = on()[at() + 1];
      if (channel === 'cache-rc-never') assert.equal(first.event, 'pusher:cache_miss');
      else assert.deepEqual([first.event, first.data], ['forecast', { channel }]);
    }
  });

  it('presence: members on different nodes, a user with tabs on two nodes is one member', async () => {
    const channel = 'presence-rc-room';
    const alice = await member(0, channel, 'alice');
    const bob = await member(1, channel, 'bob');
    assert.deepEqual(Object.keys(bob.ch.members.members).sort(), ['alice', 'bob'],
      'bob on node 1 sees alice, who joined on node 0');
    await alice.rec.first((x) => x.event === 'pusher:member_added', 'alice hears bob join');
    const users = await ok(restSdk(nodes[2].port).get({ path: `/channels/${channel}/users` }),
      'GET users on node 2, which has no subscriber');
    assert.deepEqual(users.body.users.map((u) => u.id).sort(), ['alice', 'bob']);

    const bobTab2 = await member(2, channel, 'bob');
    assert.deepEqual(Object.keys(bobTab2.ch.members.members).sort(), ['alice', 'bob']);
    await delay(SETTLE_MS);
    assert.equal(count(alice.rec, 'pusher:member_added'), 1, 'one member_added for bob, not one per tab');

    await bob.c.disconnected();
    await delay(SETTLE_MS);
    assert.equal(count(alice.rec, 'pusher:member_removed'), 0, 'bob still has a tab on node 2');
    await bobTab2.c.disconnected();
    const removed = await alice.rec.first((x) => x.event === 'pusher:member_removed', 'bob leaves');
    assert.equal(removed.data.id, 'bob');
    await delay(SETTLE_MS);
    assert.equal(count(alice.rec, 'pusher:member_removed'), 1, 'member_removed once');
    assert.equal(alice.ch.members.count, 1);
  });

  it('client events cross nodes once and never come back to the sender', async () => {
    const privates = await channelsOnEveryMaster(cluster, prefix, 'private-rc-chat', 1);
    for (const channel of [...privates.map((x) => x.channel), 'presence-rc-chat']) {
      /* eslint-disable no-await-in-loop */
      const a = await member(0, channel, `a-${channel}`);
      const b = await member(1, channel, `b-${channel}`);
      const c = await member(2, channel, `c-${channel}`);
      assert.equal(b.ch.trigger('client-hello', { from: 'b' }), true);
      for (const [who, x] of [['node 0', a], ['node 2', c]]) {
        const got = await x.rec.first((e) => e.event === 'client-hello',
          `${channel}: client-hello on ${who}`);
        assert.deepEqual(got.data, { from: 'b' });
        const raw = x.c.received('client-hello', channel)[0];
        if (channel.startsWith('presence-')) assert.equal(raw.user_id, `b-${channel}`, 'the sender');
      }
      await b.c.pingPong();
      await delay(SETTLE_MS);
      assert.equal(count(a.rec, 'client-hello'), 1, `${channel}: once on node 0`);
      assert.equal(count(c.rec, 'client-hello'), 1, `${channel}: once on node 2`);
      assert.equal(count(b.rec, 'client-hello'), 0, `${channel}: not echoed to the sender`);
      /* eslint-enable no-await-in-loop */
    }
  });

  it('after CLIENT KILL TYPE pubsub on every master, every channel delivers again, once', async () => {
    for (const port of cluster.ports) {
      // eslint-disable-next-line no-await-in-loop
      const killed = Number((await cluster.redisCli(port, 'CLIENT', 'KILL', 'TYPE', 'pubsub')).trim());
      assert.ok(killed >= 1, `master ${port} had pub/sub connections to kill (killed ${killed})`);
    }
    await deliversAgainOnEveryChannel('after-kill');
  });

  it('after CLIENT KILL TYPE pubsub, presence members still reach other nodes', async () => {
    const channel = 'presence-rc-after-kill';
    const watcher = await member(0, channel, 'watcher');
    // The classic subscription may come back later than the sharded ones: new users until one
    // is seen, then that one exactly once.
    const deadline = Date.now() + RESUBSCRIBE_MS;
    let seen = null;
    for (let k = 0; !seen; k += 1) {
      if (Date.now() > deadline) assert.fail(`no member_added on node 0 within ${RESUBSCRIBE_MS} ms`);
      // eslint-disable-next-line no-await-in-loop
      const m = await member(2, channel, `late-${k}`);
      // eslint-disable-next-line no-await-in-loop
      seen = await watcher.rec.first((x) => x.event === 'pusher:member_added' && x.data.id === `late-${k}`,
        `late-${k} added`, 1500).catch(() => null);
      if (!seen) m.c.disconnect();
    }
    await delay(SETTLE_MS);
    assert.equal(watcher.rec.filter((x) => x.event === 'pusher:member_added' &&
      x.data.id === seen.data.id).length, 1, 'member_added once');
  });

  it('after SCRIPT FLUSH on every master, presence still works across nodes', async () => {
    for (const port of cluster.ports) {
      // eslint-disable-next-line no-await-in-loop
      assert.equal((await cluster.redisCli(port, 'SCRIPT', 'FLUSH')).trim(), 'OK');
    }
    const channel = 'presence-rc-after-flush';
    const watcher = await member(0, channel, 'watcher');
    const newcomer = await member(2, channel, 'newcomer');
    assert.deepEqual(Object.keys(newcomer.ch.members.members).sort(), ['newcomer', 'watcher']);
    const added = await watcher.rec.first((x) => x.event === 'pusher:member_added', 'newcomer added');
    assert.equal(added.data.id, 'newcomer');
    const users = await ok(restSdk(nodes[1].port).get({ path: `/channels/${channel}/users` }),
      'GET users on node 1');
    assert.deepEqual(users.body.users.map((u) => u.id).sort(), ['newcomer', 'watcher']);
    await newcomer.c.disconnected();
    await watcher.rec.first((x) => x.event === 'pusher:member_removed', 'newcomer leaves');
    await delay(SETTLE_MS);
    assert.equal(count(watcher.rec, 'pusher:member_added'), 1, 'member_added once');
    assert.equal(count(watcher.rec, 'pusher:member_removed'), 1, 'member_removed once');
  });
  it('a master killed (-9) and started again: its channels deliver again, no node restarted', async () => {
    const { port } = channels[0];
    await cluster.restart(port);
    await deliversAgainOnEveryChannel(`after-restart-${port}`);
  });
});

describe('webhooks through the Redis queue on a Redis Cluster', () => {
  let setup;
  let clients;
  const receiver = new WebhookReceiver();
  const named = (name, channel) => (e) => e.name === name && e.channel === channel;

  /** Every accepted delivery of an event carries one queue entry id (redeliveries repeat it). */
  function assertOnce(fn, what) {
    const ids = new Set(receiver.accepted(fn).map((e) => e.id));
    assert.equal(ids.size, 1, `${what}: one event, one id (got ${[...ids]})`);
  }

  before(async () => {
    await receiver.start();
    const hooks = [{
      url: receiver.url('/rc'),
      event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed',
        'subscription_count'],
    }];
    setup = await startAll(['--queue-driver', 'redis', '--app-webhooks', JSON.stringify(hooks)]);
    ({ clients } = setup);
  });

  after(async () => {
    await stopAll(setup);
    await receiver.stop();
  });

  it('a channel subscribed on two nodes is occupied once and vacated once', async () => {
    const channel = 'rc-hooked';
    const a = await clients[0].connect({ name: 'a@node0' });
    const b = await clients[1].connect({ name: 'b@node1' });
    await a.subscribe(channel);
    await b.subscribe(channel);
    const [occupied] = await receiver.waitFor(named('channel_occupied', channel), 1, 'occupied');
    assert.match(occupied.id, STREAM_ID_RE, 'sent through the Redis queue');
    // The cluster's subscription count: both nodes' subscribers, summed on one master.
    await receiver.events.until(() => {
      const counts = receiver.accepted(named('subscription_count', channel));
      return counts.length > 0 && counts[counts.length - 1].subscription_count === 2;
    }, 'subscription_count 2 (one subscriber on each of two nodes)', 10000);
    await a.disconnected();
    await b.disconnected();
    await receiver.waitFor(named('channel_vacated', channel), 1, 'vacated', LEAVE_DELAY_MS + 10000);
    await delay(1000);
    assertOnce(named('channel_occupied', channel), 'channel_occupied');
    assertOnce(named('channel_vacated', channel), 'channel_vacated');
  });

  it('a user with tabs on two nodes is added once and removed once', async () => {
    const channel = 'presence-rc-hooked';
    const user = { user_id: 'mona' };
    const tab0 = await clients[0].connect({ name: 'mona@node0', user });
    const tab2 = await clients[2].connect({ name: 'mona@node2', user });
    await tab0.subscribe(channel);
    await tab2.subscribe(channel);
    await receiver.waitFor(named('member_added', channel), 1, 'added');
    await tab0.disconnected();
    await delay(LEAVE_DELAY_MS + 500);
    assert.equal(receiver.accepted(named('member_removed', channel)).length, 0,
      'mona still has a tab on node 2');
    await tab2.disconnected();
    await receiver.waitFor(named('member_removed', channel), 1, 'removed', LEAVE_DELAY_MS + 10000);
    await delay(1000);
    assertOnce(named('member_added', channel), 'member_added');
    assertOnce(named('member_removed', channel), 'member_removed');
  });
});
