'use strict';
// A subscriber that stops reading is cut off with close 4100 once its queue passes
// --max-outbound-bytes; a healthy pusher-js subscriber on the same channel gets everything.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, withTimeout, delay } = require('../lib/server');
const { Clients, sdk } = require('../lib/clients');
const { RawPusher, OP } = require('../lib/rawws');

const CHANNEL = 'private-firehose';
const PAYLOAD_CHARS = 3000; // under the 10 KB client event payload limit
const BATCH = 50;
// More than the kernel can buffer between a non-reading client and the server (the server's
// send buffer autotunes up to net.ipv4.tcp_wmem max = 4 MiB; the paused receiver keeps its
// initial window), so the server's own queue has to grow past 4096 bytes.
const FLOOD_BYTES = Number(process.env.RINGCAST_COMPAT_FLOOD_BYTES || 12 * 1024 * 1024);

describe('slow consumer', () => {
  let server;
  let clients;
  let slow;

  before(async () => {
    server = await startServer(['--max-outbound-bytes', '4096',
      '--app-enable-client-messages', 'true', '--app-max-client-events-per-second', '0']);
    clients = new Clients(server.port);
  });

  after(async () => {
    if (slow) slow.destroy();
    if (clients) clients.closeAll();
    if (server) await server.kill();
  });

  it('closes a non-reading subscriber with 4100 while a healthy subscriber gets every event', async () => {
    // The slow consumer: hand-made WebSocket frames over a plain TCP socket.
    slow = new RawPusher(server.port, 'slow');
    const socketId = await slow.open();
    const { auth } = sdk().authorizeChannel(socketId, CHANNEL);
    slow.send({ event: 'pusher:subscribe', data: { channel: CHANNEL, auth } });
    await slow.event('pusher_internal:subscription_succeeded', 5000, CHANNEL);

    const healthy = await clients.connect({ name: 'healthy' });
    const healthyCh = await healthy.subscribe(CHANNEL);
    let received = 0;
    let outOfOrder = null;
    let waitingFor = null;
    healthyCh.bind('client-flood', (data) => {
      if (data.seq !== received && outOfOrder === null) outOfOrder = { expected: received, got: data.seq };
      received += 1;
      if (waitingFor && received >= waitingFor.n) waitingFor.resolve();
    });
    const receivedAtLeast = (n) => (received >= n ? Promise.resolve()
      : withTimeout(new Promise((resolve) => { waitingFor = { n, resolve }; }), 15000,
        `healthy subscriber got only ${received} of ${n} events`));

    const sender = await clients.connect({ name: 'sender' });
    const senderCh = await sender.subscribe(CHANNEL);

    slow.pauseReading();
    const filler = 'x'.repeat(PAYLOAD_CHARS);
    let sent = 0;
    let bytes = 0;
    while (bytes < FLOOD_BYTES) {
      for (let i = 0; i < BATCH; i += 1) {
        const ok = senderCh.trigger('client-flood', { seq: sent, filler });
        assert.equal(ok, true, 'pusher-js could send');
        sent += 1;
        bytes += PAYLOAD_CHARS;
      }
      // Pace the flood by the healthy subscriber so only the paused one falls behind.
      await receivedAtLeast(sent);
    }
    assert.equal(received, sent, 'the healthy subscriber got every event');
    assert.equal(outOfOrder, null, `in order: ${JSON.stringify(outOfOrder)}`);
    assert.equal(healthy.state, 'connected');
    assert.equal(sender.state, 'connected');
    assert.deepEqual(healthy.errors.items, [], 'no errors on the healthy subscriber');
    assert.deepEqual(sender.errors.items, [], 'no errors on the sender');

    // Read again: whatever the kernel still held, then the close frame, then the end of TCP.
    slow.resumeReading();
    const close = await slow.closeFrame(20000);
    assert.equal(close.code, 4100, `close code (reason ${JSON.stringify(close.reason)})`);
    const how = await withTimeout(slow.ended, 10000, 'the server did not end the TCP connection');
    assert.ok(how === 'end' || how === 'close');
    const frames = slow.frames.items;
    assert.equal(frames[frames.length - 1].opcode, OP.CLOSE, 'the close frame is the last frame');
    const slowEvents = frames.filter((f) => f.json && f.json.event === 'client-flood');
    assert.ok(slowEvents.length < sent,
      `the slow consumer's queue was dropped (it got ${slowEvents.length} of ${sent})`);
    slowEvents.forEach((f, i) => assert.equal(JSON.parse(f.json.data).seq, i,
      'what the slow consumer did get is an in-order prefix'));

    // The channel still works for the healthy subscriber afterwards.
    const before = received;
    senderCh.trigger('client-flood', { seq: sent, filler: 'after' });
    sent += 1;
    await receivedAtLeast(before + 1);
    await delay(100);
    assert.equal(received, sent);
  });
});
