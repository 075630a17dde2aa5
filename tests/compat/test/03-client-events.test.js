'use strict';
// Client events (`client-*`) between pusher-js connections on different shards.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, delay } = require('../lib/server');
const { Clients, Recorder } = require('../lib/clients');

const SETTLE_MS = 300;

/** Two connections on different shards, both subscribed to `channel`. */
async function pairOnShards(clients, channel) {
  const a = await clients.connectOnShard(0, {
    name: 'sender', user: { user_id: 'user-a', user_info: { name: 'A' } },
  });
  const b = await clients.connectOnShard(1, {
    name: 'receiver', user: { user_id: 'user-b', user_info: { name: 'B' } },
  });
  const aCh = await a.subscribe(channel);
  const bCh = await b.subscribe(channel);
  return { a, b, aCh, bCh, aRec: a.record(aCh), bRec: b.record(bCh) };
}

describe('client events enabled', () => {
  let server;
  let clients;

  before(async () => {
    server = await startServer(['--app-enable-client-messages', 'true']);
    clients = new Clients(server.port);
  });

  after(async () => {
    if (clients) clients.closeAll();
    if (server) await server.kill();
  });

  it('relays a client event on a private channel to the other shard, never back to the sender', async () => {
    const ch = 'private-chat-1';
    const { a, b, aCh, bCh, aRec, bRec } = await pairOnShards(clients, ch);
    const payload = { text: 'hello from shard 0', n: 42, nested: { ok: true, list: [1, 'two'] } };
    assert.equal(aCh.trigger('client-message', payload), true, 'pusher-js sent the event');
    const got = await bRec.first((x) => x.event === 'client-message', 'client-message on receiver');
    assert.deepEqual(got.data, payload, 'payload relayed unchanged');
    const raw = b.received('client-message', ch)[0];
    assert.equal(raw.user_id, undefined, 'no user_id on private channels');

    // Reply the other way: once the sender has the reply, its own event would have come back.
    bCh.trigger('client-reply', { re: 'hello' });
    const reply = await aRec.first((x) => x.event === 'client-reply', 'client-reply on sender');
    assert.deepEqual(reply.data, { re: 'hello' });
    await delay(SETTLE_MS);
    assert.equal(aRec.filter((x) => x.event === 'client-message').length, 0,
      'the sender never receives its own client-message');
    assert.equal(bRec.filter((x) => x.event === 'client-reply').length, 0,
      'the replier never receives its own client-reply');
    assert.equal(bRec.filter((x) => x.event === 'client-message').length, 1, 'delivered once');
    assert.equal(a.errors.items.length, 0, `no errors on the sender: ${JSON.stringify(a.errors.items)}`);
  });

  it('adds user_id to client events on presence channels', async () => {
    const ch = 'presence-chat-1';
    const { b, aCh, bCh, aRec, bRec } = await pairOnShards(clients, ch);
    // pusher-js hands the user_id to event-specific callbacks as metadata.
    const bMeta = new Recorder('receiver client-typing metadata');
    bCh.bind('client-typing', (data, metadata) => bMeta.push({ data, metadata }));
    const aMeta = new Recorder('sender client-typing metadata');
    aCh.bind('client-typing', (data, metadata) => aMeta.push({ data, metadata }));

    aCh.trigger('client-typing', { typing: true });
    const got = await bMeta.first(() => true, 'client-typing on receiver');
    assert.deepEqual(got.data, { typing: true });
    assert.deepEqual(got.metadata, { user_id: 'user-a' }, 'pusher-js metadata.user_id is the sender');
    assert.equal(b.received('client-typing', ch)[0].user_id, 'user-a');

    bCh.trigger('client-typing', { typing: false });
    const back = await aMeta.first(() => true, 'client-typing on sender');
    assert.deepEqual(back.metadata, { user_id: 'user-b' });
    assert.deepEqual(back.data, { typing: false });
    await delay(SETTLE_MS);
    assert.equal(aRec.filter((x) => x.event === 'client-typing').length, 1,
      'the sender gets only the other user\'s event, not its own');
    assert.equal(bRec.filter((x) => x.event === 'client-typing').length, 1,
      'the receiver gets only the other user\'s event, not its own');
  });

  it('delivers many client events in order across shards', async () => {
    const ch = 'private-chat-order';
    const { aCh, bRec } = await pairOnShards(clients, ch);
    const N = 50;
    for (let i = 0; i < N; i += 1) aCh.trigger('client-seq', { i });
    await bRec.until((xs) => xs.filter((x) => x.event === 'client-seq').length >= N,
      `${N} client-seq events`);
    const seq = bRec.filter((x) => x.event === 'client-seq').map((x) => x.data.i);
    assert.deepEqual(seq, Array.from({ length: N }, (_, i) => i));
  });

  it('refuses client events on a public channel with pusher:error 4301 and keeps the connection', async () => {
    const ch = 'public-chat';
    const { a, aCh, bRec } = await pairOnShards(clients, ch);
    aCh.trigger('client-nope', { x: 1 });
    const err = await a.errorCode(4301);
    assert.equal(typeof err.data.message, 'string');
    await delay(SETTLE_MS);
    assert.equal(bRec.filter((x) => x.event === 'client-nope').length, 0, 'not relayed');
    assert.equal(a.state, 'connected');
  });

  it('refuses client events on a private-encrypted channel (pusher-js would not send them)', async () => {
    const ch = 'private-encrypted-chat';
    const { a, bRec } = await pairOnShards(clients, ch);
    assert.throws(() => a.pusher.channel(ch).trigger('client-x', {}), /not currently supported/);
    // Sent by hand, as a modified client could.
    a.pusher.send_event('client-x', { nonce: 'AAAA', ciphertext: 'BBBB' }, ch);
    await a.errorCode(4301);
    await delay(SETTLE_MS);
    assert.equal(bRec.filter((x) => x.event === 'client-x').length, 0, 'not relayed');
    assert.equal(a.state, 'connected');
  });

  it('refuses client events on a channel the sender is not subscribed to', async () => {
    const ch = 'private-not-mine';
    const a = await clients.connectOnShard(0, { name: 'outsider' });
    const b = await clients.connectOnShard(1, { name: 'member' });
    const bCh = await b.subscribe(ch);
    const bRec = b.record(bCh);
    a.pusher.send_event('client-sneak', { x: 1 }, ch);
    await a.errorCode(4301);
    await delay(SETTLE_MS);
    assert.equal(bRec.filter((x) => x.event === 'client-sneak').length, 0, 'not relayed');
    assert.equal(a.state, 'connected');
  });
});

describe('client events disabled (default app flag)', () => {
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

  for (const ch of ['private-quiet', 'presence-quiet']) {
    it(`answers a client event on ${ch} with pusher:error 4301 and relays nothing`, async () => {
      const { a, aCh, bRec } = await pairOnShards(clients, ch);
      aCh.trigger('client-hi', { hi: 1 });
      const err = await a.errorCode(4301);
      assert.equal(typeof err.data.message, 'string');
      await delay(SETTLE_MS);
      assert.equal(bRec.filter((x) => x.event === 'client-hi').length, 0, 'not relayed');
      assert.equal(a.state, 'connected', 'connection kept');
    });
  }
});

describe('client event rate limit', () => {
  let server;
  let clients;
  const LIMIT = 5;

  before(async () => {
    server = await startServer(['--app-enable-client-messages', 'true',
      '--app-max-client-events-per-second', String(LIMIT)]);
    clients = new Clients(server.port);
  });

  after(async () => {
    if (clients) clients.closeAll();
    if (server) await server.kill();
  });

  it('answers a burst over the limit with pusher:error 4301, keeps the connection, relays only some', async () => {
    const ch = 'private-burst';
    const { a, aCh, bCh, aRec, bRec } = await pairOnShards(clients, ch);
    const N = 40;
    for (let i = 0; i < N; i += 1) aCh.trigger('client-burst', { i });
    const err = await a.errorCode(4301);
    assert.equal(typeof err.data.message, 'string');
    // Barrier: b's event travels to a after a's burst was handled.
    await delay(SETTLE_MS);
    bCh.trigger('client-done', {});
    await aRec.first((x) => x.event === 'client-done', 'client-done on the sender');
    await delay(SETTLE_MS);
    const relayed = bRec.filter((x) => x.event === 'client-burst').map((x) => x.data.i);
    assert.ok(relayed.length >= 1, 'the first events within the limit are relayed');
    assert.ok(relayed.length < N, `not all ${N} events of a burst are relayed (got ${relayed.length})`);
    assert.ok(relayed.length <= 2 * LIMIT,
      `at most about ${LIMIT}/s are relayed (got ${relayed.length})`);
    assert.deepEqual(relayed, [...relayed].sort((x, y) => x - y), 'relayed ones keep their order');
    assert.equal(a.state, 'connected', 'rate limiting keeps the connection');
    const refusals = a.errors.filter((e) => e.data && e.data.code === 4301).length;
    assert.equal(refusals + relayed.length, N,
      `every event is either relayed or refused once (relayed ${relayed.length}, refused ${refusals})`);
  });
});
