'use strict';
// A subscriber that stops reading is cut off with close 4100 once its queue passes
// --max-outbound-bytes (4096 here); readers that keep up are not.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, withTimeout, delay } = require('../lib/server');
const { Clients, sdk } = require('../lib/clients');
const { RawPusher, OP } = require('../lib/rawws');

const MAX_OUTBOUND = 4096;
const PAYLOAD_CHARS = 3000; // under the 10 KB client event payload limit
// More than the kernel can buffer between a non-reading client and the server (the server's
// send buffer autotunes up to net.ipv4.tcp_wmem max = 4 MiB; the paused receiver keeps its
// initial window), so the server's own queue has to grow past the limit.
const FLOOD_BYTES = Number(process.env.RINGCAST_COMPAT_FLOOD_BYTES || 12 * 1024 * 1024);

/** A raw (hand-made frames) subscriber of `channel`. */
async function rawSubscriber(port, channel, name) {
  const raw = new RawPusher(port, name);
  const socketId = await raw.open();
  const { auth } = sdk().authorizeChannel(socketId, channel);
  raw.send({ event: 'pusher:subscribe', data: { channel, auth } });
  await raw.event('pusher_internal:subscription_succeeded', 5000, channel);
  return raw;
}

/** Event data as the client sent it (relayed as a JSON string or as the object itself). */
function dataOf(msg) {
  return typeof msg.data === 'string' ? JSON.parse(msg.data) : msg.data;
}

/** Resume reading and check the server closed with 4100 then ended TCP. */
async function expectCutWith4100(slow, sent) {
  slow.resumeReading();
  const close = await slow.closeFrame(20000);
  assert.equal(close.code, 4100, `close code (reason ${JSON.stringify(close.reason)})`);
  const how = await withTimeout(slow.ended, 10000, 'the server did not end the TCP connection');
  assert.ok(how === 'end' || how === 'close');
  const frames = slow.frames.items;
  assert.equal(frames[frames.length - 1].opcode, OP.CLOSE, 'the close frame is the last frame');
  const got = frames.filter((f) => f.json && f.json.event === 'client-flood');
  assert.ok(got.length < sent,
    `the slow consumer's queue was dropped (it got ${got.length} of ${sent} events)`);
  got.forEach((f, i) => assert.equal(dataOf(f.json).seq, i,
    'what the slow consumer did get is an in-order prefix'));
}

/**
 * Counts client-flood events on a pusher-js channel; `atLeast(n)` waits for n of them and fails
 * at once (with the close code) if the connection is cut instead.
 */
function counter(client, channel) {
  const state = { received: 0, outOfOrder: null, waiter: null };
  channel.bind('client-flood', (data) => {
    if (data.seq !== state.received && state.outOfOrder === null) {
      state.outOfOrder = { expected: state.received, got: data.seq };
    }
    state.received += 1;
    if (state.waiter && state.received >= state.waiter.n) state.waiter.resolve();
  });
  state.atLeast = (n, ms = 15000) => {
    if (state.received >= n) return Promise.resolve();
    const got = new Promise((resolve) => { state.waiter = { n, resolve }; });
    const cut = client.closes.first(() => true, 'close', ms + 1000).then((c) => {
      throw new Error(`${client.name} (a reader that keeps up) was closed with ${c.code} ` +
        `${JSON.stringify(c.reason)} after ${state.received} events (waiting for ${n}); ` +
        `errors: ${JSON.stringify(client.errors.items)}`);
    });
    cut.catch(() => {});
    return withTimeout(Promise.race([got, cut]), ms,
      `${client.name} got only ${state.received} of ${n} events`);
  };
  return state;
}

describe('slow consumer', () => {
  let server;
  let clients;
  const raws = [];

  before(async () => {
    server = await startServer(['--max-outbound-bytes', String(MAX_OUTBOUND),
      '--app-enable-client-messages', 'true', '--app-max-client-events-per-second', '0']);
    clients = new Clients(server.port);
  });

  after(async () => {
    for (const r of raws) r.destroy();
    if (clients) clients.closeAll();
    if (server) await server.kill();
  });

  it('closes a subscriber that stops reading with close 4100 and ends its TCP connection', async () => {
    const channel = 'private-firehose-1';
    const slow = await rawSubscriber(server.port, channel, 'slow');
    raws.push(slow);
    const sender = await clients.connect({ name: 'sender' });
    const senderCh = await sender.subscribe(channel);

    slow.pauseReading();
    const filler = 'x'.repeat(PAYLOAD_CHARS);
    let sent = 0;
    for (let bytes = 0; bytes < FLOOD_BYTES; bytes += PAYLOAD_CHARS) {
      assert.equal(senderCh.trigger('client-flood', { seq: sent, filler }), true);
      sent += 1;
      if (sent % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    // Barrier: a ping round trip after the flood, so the server has read all of it.
    await sender.pingPong(30000);
    assert.equal(sender.state, 'connected', 'the sender is unaffected');
    assert.deepEqual(sender.errors.items, [], 'no errors on the sender');

    await expectCutWith4100(slow, sent);
  });

  it('a healthy pusher-js subscriber on the same channel gets every event while the slow one is cut', async () => {
    const channel = 'private-firehose-2';
    const slow = await rawSubscriber(server.port, channel, 'slow2');
    raws.push(slow);
    const healthy = await clients.connect({ name: 'healthy' });
    const healthyCh = await healthy.subscribe(channel);
    const count = counter(healthy, healthyCh);
    const sender = await clients.connect({ name: 'sender2' });
    const senderCh = await sender.subscribe(channel);

    slow.pauseReading();
    const filler = 'x'.repeat(PAYLOAD_CHARS);
    const BATCH = 20;
    let sent = 0;
    for (let bytes = 0; bytes < FLOOD_BYTES;) {
      for (let i = 0; i < BATCH; i += 1) {
        assert.equal(senderCh.trigger('client-flood', { seq: sent, filler }), true);
        sent += 1;
        bytes += PAYLOAD_CHARS;
      }
      // Pace by the healthy reader, so only the paused one falls behind.
      await count.atLeast(sent);
    }
    assert.equal(count.received, sent, 'the healthy subscriber got every event');
    assert.equal(count.outOfOrder, null, `in order: ${JSON.stringify(count.outOfOrder)}`);
    assert.equal(healthy.state, 'connected');
    assert.deepEqual(healthy.errors.items, [], 'no errors on the healthy subscriber');
    assert.equal(sender.state, 'connected');

    await expectCutWith4100(slow, sent);

    // The channel still works for the healthy subscriber afterwards.
    senderCh.trigger('client-flood', { seq: sent, filler: 'after' });
    sent += 1;
    await count.atLeast(sent);
    await delay(100);
    assert.equal(count.received, sent);
  });

  it('one event larger than --max-outbound-bytes still reaches an idle, reading subscriber', async () => {
    // 8000 characters: within the 10 KB payload limit and the 64 KiB message limit.
    const channel = 'private-big-one';
    const reader = await clients.connect({ name: 'reader' });
    const readerCh = await reader.subscribe(channel);
    const count = counter(reader, readerCh);
    const sender = await clients.connect({ name: 'sender3' });
    const senderCh = await sender.subscribe(channel);
    senderCh.trigger('client-flood', { seq: 0, filler: 'y'.repeat(8000) });
    await count.atLeast(1, 5000);
    await delay(100);
    assert.equal(reader.state, 'connected');
    assert.deepEqual(reader.closes.items, [], 'the reader was not closed');
  });
});
