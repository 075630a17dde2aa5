'use strict';
// Webhooks with cluster semantics: three nodes (engine + bridge each) on one real redis-server,
// every node sending the app's webhooks to one real HTTP receiver (checked with the `pusher`
// SDK). channel_occupied / member_added come once when the first subscriber or connection
// anywhere joins, channel_vacated / member_removed once when the last one anywhere leaves (3 s
// later, and not at all when it comes back on any node in time), also when a node dies without
// a word or a bridge is killed and restarted.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execSync } = require('node:child_process');
const { delay } = require('../lib/server');
const { Clients } = require('../lib/clients');
const { startRedis, startNodes, waitLinked } = require('../lib/cluster');
const { WebhookReceiver } = require('../lib/webhook_receiver');

const LEAVE_DELAY_MS = 3000;
const HEARTBEAT_TTL_MS = 1500;
const named = (name, channel) => (e) => e.name === name && e.channel === channel;
const userEvent = (name, channel, user) => (e) => named(name, channel)(e) && e.user_id === user;

describe('webhooks across three nodes', () => {
  let redis;
  let nodes = [];
  let clients = [];
  let frozenBridgePid = null;
  const receiver = new WebhookReceiver();

  before(async () => {
    await receiver.start();
    redis = await startRedis();
    const hooks = [{
      url: receiver.url('/cluster'),
      event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed',
        'client_event'],
    }];
    nodes = await startNodes(redis, 3, ['--node-heartbeat-ttl-ms', String(HEARTBEAT_TTL_MS),
      '--app-enable-client-messages', 'true', '--app-webhooks', JSON.stringify(hooks)]);
    clients = nodes.map((n) => new Clients(n.port));
  });

  after(async () => {
    for (const c of clients) c.closeAll();
    await Promise.all(nodes.map((n) => n.kill()));
    if (redis) await redis.stop();
    await receiver.stop();
    if (frozenBridgePid) {
      try { process.kill(frozenBridgePid, 'SIGKILL'); } catch (_) { /* already gone */ }
    }
  });

  /** Waits until a marker channel's occupied event arrived: everything before it was sent. */
  async function marker(name) {
    const c = await clients[0].connect({ name: `marker ${name}` });
    await c.subscribe(name);
    await receiver.waitFor(named('channel_occupied', name), 1, `marker ${name}`);
    return c;
  }

  it('a channel is occupied once and vacated once, whatever the nodes', async () => {
    const subs = [];
    for (let i = 0; i < 3; i += 1) {
      const c = await clients[i].connect({ name: `sub${i}` });
      await c.subscribe('cluster-news');
      subs.push(c);
    }
    await receiver.waitFor(named('channel_occupied', 'cluster-news'), 1, 'occupied');
    subs[0].pusher.unsubscribe('cluster-news');
    subs[1].pusher.unsubscribe('cluster-news');
    await subs[0].pingPong();
    await subs[1].pingPong();
    subs[2].pusher.unsubscribe('cluster-news');
    await receiver.waitFor(named('channel_vacated', 'cluster-news'), 1, 'vacated',
      LEAVE_DELAY_MS + 10000);
    await delay(500);
    await marker('marker-1');
    assert.equal(receiver.accepted(named('channel_occupied', 'cluster-news')).length, 1);
    assert.equal(receiver.accepted(named('channel_vacated', 'cluster-news')).length, 1);
  });

  it('members are added once per user with tabs on two nodes, and removed once', async () => {
    const user = { user_id: 'erin', user_info: { name: 'Erin' } };
    const tab0 = await clients[0].connect({ name: 'erin@0', user });
    const tab1 = await clients[1].connect({ name: 'erin@1', user });
    await tab0.subscribe('presence-cluster-hooks');
    await tab1.subscribe('presence-cluster-hooks');
    await receiver.waitFor(userEvent('member_added', 'presence-cluster-hooks', 'erin'), 1, 'added');
    tab0.disconnect();
    await delay(LEAVE_DELAY_MS + 500);
    assert.equal(receiver.accepted(userEvent('member_removed', 'presence-cluster-hooks', 'erin')).length,
      0, 'erin still has a tab on node 1');
    tab1.disconnect();
    await receiver.waitFor(userEvent('member_removed', 'presence-cluster-hooks', 'erin'), 1,
      'removed', LEAVE_DELAY_MS + 10000);
    await receiver.waitFor(named('channel_vacated', 'presence-cluster-hooks'), 1, 'vacated',
      LEAVE_DELAY_MS + 10000);
    await marker('marker-2');
    assert.equal(receiver.accepted(userEvent('member_added', 'presence-cluster-hooks', 'erin')).length, 1);
    assert.equal(receiver.accepted(userEvent('member_removed', 'presence-cluster-hooks', 'erin')).length, 1);
  });

  it('a user and a channel that move to another node within 3 s make no events', async () => {
    const user = { user_id: 'frank' };
    const first = await clients[0].connect({ name: 'frank@0', user });
    await first.subscribe('presence-move');
    await receiver.waitFor(userEvent('member_added', 'presence-move', 'frank'), 1, 'added');
    await receiver.waitFor(named('channel_occupied', 'presence-move'), 1, 'occupied');
    first.disconnect(); // a reconnect through the load balancer lands on another node
    await delay(500);
    const second = await clients[2].connect({ name: 'frank@2', user });
    await second.subscribe('presence-move');
    await delay(LEAVE_DELAY_MS + 1000);
    await marker('marker-3');
    assert.equal(receiver.accepted(userEvent('member_removed', 'presence-move', 'frank')).length, 0);
    assert.equal(receiver.accepted(userEvent('member_added', 'presence-move', 'frank')).length, 1);
    assert.equal(receiver.accepted(named('channel_vacated', 'presence-move')).length, 0);
    assert.equal(receiver.accepted(named('channel_occupied', 'presence-move')).length, 1);
  });

  it('a client event is sent once, by the node it happened on', async () => {
    const a = await clients[1].connect({ name: 'talker', user: { user_id: 'gina' } });
    const b = await clients[2].connect({ name: 'listener', user: { user_id: 'hal' } });
    await a.subscribe('presence-talk-cluster');
    await b.subscribe('presence-talk-cluster');
    a.pusher.channel('presence-talk-cluster').trigger('client-hello', { n: 1 });
    const [event] = await receiver.waitFor(named('client_event', 'presence-talk-cluster'), 1, 'client event');
    assert.equal(event.socket_id, a.socketId);
    assert.equal(event.user_id, 'gina');
    await marker('marker-4');
    assert.equal(receiver.accepted(named('client_event', 'presence-talk-cluster')).length, 1);
  });

  it('a killed bridge comes back without repeating or losing events', async () => {
    const c = await clients[1].connect({ name: 'holder', user: { user_id: 'ivy' } });
    await c.subscribe('presence-bridge-kill');
    await receiver.waitFor(userEvent('member_added', 'presence-bridge-kill', 'ivy'), 1, 'added');
    const bridgePid = Number(execSync(`pgrep -P ${nodes[1].child.pid} ringcast-bridge`).toString().trim());
    process.kill(bridgePid, 'SIGKILL');
    // The engine restarts its bridge (same node id) and resynchronises.
    await delay(1500);
    await waitLinked(nodes[1].port);
    await delay(LEAVE_DELAY_MS + 1000);
    await marker('marker-5');
    assert.equal(receiver.accepted(userEvent('member_added', 'presence-bridge-kill', 'ivy')).length, 1);
    assert.equal(receiver.accepted(userEvent('member_removed', 'presence-bridge-kill', 'ivy')).length, 0);
    assert.equal(receiver.accepted(named('channel_vacated', 'presence-bridge-kill')).length, 0);
    assert.equal(receiver.accepted(named('channel_occupied', 'presence-bridge-kill')).length, 1);
    // And the relinked node still reports its changes.
    c.disconnect();
    await receiver.waitFor(userEvent('member_removed', 'presence-bridge-kill', 'ivy'), 1,
      'removed after the relink', LEAVE_DELAY_MS + 10000);
  });

  it('a node that dies without a word: its members and channels leave once, after the TTL', async () => {
    const survivor = await clients[0].connect({ name: 'jack@0', user: { user_id: 'jack' } });
    await survivor.subscribe('presence-node-death');
    const doomed = await clients[2].connect({ name: 'kate@2', user: { user_id: 'kate' } });
    await doomed.subscribe('presence-node-death');
    await doomed.subscribe('only-on-node-2');
    await receiver.waitFor(userEvent('member_added', 'presence-node-death', 'kate'), 1, 'kate added');
    await receiver.waitFor(named('channel_occupied', 'only-on-node-2'), 1, 'occupied');
    const bridgePid = Number(execSync(`pgrep -P ${nodes[2].child.pid} ringcast-bridge`).toString().trim());
    frozenBridgePid = bridgePid;
    process.kill(bridgePid, 'SIGSTOP');
    nodes[2].child.kill('SIGKILL');
    await receiver.waitFor(userEvent('member_removed', 'presence-node-death', 'kate'), 1,
      'kate removed after node 2 died', HEARTBEAT_TTL_MS + LEAVE_DELAY_MS + 15000);
    await receiver.waitFor(named('channel_vacated', 'only-on-node-2'), 1, 'vacated after node 2 died',
      HEARTBEAT_TTL_MS + LEAVE_DELAY_MS + 15000);
    await delay(1000);
    await marker('marker-6');
    assert.equal(receiver.accepted(userEvent('member_removed', 'presence-node-death', 'kate')).length, 1);
    assert.equal(receiver.accepted(named('channel_vacated', 'only-on-node-2')).length, 1);
    assert.equal(receiver.accepted(named('channel_vacated', 'presence-node-death')).length, 0,
      'jack still holds it on node 0');
    // All events carry distinct ids.
    const ids = receiver.accepted().map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length);
  });
});
