'use strict';
// Ekko's rooms on ringcast through the official socket.io-client 4, two shards: subscribe,
// publish and unsubscribe as the Ekko client calls them, presence rooms, the admin room,
// acknowledgements, the channel space shared with Pusher both ways (the pusher SDK's REST
// publish to Socket.IO, a Socket.IO publish to pusher-js), and hostile input bounded.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const WebSocket = require('ws');
const { startServer, withTimeout, delay, APP } = require('../lib/server');
const { Clients } = require('../lib/clients');
const { restSdk } = require('../lib/rest');
const { token, EkkoClient } = require('../lib/socketio');

const OK = { ok: true };

function rssKb(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

/** A raw Engine.IO socket joined to the app's namespace, answering pings only if told. */
async function rawJoined(port, { answerPings = true } = {}) {
  const raw = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
  const frames = [];
  raw.on('message', (data) => {
    const text = data.toString();
    if (text === '2' && answerPings) raw.send('3');
    else frames.push(text);
  });
  const closed = new Promise((resolve) => raw.on('close', (code) => resolve(code)));
  await withTimeout(new Promise((resolve) => raw.on('open', resolve)), 3000, 'no upgrade');
  raw.send(`40/${APP.appId},${JSON.stringify({ jwt: token(APP.appId, APP.secret), uuid: 'raw' })}`);
  await withTimeout((async () => {
    while (!frames.some((f) => f.startsWith(`40/${APP.appId},`))) await delay(10);
  })(), 3000, 'no CONNECT answer');
  return { raw, frames, closed };
}

describe('socket.io: Ekko rooms in the one channel space', () => {
  let server;
  let clients;
  const ekko = [];
  const make = async (opts) => {
    const client = await EkkoClient.connect(server.port, opts);
    ekko.push(client);
    return client;
  };

  before(async () => {
    server = await startServer([]);
    clients = new Clients(server.port);
  });

  after(async () => {
    for (const client of ekko) client.close();
    if (clients) clients.closeAll();
    if (server) await server.kill();
  });

  it('subscribes, publishes to everyone in the channel (the sender too) and unsubscribes', async () => {
    const alice = await make({ uuid: 'alice' });
    const bob = await make({ uuid: 'bob' });
    assert.deepEqual(await alice.subscribe(['chat']), OK);
    assert.deepEqual(await bob.subscribe(['chat', 'other']), OK);
    const payload = { channel: 'chat', message: { text: 'hi', n: [1, 2] }, uuid: 'bob', extra: 'kept' };
    assert.deepEqual(await bob.call('publish', payload), OK);
    for (const client of [alice, bob]) {
      const got = await client.first('message', (m) => m.channel === 'chat', `${client.uuid}: the publish`);
      assert.deepEqual(got, payload);
    }
    // Unsubscribing: a channel never joined and a missing list are no-ops, acknowledged.
    assert.deepEqual(await alice.unsubscribe(['chat', 'never-joined']), OK);
    assert.deepEqual(await alice.call('unsubscribe', { uuid: 'alice' }), OK);
    assert.deepEqual(await bob.publish('chat', 'after'), OK);
    await bob.first('message', (m) => m.message === 'after', 'bob: its own second publish');
    await delay(200);
    assert.equal(alice.received('message').filter((m) => m.message === 'after').length, 0,
      'alice left the channel');
  });

  it('announces presence joins and leaves in the presence room, with eventName', async () => {
    const carol = await make({ uuid: 'carol' });
    assert.deepEqual(await carol.subscribe(['lobby'], { withPresence: true }), OK);
    const joined = (uuid) => ({ eventName: 'joined', channel: 'lobby', presenceChannel: 'lobby_presence', uuid });
    assert.deepEqual(await carol.first('presence', (p) => p.uuid === 'carol', 'carol: its own joined'), joined('carol'));
    const dave = await make({ uuid: 'dave' });
    await dave.subscribe(['lobby'], { withPresence: true });
    assert.deepEqual(await carol.first('presence', (p) => p.uuid === 'dave', 'carol: dave joined'), joined('dave'));
    dave.close();
    const left = await carol.first('presence', (p) => p.uuid === 'dave' && p.eventName === 'left', 'carol: dave left');
    assert.deepEqual(left, { ...joined('dave'), eventName: 'left' });
  });

  it('tells the admin room about connections and joins; other tokens may not join it', async () => {
    const admin = await make({ uuid: 'boss', admin: true });
    const user = await make({ uuid: 'erin' });
    const refused = await user.subscribe(['admin']);
    assert.equal(refused.ok, false);
    assert.match(refused.error, /admin/);
    await user.subscribe(['news']);
    user.close();
    const events = ['connection', 'joined', 'disconnect'];
    for (const event of events) {
      const status = await admin.first('status', (s) => s.uuid === 'erin' && s.event === event, `status ${event}`);
      assert.equal(status.app, APP.appId);
      assert.equal(status.admin, false);
    }
    assert.deepEqual(await admin.subscribe(['admin']), OK);
  });

  it('refuses what a Socket.IO client may not use, in the acknowledgement, and goes on', async () => {
    const frank = await make({ uuid: 'frank' });
    for (const name of ['private-x', 'presence-x', 'cache-x', 'bad name']) {
      const answer = await frank.subscribe([name]);
      assert.equal(answer.ok, false, name);
      assert.equal(typeof answer.error, 'string', name);
    }
    const unknown = await frank.call('nonsense', {});
    assert.deepEqual(unknown, { ok: false, error: 'Unknown event: nonsense' });
    // Without an acknowledgement, a refusal is an `error` event.
    frank.socket.emit('publish', { channel: 'private-x', message: 1 });
    const error = await frank.first('error', () => true, 'an error event');
    assert.match(error.message, /public channels only/);
    assert.deepEqual(await frank.subscribe(['fine']), OK);
  });

  it('delivers a Pusher REST publish to Socket.IO and a Socket.IO publish to pusher-js', async () => {
    const gina = await make({ uuid: 'gina' });
    await gina.subscribe(['shared']);
    const pusherClient = await clients.connect({ name: 'pusher-js' });
    const channel = await pusherClient.subscribe('shared');
    const seen = pusherClient.record(channel);

    await restSdk(server.port).trigger('shared', 'price', { usd: 3 });
    const fromRest = await gina.first('message', (m) => m.event === 'price', 'the REST publish');
    // The Pusher SDK sends data as a JSON string; it reaches Socket.IO unchanged.
    assert.deepEqual(fromRest, { channel: 'shared', message: JSON.stringify({ usd: 3 }), event: 'price' });

    await gina.publish('shared', { text: 'to pusher' });
    const got = await seen.first((e) => e.event === 'message', 'the Socket.IO publish on pusher-js');
    assert.deepEqual(got.data, { text: 'to pusher' });
  });

  it('bounds hostile clients: namespace floods, huge packets, error floods, publishers that never read', async () => {
    // Namespace flood: the 17th namespace is refused, the connection stays.
    const flood = await rawJoined(server.port);
    for (let i = 0; i < 20; i += 1) flood.raw.send(`40/ns${i},{}`);
    await withTimeout((async () => {
      while (flood.frames.filter((f) => f.startsWith('44/')).length < 20) await delay(10);
    })(), 3000, 'every extra namespace answered');
    assert.equal(flood.raw.readyState, WebSocket.OPEN);

    // A packet over maxPayload closes with 1009.
    const huge = await rawJoined(server.port);
    huge.raw.send(`42/${APP.appId},["publish",{"channel":"c","message":"${'x'.repeat(1_000_100)}"}]`);
    assert.equal(await withTimeout(huge.closed, 5000, 'huge packet: no close'), 1009);

    // 64 refused packets are answered; the next closes with 1008.
    const errors = await rawJoined(server.port);
    for (let i = 0; i < 70; i += 1) errors.raw.send(`42/${APP.appId},["nonsense"]`);
    assert.equal(await withTimeout(errors.closed, 5000, 'error flood: no close'), 1008);

    // A subscriber that publishes 16 KiB messages to its own channel and never reads: its queue
    // fills, it is cut, and the server's memory stays bounded.
    const before = rssKb(server.child.pid);
    const reader = await rawJoined(server.port);
    reader.raw.send(`42/${APP.appId},["subscribe",{"channels":["sink"]}]`);
    reader.raw.pause(); // stop reading: the kernel buffers fill, then the server's queue
    reader.raw._socket.pause();
    const body = 'y'.repeat(8 * 1024);
    let sent = 0;
    const closedCode = reader.closed;
    let open = true;
    closedCode.then(() => { open = false; });
    for (let i = 0; i < 20_000 && open; i += 1) {
      reader.raw.send(`42/${APP.appId},["publish",{"channel":"sink","message":"${body}"}]`);
      sent += body.length;
      if (i % 200 === 0) await delay(1);
    }
    const after = rssKb(server.child.pid);
    reader.raw._socket.resume();
    const growthMb = (after - before) / 1024;
    assert.ok(growthMb < 64, `RSS grew ${growthMb.toFixed(1)} MiB after ${sent >> 20} MiB offered`);
    console.log(`# never-reading publisher: RSS ${before >> 10} → ${after >> 10} MiB after ${sent >> 20} MiB offered by a client the server stopped reading`);

    // The node still serves.
    const after1 = await make({ uuid: 'after' });
    assert.deepEqual(await after1.subscribe(['still']), OK);
  });
});
