'use strict';
// Webhooks from one ringcast node (2 shards) to a real HTTP receiver, checked with the official
// `pusher` SDK's webhook validator (X-Pusher-Key, X-Pusher-Signature over the raw body), with
// pusher-js clients making the events: channel_occupied / channel_vacated once per channel
// whatever the shards, the 3 s delay of vacated and member_removed and its cancellation on a
// rejoin, member events per user (not per tab), client events, cache misses, event-type and
// channel filters, custom headers, batching, retries while the receiver fails or is down.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, delay, APP, httpGet } = require('../lib/server');
const { Clients } = require('../lib/clients');
const { WebhookReceiver } = require('../lib/webhook_receiver');

const ALL_KINDS = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed',
  'client_event', 'cache_miss'];
// The server holds channel_vacated and member_removed this long for a rejoin.
const LEAVE_DELAY_MS = 3000;

const named = (name, channel) => (e) => e.name === name && e.channel === channel;
const onPath = (path, fn) => (e) => e.path === path && fn(e);

/** Webhook settings for the server: everything to /all, some private events to /private. */
function webhookArgs(receiver, { batching = false } = {}) {
  const hooks = [
    { url: receiver.url('/all'), event_types: ALL_KINDS },
    {
      url: receiver.url('/private'),
      event_types: ['channel_occupied', 'client_event'],
      filter: { channel_name_starts_with: 'private-' },
      headers: { 'X-Team': 'blue' },
    },
  ];
  const args = ['--app-enable-client-messages', 'true', '--app-webhooks', JSON.stringify(hooks)];
  if (batching) args.push('--app-has-webhook-batching-enabled', 'true');
  return args;
}

describe('webhooks from a node alone', () => {
  let server;
  let clients;
  const receiver = new WebhookReceiver();

  before(async () => {
    await receiver.start();
    server = await startServer(webhookArgs(receiver));
    clients = new Clients(server.port);
  });

  after(async () => {
    clients.closeAll();
    await server.kill();
    await receiver.stop();
  });

  it('signs every request so the pusher SDK accepts it, and gives every event an id', async () => {
    const c = await clients.connect({ name: 'signer' });
    await c.subscribe('signed-channel');
    await receiver.waitFor(named('channel_occupied', 'signed-channel'), 1, 'occupied');
    const request = receiver.requests.items.find((r) => r.rawBody.includes('signed-channel'));
    assert.equal(request.method, 'POST');
    assert.equal(request.valid, true, `the SDK refused: ${JSON.stringify(request.headers)}`);
    assert.equal(request.headers['x-pusher-key'], APP.key);
    assert.match(request.headers['x-pusher-signature'], /^[0-9a-f]{64}$/);
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(typeof request.body.time_ms, 'number');
    const [event] = request.body.events;
    assert.equal(typeof event.id, 'string');
    assert.ok(event.id.length > 0);
    const ids = receiver.accepted().map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, `ids are unique: ${ids}`);
  });

  it('reports a channel occupied once over shards and vacated once, 3 s after the last leave', async () => {
    const a = await clients.connectOnShard(0, { name: 'a' });
    const b = await clients.connectOnShard(1, { name: 'b' });
    const c = await clients.connectOnShard(1, { name: 'c' });
    for (const x of [a, b, c]) await x.subscribe('room-1');
    await receiver.waitFor(onPath('/all', named('channel_occupied', 'room-1')), 1, 'occupied');
    a.pusher.unsubscribe('room-1');
    b.pusher.unsubscribe('room-1');
    await c.pingPong();
    const leftAt = Date.now();
    c.pusher.unsubscribe('room-1');
    const [vacated] = await receiver.waitFor(onPath('/all', named('channel_vacated', 'room-1')), 1,
      'vacated after the last leave', LEAVE_DELAY_MS + 10000);
    assert.ok(Date.now() - leftAt >= LEAVE_DELAY_MS - 200,
      `vacated is held for the rejoin delay (came after ${Date.now() - leftAt} ms)`);
    assert.deepEqual(Object.keys(vacated).sort(), ['channel', 'id', 'name', 'path']);
    assert.equal(receiver.accepted(onPath('/all', named('channel_occupied', 'room-1'))).length, 1);
    assert.equal(receiver.accepted(onPath('/all', named('channel_vacated', 'room-1'))).length, 1);
  });

  it('sends neither vacated nor a second occupied when the channel comes back within 3 s', async () => {
    const a = await clients.connect({ name: 'flapper' });
    await a.subscribe('room-2');
    await receiver.waitFor(onPath('/all', named('channel_occupied', 'room-2')), 1, 'occupied');
    a.pusher.unsubscribe('room-2');
    await a.pingPong();
    await delay(500);
    await a.subscribe('room-2');
    // Past the delay of the leave; then a marker channel whose vacated comes after it.
    await delay(LEAVE_DELAY_MS + 1000);
    const m = await clients.connect({ name: 'marker' });
    await m.subscribe('marker-2');
    await receiver.waitFor(onPath('/all', named('channel_occupied', 'marker-2')), 1, 'marker');
    assert.equal(receiver.accepted(onPath('/all', named('channel_vacated', 'room-2'))).length, 0);
    assert.equal(receiver.accepted(onPath('/all', named('channel_occupied', 'room-2'))).length, 1);
  });

  it('reports presence members once per user, whatever the tabs and shards', async () => {
    const user = { user_id: 'alice', user_info: { name: 'Alice' } };
    const tab1 = await clients.connectOnShard(0, { name: 'alice-1', user });
    const tab2 = await clients.connectOnShard(1, { name: 'alice-2', user });
    await tab1.subscribe('presence-club');
    await tab2.subscribe('presence-club');
    const bob = await clients.connect({ name: 'bob', user: { user_id: 'bob' } });
    await bob.subscribe('presence-club');
    await receiver.waitFor(onPath('/all', named('member_added', 'presence-club')), 2, 'two members');
    const added = receiver.accepted(onPath('/all', named('member_added', 'presence-club')));
    assert.deepEqual(added.map((e) => e.user_id).sort(), ['alice', 'bob']);
    tab1.pusher.unsubscribe('presence-club');
    await tab1.pingPong();
    tab2.pusher.unsubscribe('presence-club');
    const [removed] = await receiver.waitFor(onPath('/all', named('member_removed', 'presence-club')),
      1, 'alice removed', LEAVE_DELAY_MS + 10000);
    assert.equal(removed.user_id, 'alice');
    // Bob is still there: the channel is not vacated, bob not removed.
    await bob.pingPong();
    assert.equal(receiver.accepted(onPath('/all', named('channel_vacated', 'presence-club'))).length, 0);
    assert.equal(receiver.accepted(onPath('/all', named('member_removed', 'presence-club'))).length, 1);
    assert.equal(receiver.accepted(onPath('/all', named('member_added', 'presence-club'))).length, 2);
  });

  it('sends client events with their data as a string, socket and user, to both matching webhooks', async () => {
    const user = { user_id: 'carol' };
    const a = await clients.connect({ name: 'talker', user });
    const b = await clients.connect({ name: 'listener', user: { user_id: 'dave' } });
    await a.subscribe('presence-talk');
    await b.subscribe('presence-talk');
    const sender = await clients.connect({ name: 'private-talker' });
    await sender.subscribe('private-talk');
    a.pusher.channel('presence-talk').trigger('client-typing', { who: 'carol' });
    sender.pusher.channel('private-talk').trigger('client-note', 'plain');
    const [typing] = await receiver.waitFor(onPath('/all', named('client_event', 'presence-talk')),
      1, 'client event on presence');
    assert.equal(typing.event, 'client-typing');
    assert.deepEqual(JSON.parse(typing.data), { who: 'carol' });
    assert.equal(typing.socket_id, a.socketId);
    assert.equal(typing.user_id, 'carol');
    const [note] = await receiver.waitFor(onPath('/private', named('client_event', 'private-talk')),
      1, 'client event through the filtered webhook');
    assert.equal(note.data, 'plain');
    assert.equal(note.socket_id, sender.socketId);
    assert.equal(note.user_id, undefined);
    await receiver.waitFor(onPath('/all', named('client_event', 'private-talk')), 1, 'and to /all');
  });

  it('applies the channel filter and the custom headers of a webhook', async () => {
    const c = await clients.connect({ name: 'filter' });
    await c.subscribe('private-filtered');
    await c.subscribe('public-filtered');
    await receiver.waitFor(onPath('/private', named('channel_occupied', 'private-filtered')), 1,
      'private occupied on /private');
    await receiver.waitFor(onPath('/all', named('channel_occupied', 'public-filtered')), 1,
      'public occupied on /all');
    assert.equal(receiver.accepted(onPath('/private', named('channel_occupied', 'public-filtered'))).length, 0,
      'the /private webhook only wants private- channels');
    const privateRequests = receiver.requests.items.filter((r) => r.path === '/private');
    assert.ok(privateRequests.length > 0);
    for (const r of privateRequests) assert.equal(r.headers['x-team'], 'blue');
    for (const r of receiver.requests.items.filter((x) => x.path === '/all')) {
      assert.equal(r.headers['x-team'], undefined);
    }
    // Event-type filter: /private does not take cache misses or members.
    assert.equal(receiver.accepted((e) => e.path === '/private' &&
      !['channel_occupied', 'client_event'].includes(e.name)).length, 0);
  });

  it('reports a cache miss', async () => {
    const c = await clients.connect({ name: 'cache' });
    await c.subscribe('cache-prices');
    const [miss] = await receiver.waitFor(onPath('/all', named('cache_miss', 'cache-prices')), 1,
      'cache miss');
    assert.deepEqual(Object.keys(miss).sort(), ['channel', 'id', 'name', 'path']);
  });

  it('retries a refused request with the same body until the receiver takes it', async () => {
    receiver.failNext(2, 503);
    const before = receiver.requests.items.length;
    const c = await clients.connect({ name: 'retry' });
    await c.subscribe('retried-channel');
    const [event] = await receiver.waitFor(onPath('/all', named('channel_occupied', 'retried-channel')),
      1, 'occupied after two refusals', 20000);
    const attempts = receiver.requests.items.slice(before)
      .filter((r) => r.path === '/all' && r.rawBody.includes('retried-channel'));
    assert.ok(attempts.length >= 3, `two refusals then success: ${attempts.length} attempts`);
    assert.deepEqual(attempts.map((r) => r.refused), [true, true, false]);
    assert.equal(new Set(attempts.map((r) => r.rawBody)).size, 1, 'identical body on every attempt');
    assert.equal(receiver.accepted((e) => e.id === event.id).length, 1);
  });

  it('delivers every event made while the receiver was down once it is back, none twice', async () => {
    await receiver.stop();
    const c = await clients.connect({ name: 'down' });
    for (const name of ['down-1', 'down-2', 'down-3']) await c.subscribe(name);
    c.pusher.unsubscribe('down-3');
    await delay(1500);
    await receiver.start(); // same port
    for (const name of ['down-1', 'down-2', 'down-3']) {
      await receiver.waitFor(onPath('/all', named('channel_occupied', name)), 1, `occupied ${name}`, 30000);
    }
    await receiver.waitFor(onPath('/all', named('channel_vacated', 'down-3')), 1, 'vacated down-3', 30000);
    for (const name of ['down-1', 'down-2', 'down-3']) {
      const got = receiver.accepted(onPath('/all', named('channel_occupied', name)));
      assert.equal(new Set(got.map((e) => e.id)).size, 1, `one event for ${name}`);
    }
    const { body } = await httpGet(server.port, '/metrics');
    const failed = /^ringcast_webhook_requests_failed_total (\d+)/m.exec(body);
    const delivered = /^ringcast_webhook_events_delivered_total (\d+)/m.exec(body);
    assert.ok(failed && Number(failed[1]) > 0, 'failed requests are counted');
    assert.ok(delivered && Number(delivered[1]) > 0, 'delivered events are counted');
  });
});

describe('webhook batching', () => {
  let server;
  let clients;
  const receiver = new WebhookReceiver();

  before(async () => {
    await receiver.start();
    server = await startServer(webhookArgs(receiver, { batching: true }));
    clients = new Clients(server.port);
  });

  after(async () => {
    clients.closeAll();
    await server.kill();
    await receiver.stop();
  });

  it('sends several events in one signed request', async () => {
    const c = await clients.connect({ name: 'batcher' });
    const names = ['batch-1', 'batch-2', 'batch-3', 'batch-4'];
    await Promise.all(names.map((n) => c.subscribe(n)));
    for (const n of names) {
      await receiver.waitFor(onPath('/all', named('channel_occupied', n)), 1, `occupied ${n}`);
    }
    const requests = receiver.requests.items.filter((r) => r.path === '/all' && r.valid);
    assert.ok(requests.every((r) => r.valid));
    assert.ok(requests.some((r) => r.body.events.length > 1),
      `some request carries several events: ${requests.map((r) => r.body.events.length)}`);
    const total = requests.reduce((n, r) => n + r.body.events.length, 0);
    assert.equal(total, names.length, 'each event once');
  });
});
