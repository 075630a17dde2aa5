'use strict';
// The Redis webhook queue (`--queue-driver redis`), with a real redis-server, a real HTTP
// receiver and the `pusher` SDK's validator: events wait in Redis while the receiver is down,
// survive a kill -9 of the bridge in the middle of delivering them, and arrive afterwards — each
// at least once, and never twice under different ids (the id is the queue entry's). The 3 s hold
// of leaves and its cancellation live in Redis too, on one node and across nodes.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execSync } = require('node:child_process');
const { startServer, delay } = require('../lib/server');
const { Clients } = require('../lib/clients');
const { startRedis, startNodes, waitLinked } = require('../lib/cluster');
const { WebhookReceiver } = require('../lib/webhook_receiver');

const LEAVE_DELAY_MS = 3000;
const STREAM_ID_RE = /^\d+-\d+$/;
const named = (name, channel) => (e) => e.name === name && e.channel === channel;

/** Every accepted delivery of an event carries one id (redeliveries repeat it). */
function assertOneIdPerEvent(receiver, fn, what) {
  const ids = new Set(receiver.accepted(fn).map((e) => e.id));
  assert.equal(ids.size, 1, `${what}: one event, one id (got ${[...ids]})`);
}

function hooksArg(receiver) {
  return JSON.stringify([{
    url: receiver.url('/queued'),
    event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed',
      'client_event'],
  }]);
}

const bridgeOf = (node) => Number(execSync(`pgrep -P ${node.child.pid} ringcast-bridge`)
  .toString().trim());

describe('the Redis webhook queue on one node', () => {
  let redis;
  let server;
  let clients;
  const receiver = new WebhookReceiver();

  before(async () => {
    await receiver.start();
    redis = await startRedis();
    server = await startServer(['--queue-driver', 'redis', '--redis-url', redis.url,
      '--redis-prefix', `queue${process.pid}`, '--app-enable-client-messages', 'true',
      '--app-webhooks', hooksArg(receiver)]);
    await waitLinked(server.port);
    clients = new Clients(server.port);
  });

  after(async () => {
    clients.closeAll();
    await server.kill();
    await redis.stop();
    await receiver.stop();
  });

  it('delivers events with their queue entry id as the event id', async () => {
    const c = await clients.connect({ name: 'first' });
    await c.subscribe('queued-1');
    const [event] = await receiver.waitFor(named('channel_occupied', 'queued-1'), 1, 'occupied');
    assert.match(event.id, STREAM_ID_RE);
    c.pusher.unsubscribe('queued-1');
    await c.pingPong();
    await delay(1000);
    await c.subscribe('queued-1'); // back within 3 s: neither vacated nor a second occupied
    await delay(LEAVE_DELAY_MS + 1000);
    const m = await clients.connect({ name: 'marker' });
    await m.subscribe('queued-marker');
    await receiver.waitFor(named('channel_occupied', 'queued-marker'), 1, 'marker');
    assert.equal(receiver.accepted(named('channel_vacated', 'queued-1')).length, 0);
    assert.equal(receiver.accepted(named('channel_occupied', 'queued-1')).length, 1);
    c.pusher.unsubscribe('queued-1');
    await receiver.waitFor(named('channel_vacated', 'queued-1'), 1, 'vacated', LEAVE_DELAY_MS + 10000);
  });

  it('loses nothing when the receiver is down and the bridge is killed mid-delivery', async () => {
    await receiver.stop();
    const c = await clients.connect({ name: 'outage' });
    const channels = ['outage-1', 'outage-2', 'private-outage-3'];
    for (const name of channels) await c.subscribe(name);
    c.pusher.channel('private-outage-3').trigger('client-note', { n: 3 });
    c.pusher.unsubscribe('outage-2');
    // The bridge has taken the events and is retrying them: kill it without a word.
    await delay(LEAVE_DELAY_MS + 1000);
    process.kill(bridgeOf(server), 'SIGKILL');
    await delay(500);
    await waitLinked(server.port);
    await receiver.start(); // same port
    for (const name of channels) {
      await receiver.waitFor(named('channel_occupied', name), 1, `occupied ${name}`, 30000);
    }
    await receiver.waitFor(named('client_event', 'private-outage-3'), 1, 'client event', 30000);
    await receiver.waitFor(named('channel_vacated', 'outage-2'), 1, 'vacated outage-2', 30000);
    for (const name of channels) {
      assertOneIdPerEvent(receiver, named('channel_occupied', name), `occupied ${name}`);
    }
    assertOneIdPerEvent(receiver, named('client_event', 'private-outage-3'), 'client event');
    const [note] = receiver.accepted(named('client_event', 'private-outage-3'));
    assert.deepEqual(JSON.parse(note.data), { n: 3 });
    assert.equal(note.socket_id, c.socketId);
  });
});

describe('the Redis webhook queue across two nodes', () => {
  let redis;
  let nodes = [];
  let clients = [];
  const receiver = new WebhookReceiver();

  before(async () => {
    await receiver.start();
    redis = await startRedis();
    nodes = await startNodes(redis, 2, ['--queue-driver', 'redis',
      '--app-webhooks', hooksArg(receiver)]);
    clients = nodes.map((n) => new Clients(n.port));
  });

  after(async () => {
    for (const c of clients) c.closeAll();
    await Promise.all(nodes.map((n) => n.kill()));
    await redis.stop();
    await receiver.stop();
  });

  it('members come and go once per user, through the queue, while a bridge is killed', async () => {
    const user = { user_id: 'lena' };
    const tab0 = await clients[0].connect({ name: 'lena@0', user });
    const tab1 = await clients[1].connect({ name: 'lena@1', user });
    await tab0.subscribe('presence-queued');
    await tab1.subscribe('presence-queued');
    const [added] = await receiver.waitFor(named('member_added', 'presence-queued'), 1, 'added');
    assert.match(added.id, STREAM_ID_RE);
    await receiver.stop();
    tab0.disconnect();
    tab1.disconnect();
    await delay(LEAVE_DELAY_MS + 1500);
    process.kill(bridgeOf(nodes[0]), 'SIGKILL');
    process.kill(bridgeOf(nodes[1]), 'SIGKILL');
    await delay(500);
    await Promise.all(nodes.map((n) => waitLinked(n.port)));
    await receiver.start();
    await receiver.waitFor(named('member_removed', 'presence-queued'), 1, 'removed', 30000);
    await receiver.waitFor(named('channel_vacated', 'presence-queued'), 1, 'vacated', 30000);
    assertOneIdPerEvent(receiver, named('member_added', 'presence-queued'), 'added');
    assertOneIdPerEvent(receiver, named('member_removed', 'presence-queued'), 'removed');
    assertOneIdPerEvent(receiver, named('channel_vacated', 'presence-queued'), 'vacated');
  });
});
