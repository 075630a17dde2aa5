'use strict';
// The relay on /relay/{app_key} (the PHP "connection layer" seed: one server and many clients
// per room), spoken by plain WebSocket clients (`ws`) against the real binary on 2 shards: the
// seed's README walkthrough message for message, increasing client ids per room that are never
// reused, welcomes with the current server data, server broadcasts once to every client, direct
// messages to one client (and to nobody for an absent or non-numeric id), leave notices both
// ways with the server data reset, rooms kept apart (and percent-decoded), garbage and
// oversized data ignored with the connection kept (and counted in /metrics), a server taking
// over from another, refused upgrades (long room name 400, unknown key 404), and a flooding
// client whose server does not read, with the node still serving.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { startServer, delay, httpGet, APP } = require('../lib/server');

const WAIT_MS = 5000;
const SETTLE_MS = 300;

/** Relay URL for a room (undefined: the app's default room); `rawRoom` goes in as written. */
function relayUrl(port, { key = APP.key, room, rawRoom } = {}) {
  let url = `ws://127.0.0.1:${port}/relay/${key}`;
  if (rawRoom !== undefined) url += `?room=${rawRoom}`;
  else if (room !== undefined) url += `?room=${encodeURIComponent(room)}`;
  return url;
}

/** A relay connection: every JSON message it got, and waits on them. */
class RelayClient {
  static async connect(port, opts = {}) {
    const client = new RelayClient(new WebSocket(relayUrl(port, opts)));
    await new Promise((resolve, reject) => {
      client.ws.once('open', resolve);
      client.ws.once('error', reject);
      client.ws.once('unexpected-response', (_req, res) => {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode}`));
      });
    });
    return client;
  }

  constructor(ws) {
    this.ws = ws;
    this.messages = [];
    this.closed = null;
    this.waiters = [];
    ws.on('error', () => { /* seen as a close */ });
    ws.on('message', (data, isBinary) => {
      this.messages.push(isBinary ? { binary: true } : JSON.parse(data.toString()));
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' || Buffer.isBuffer(obj) ? obj : JSON.stringify(obj));
  }

  /** Resolves with the first message (from index `from` on) matching `pred`. */
  async next(pred, what, from = 0, ms = WAIT_MS) {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.messages.slice(from).find(pred);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(`no ${what} within ${ms} ms; got ${JSON.stringify(this.messages)}`);
      }
      // eslint-disable-next-line no-await-in-loop
      await Promise.race([new Promise((r) => this.waiters.push(r)), delay(50)]);
    }
  }

  /** The next message from now on, deep-equal to `expected`. */
  async expect(expected, what, from = this.messages.length) {
    const want = JSON.stringify(expected);
    return this.next((m) => isDeepEqual(m, expected), `${what} (${want})`, from);
  }

  /** `{"connect":"client"}`: resolves with the welcome. */
  async asClient() {
    const from = this.messages.length;
    this.send({ connect: 'client' });
    const welcome = await this.next((m) => 'client_id' in m && 'server_data' in m, 'a welcome', from);
    this.id = welcome.client_id;
    return welcome;
  }

  /** Messages from index `from` on. */
  since(from) {
    return this.messages.slice(from);
  }

  close() {
    try { this.ws.close(); } catch (_) { /* gone */ }
  }

  terminate() {
    try { this.ws.terminate(); } catch (_) { /* gone */ }
  }

  /** Resolves once the connection closed. */
  async waitClosed(what, ms = WAIT_MS) {
    return this.next(() => this.closed !== null, what, 0, ms).catch(() => {
      if (this.closed === null) throw new Error(`${what}: still open after ${ms} ms`);
    });
  }
}

function isDeepEqual(a, b) {
  try {
    assert.deepStrictEqual(a, b);
    return true;
  } catch (_) {
    return false;
  }
}

/** The ignored-messages counter, summed over the shard labels. */
async function ignoredTotal(port) {
  const { status, body } = await httpGet(port, '/metrics');
  assert.equal(status, 200);
  const lines = body.split('\n').filter((l) => l.startsWith('ringcast_relay_messages_ignored_total'));
  assert.ok(lines.length > 0, 'ringcast_relay_messages_ignored_total is exported');
  return lines.reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** Resolves with the counter once it reached `atLeast`. */
async function waitIgnored(port, atLeast, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    // eslint-disable-next-line no-await-in-loop
    const now = await ignoredTotal(port);
    if (now >= atLeast) return now;
    if (Date.now() > deadline) {
      throw new Error(`ringcast_relay_messages_ignored_total stayed at ${now}, wanted >= ${atLeast}`);
    }
    // eslint-disable-next-line no-await-in-loop
    await delay(50);
  }
}

/** Refused upgrade: resolves with the HTTP status. */
function upgradeStatus(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode);
      ws.terminate();
    });
    ws.once('open', () => {
      ws.terminate();
      reject(new Error(`the upgrade on ${url.slice(0, 80)}… was accepted`));
    });
    ws.once('error', (e) => reject(e));
  });
}

describe('relay: rooms of one server and many clients on /relay/{app_key}', () => {
  let server;
  const open = [];
  const make = async (opts) => {
    const c = await RelayClient.connect(server.port, opts);
    open.push(c);
    return c;
  };

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    for (const c of open) c.terminate();
    if (server) await server.kill();
  });

  it('runs the seed\'s README walkthrough in the default room', async () => {
    // A client connects and says who it is.
    const bob = await make();
    const welcome = await bob.asClient();
    assert.equal(typeof welcome.client_id, 'number');
    assert.deepEqual(welcome, { client_id: welcome.client_id, server_data: {} });
    bob.send({ data: { name: 'Bob', x: 12, y: 16 } });
    await delay(SETTLE_MS); // Bob's data are stored before any server is there

    // The server connects: it gets Bob's data, Bob gets the (empty) server data.
    const game = await make();
    let bobFrom = bob.messages.length;
    game.send({ connect: 'server' });
    await game.expect({ client_id: bob.id, client_data: { name: 'Bob', x: 12, y: 16 } },
      'Bob\'s data on the server', 0);
    await bob.expect({ server_data: {} }, 'the server data on Bob', bobFrom);

    // The server's data go to every client.
    bobFrom = bob.messages.length;
    game.send({ data: { map_id: '1' } });
    await bob.expect({ server_data: { map_id: '1' } }, 'the map id', bobFrom);

    // A direct message to Bob alone.
    bobFrom = bob.messages.length;
    game.send({ client_id: bob.id, data: { secret: 'for Bob' } });
    await bob.expect({ server_data: { secret: 'for Bob' } }, 'the direct message', bobFrom);

    // Bob moves: the server gets his whole (merged) data.
    const gameFrom = game.messages.length;
    bob.send({ data: { x: 13 } });
    await game.expect({ client_id: bob.id, client_data: { name: 'Bob', x: 13, y: 16 } },
      'Bob\'s move', gameFrom);

    // A second client is welcomed with the stored server data (not the direct message).
    const alice = await make();
    const aliceWelcome = await alice.asClient();
    assert.deepEqual(aliceWelcome, { client_id: aliceWelcome.client_id, server_data: { map_id: '1' } });
    assert.ok(aliceWelcome.client_id > bob.id, `ids increase: ${bob.id} then ${aliceWelcome.client_id}`);
    await game.expect({ client_id: alice.id, client_data: {} }, 'Alice on the server', gameFrom);
    bob.close();
    alice.close();
    game.close();
  });

  it('gives increasing ids to many clients, welcomes each with the server data, broadcasts once', async () => {
    const room = 'many';
    const host = await make({ room });
    host.send({ connect: 'server' });
    host.send({ data: { round: 1 } });
    await delay(SETTLE_MS);

    const clients = [];
    for (let i = 0; i < 6; i += 1) {
      // eslint-disable-next-line no-await-in-loop
      const c = await make({ room });
      // eslint-disable-next-line no-await-in-loop
      const welcome = await c.asClient();
      assert.deepEqual(welcome, { client_id: i + 1, server_data: { round: 1 } }, `client ${i + 1}`);
      // eslint-disable-next-line no-await-in-loop
      await host.expect({ client_id: i + 1, client_data: {} }, `client ${i + 1} on the server`, 0);
      clients.push(c);
    }

    const marks = clients.map((c) => c.messages.length);
    host.send({ data: { round: 2, phase: 'go' } });
    await Promise.all(clients.map((c, i) => c.expect({ server_data: { round: 2, phase: 'go' } },
      `the broadcast on client ${i + 1}`, marks[i])));
    await delay(SETTLE_MS);
    clients.forEach((c, i) => {
      assert.deepEqual(c.since(marks[i]), [{ server_data: { round: 2, phase: 'go' } }],
        `client ${i + 1} got the broadcast exactly once`);
    });

    // Each client's data reach the server under its own id.
    let hostFrom = host.messages.length;
    clients.forEach((c, i) => c.send({ data: { n: i + 1 } }));
    await Promise.all(clients.map((_, i) => host.expect({ client_id: i + 1, client_data: { n: i + 1 } },
      `client ${i + 1}'s data`, hostFrom)));

    // connect client again: the same id, the data reset to {}.
    hostFrom = host.messages.length;
    const again = await clients[2].asClient();
    assert.deepEqual(again, { client_id: 3, server_data: { round: 2, phase: 'go' } });
    await host.expect({ client_id: 3, client_data: {} }, 'client 3 reset on the server', hostFrom);
    hostFrom = host.messages.length;
    clients[2].send({ data: { m: 1 } });
    await host.expect({ client_id: 3, client_data: { m: 1 } }, 'client 3\'s fresh data', hostFrom);

    for (const c of [host, ...clients]) c.close();
  });

  it('delivers a direct message to an absent or non-numeric client id to nobody', async () => {
    const room = 'direct';
    const host = await make({ room });
    host.send({ connect: 'server' });
    await delay(SETTLE_MS);
    const a = await make({ room });
    const b = await make({ room });
    await a.asClient();
    await b.asClient();
    await host.expect({ client_id: b.id, client_data: {} }, 'b on the server', 0);

    const before0 = await ignoredTotal(server.port);
    const marks = [host, a, b].map((c) => c.messages.length);
    host.send({ client_id: 99, data: { secret: 'nobody' } });
    host.send({ client_id: 'two', data: { secret: 'nobody either' } });
    await delay(SETTLE_MS);
    [host, a, b].forEach((c, i) => {
      assert.deepEqual(c.since(marks[i]), [], `connection ${i} got nothing`);
    });
    await waitIgnored(server.port, before0 + 2);

    // The server's direct messages still work afterwards.
    host.send({ client_id: b.id, data: { secret: 'for b' } });
    await b.expect({ server_data: { secret: 'for b' } }, 'the direct message to b', marks[2]);
    await delay(SETTLE_MS);
    assert.deepEqual(a.since(marks[1]), [], 'a did not see b\'s direct message');
    for (const c of [host, a, b]) c.close();
  });

  it('tells the server a client left and the clients the server left, resetting the server data', async () => {
    const room = 'leaves';
    const host = await make({ room });
    host.send({ connect: 'server' });
    host.send({ data: { phase: 'old' } });
    await delay(SETTLE_MS);
    const a = await make({ room });
    const b = await make({ room });
    assert.deepEqual(await a.asClient(), { client_id: 1, server_data: { phase: 'old' } });
    assert.deepEqual(await b.asClient(), { client_id: 2, server_data: { phase: 'old' } });
    b.send({ data: { name: 'B' } });
    await host.expect({ client_id: 2, client_data: { name: 'B' } }, 'b\'s data', 0);

    let hostFrom = host.messages.length;
    a.close();
    await host.expect({ client_disconnect: 1 }, 'a\'s leave', hostFrom);

    // Ids are never reused.
    hostFrom = host.messages.length;
    const c = await make({ room });
    assert.deepEqual(await c.asClient(), { client_id: 3, server_data: { phase: 'old' } });
    await host.expect({ client_id: 3, client_data: {} }, 'c on the server', hostFrom);

    const marks = [b, c].map((x) => x.messages.length);
    host.close();
    await b.expect({ server_disconnect: true }, 'the server\'s leave on b', marks[0]);
    await c.expect({ server_disconnect: true }, 'the server\'s leave on c', marks[1]);

    // A new server: the clients get the reset server data, it gets every client's data.
    const host2 = await make({ room });
    const marks2 = [b, c].map((x) => x.messages.length);
    host2.send({ connect: 'server' });
    await b.expect({ server_data: {} }, 'the reset server data on b', marks2[0]);
    await c.expect({ server_data: {} }, 'the reset server data on c', marks2[1]);
    await host2.expect({ client_id: 2, client_data: { name: 'B' } }, 'b\'s data on the new server', 0);
    await host2.expect({ client_id: 3, client_data: {} }, 'c\'s data on the new server', 0);
    await delay(SETTLE_MS);
    assert.equal(host2.messages.filter((m) => m.client_id === 1).length, 0, 'the gone client is not there');
    for (const x of [host2, b, c]) x.close();
  });

  it('keeps rooms apart, with ids from 1 in each', async () => {
    const hostA = await make({ room: 'a' });
    const hostB = await make({ room: 'b' });
    const hostDefault = await make();
    hostA.send({ connect: 'server' });
    hostB.send({ connect: 'server' });
    hostDefault.send({ connect: 'server' });
    await delay(SETTLE_MS);

    const inA = await make({ room: 'a' });
    const inB = await make({ room: 'b' });
    const inDefault = await make();
    assert.deepEqual(await inA.asClient(), { client_id: 1, server_data: {} });
    assert.deepEqual(await inB.asClient(), { client_id: 1, server_data: {} });
    await inDefault.asClient();

    hostA.send({ data: { who: 'a' } });
    hostB.send({ data: { who: 'b' } });
    inA.send({ data: { from: 'a' } });
    inB.send({ data: { from: 'b' } });
    inDefault.send({ data: { from: 'default' } });
    await inA.expect({ server_data: { who: 'a' } }, 'room a\'s broadcast', 0);
    await inB.expect({ server_data: { who: 'b' } }, 'room b\'s broadcast', 0);
    await hostA.expect({ client_id: 1, client_data: { from: 'a' } }, 'room a\'s client', 0);
    await hostB.expect({ client_id: 1, client_data: { from: 'b' } }, 'room b\'s client', 0);
    await hostDefault.expect({ client_id: inDefault.id, client_data: { from: 'default' } },
      'the default room\'s client', 0);
    await delay(SETTLE_MS);

    const seen = (c) => JSON.stringify(c.messages);
    assert.doesNotMatch(seen(inA), /"b"|default/, 'room a heard only room a');
    assert.doesNotMatch(seen(inB), /"a"|default/, 'room b heard only room b');
    assert.doesNotMatch(seen(inDefault), /"who"/, 'the default room heard no broadcast');
    assert.doesNotMatch(seen(hostA), /"b"|default/, 'room a\'s server heard only room a');
    assert.doesNotMatch(seen(hostB), /"a"|default/, 'room b\'s server heard only room b');
    assert.doesNotMatch(seen(hostDefault), /"from":"[ab]"/, 'the default room\'s server heard only its own');

    // The room name is percent-decoded: sp%61ce is the room "space".
    const spaceHost = await make({ room: 'space' });
    spaceHost.send({ connect: 'server' });
    spaceHost.send({ data: { decoded: true } });
    await delay(SETTLE_MS);
    const encoded = await make({ rawRoom: 'sp%61ce' });
    assert.deepEqual(await encoded.asClient(), { client_id: 1, server_data: { decoded: true } });
    await spaceHost.expect({ client_id: 1, client_data: {} }, 'the encoded-name client', 0);
    for (const c of [hostA, hostB, hostDefault, inA, inB, inDefault, spaceHost, encoded]) c.close();
  });

  it('ignores garbage and binary frames, counts them, and keeps the connection working', async () => {
    const room = 'garbage';
    const host = await make({ room });
    const guest = await make({ room });
    const before0 = await ignoredTotal(server.port);
    const garbage = [
      '{not json',
      '[]',
      '"just a string"',
      '42',
      '{}',
      '{"unknown":1}',
      '{"connect":"robot"}',
      '{"connect":7}',
      '{"data":{"early":1}}', // data before connect: no role yet
    ];
    for (const g of garbage) guest.send(g);
    guest.send(Buffer.from([1, 2, 3, 4]));
    host.send('{"connect":"server"');
    host.send(Buffer.from('{"connect":"server"}')); // right text, but binary
    await waitIgnored(server.port, before0 + garbage.length + 3);
    await delay(SETTLE_MS);
    assert.deepEqual(guest.messages, [], 'no answer to garbage');
    assert.deepEqual(host.messages, [], 'no answer to garbage');

    host.send({ connect: 'server' });
    await delay(SETTLE_MS);
    assert.deepEqual(await guest.asClient(), { client_id: 1, server_data: {} });
    await host.expect({ client_id: 1, client_data: {} }, 'the guest on the server', 0);

    const before1 = await ignoredTotal(server.port);
    const more = ['{"data":[1,2]}', '{"data":"text"}', '{"data":null}', 'null', '{"connect":"robot"}'];
    for (const g of more) guest.send(g);
    host.send('{"data":5}');
    host.send({ client_id: 1.5, data: { x: 1 } });
    guest.send(Buffer.alloc(0));
    await waitIgnored(server.port, before1 + more.length + 3);

    const guestFrom = guest.messages.length;
    const hostFrom = host.messages.length;
    guest.send({ data: { still: 'here' } });
    await host.expect({ client_id: 1, client_data: { still: 'here' } }, 'the guest\'s data after garbage', hostFrom);
    host.send({ data: { also: 'here' } });
    await guest.expect({ server_data: { also: 'here' } }, 'the server data after garbage', guestFrom);
    assert.equal(guest.closed, null, 'the guest is still open');
    assert.equal(host.closed, null, 'the server is still open');
    host.close();
    guest.close();
  });

  it('ignores oversized data and keeps the old data', async () => {
    const room = 'oversized';
    const host = await make({ room });
    host.send({ connect: 'server' });
    await delay(SETTLE_MS);
    const ann = await make({ room });
    await ann.asClient();
    ann.send({ data: { name: 'Ann' } });
    await host.expect({ client_id: ann.id, client_data: { name: 'Ann' } }, 'Ann\'s data', 0);

    const before0 = await ignoredTotal(server.port);
    let hostFrom = host.messages.length;
    ann.send({ data: { blob: 'x'.repeat(20 * 1024) } });
    await waitIgnored(server.port, before0 + 1);
    await delay(SETTLE_MS);
    assert.deepEqual(host.since(hostFrom), [], 'the server got nothing for 20 KiB of client data');
    ann.send({ data: { x: 1 } });
    await host.expect({ client_id: ann.id, client_data: { name: 'Ann', x: 1 } },
      'the old data merged with the new', hostFrom);

    // The server data: bounded at 64 KiB the same way. One WebSocket message is itself bounded
    // at 64 KiB (--max-message-size, over it: close 1009), so the bound is reached by merging
    // two 40 KiB updates.
    const big = 'y'.repeat(40 * 1024);
    host.send({ data: { level: 3, blob1: big } });
    await ann.expect({ server_data: { level: 3, blob1: big } }, 'the level and 40 KiB', 0);
    const annFrom = ann.messages.length;
    const before1 = await ignoredTotal(server.port);
    host.send({ data: { blob2: big } });
    await waitIgnored(server.port, before1 + 1);
    await delay(SETTLE_MS);
    assert.deepEqual(ann.since(annFrom), [], 'the clients got nothing for 80 KiB of merged server data');
    assert.equal(host.closed, null, 'the server connection is kept');
    host.send({ data: { score: 9 } });
    await ann.expect({ server_data: { level: 3, blob1: big, score: 9 } },
      'the old server data merged with the new', annFrom);
    hostFrom = host.messages.length;
    ann.send({ data: { y: 2 } });
    await host.expect({ client_id: ann.id, client_data: { name: 'Ann', x: 1, y: 2 } },
      'Ann still works', hostFrom);
    host.close();
    ann.close();
  });

  it('lets a second server take over the room', async () => {
    const room = 'takeover';
    const first = await make({ room });
    first.send({ connect: 'server' });
    first.send({ data: { owner: 'first' } });
    await delay(SETTLE_MS);
    const c1 = await make({ room });
    const c2 = await make({ room });
    await c1.asClient();
    await c2.asClient();
    c1.send({ data: { name: 'one' } });
    c2.send({ data: { name: 'two' } });
    await first.expect({ client_id: c1.id, client_data: { name: 'one' } }, 'c1 on the first server', 0);
    await first.expect({ client_id: c2.id, client_data: { name: 'two' } }, 'c2 on the first server', 0);

    const second = await make({ room });
    const marks = [c1, c2].map((c) => c.messages.length);
    second.send({ connect: 'server' });
    await second.expect({ client_id: c1.id, client_data: { name: 'one' } }, 'c1 on the second server', 0);
    await second.expect({ client_id: c2.id, client_data: { name: 'two' } }, 'c2 on the second server', 0);
    // The server data stay with the room.
    await c1.expect({ server_data: { owner: 'first' } }, 'the kept server data on c1', marks[0]);
    await c2.expect({ server_data: { owner: 'first' } }, 'the kept server data on c2', marks[1]);

    const firstFrom = first.messages.length;
    const secondFrom = second.messages.length;
    c1.send({ data: { x: 5 } });
    await second.expect({ client_id: c1.id, client_data: { name: 'one', x: 5 } }, 'c1\'s move on the second', secondFrom);
    await delay(SETTLE_MS);
    assert.deepEqual(first.since(firstFrom).filter((m) => 'client_data' in m), [],
      'the replaced server no longer gets client data');

    const c2From = c2.messages.length;
    second.send({ data: { owner: 'second' } });
    await c2.expect({ server_data: { owner: 'second' } }, 'the new server\'s broadcast', c2From);
    for (const c of [first, second, c1, c2]) c.close();
  });

  it('refuses a room name over 200 bytes (400) and an unknown app key (404)', async () => {
    assert.equal(await upgradeStatus(relayUrl(server.port, { room: 'r'.repeat(201) })), 400);
    // 101 two-byte characters: 202 bytes once decoded.
    assert.equal(await upgradeStatus(relayUrl(server.port, { room: 'é'.repeat(101) })), 400);
    assert.equal(await upgradeStatus(relayUrl(server.port, { key: 'no-such-key' })), 404);
    assert.equal(await upgradeStatus(relayUrl(server.port, { key: 'no-such-key', room: 'x' })), 404);
    await assert.rejects(RelayClient.connect(server.port, { key: 'no-such-key' }), /HTTP 404/);

    // Exactly 200 bytes is a room.
    const edge = await make({ room: 'é'.repeat(100) });
    assert.deepEqual(await edge.asClient(), { client_id: 1, server_data: {} });
    const plain = await make({ room: 'r'.repeat(200) });
    assert.deepEqual(await plain.asClient(), { client_id: 1, server_data: {} });
    edge.close();
    plain.close();
  });

  it('survives a flooding client whose server does not read', async () => {
    const room = 'flood';
    const host = await make({ room });
    host.send({ connect: 'server' });
    await delay(SETTLE_MS);
    const flooder = await make({ room });
    await flooder.asClient();
    await host.expect({ client_id: flooder.id, client_data: {} }, 'the flooder on the server', 0);

    // 2000 updates of 8 KiB each (16 MB of client_data for the server), which does not read.
    const hostFrom = host.messages.length;
    host.ws._socket.pause();
    const pad = 'p'.repeat(8 * 1024);
    for (let i = 0; i < 2000; i += 1) flooder.send({ data: { i, pad } });
    const sentBy = Date.now() + 20000;
    while (flooder.ws.bufferedAmount > 0 && flooder.closed === null && Date.now() < sentBy) {
      // eslint-disable-next-line no-await-in-loop
      await delay(20);
    }

    // Meanwhile the node serves other rooms.
    const other = await make({ room: 'flood-bystander' });
    assert.deepEqual(await other.asClient(), { client_id: 1, server_data: {} });
    assert.equal((await httpGet(server.port, '/metrics')).status, 200);

    // The server reads again: wait until it has everything, is closed, or gets no more for 2 s.
    host.ws._socket.resume();
    const complete = () => host.since(hostFrom).some((m) => m.client_data && m.client_data.i === 1999);
    const deadline = Date.now() + 20000;
    let count = -1;
    let quietSince = Date.now();
    while (host.closed === null && !complete() && Date.now() < deadline && Date.now() - quietSince < 2000) {
      if (host.messages.length !== count) {
        count = host.messages.length;
        quietSince = Date.now();
      }
      // eslint-disable-next-line no-await-in-loop
      await delay(50);
    }
    const got = host.since(hostFrom).filter((m) => m.client_id === flooder.id && m.client_data);
    assert.ok(got.length > 0 || host.closed !== null,
      `the server got client data (${got.length}) or was closed as a slow consumer (${JSON.stringify(host.closed)})`);
    for (const m of got) assert.equal(m.client_data.pad, pad, 'no update arrives mangled');
    // Once it reads again it gets everything queued for it, or the close of a slow consumer:
    // never silence (a partial write used to leave the socket with no waker: it stalled).
    assert.ok(host.closed !== null || complete(),
      `the paused-then-resumed server connection stalled: ${got.length} of 2000 updates, ` +
      'no more for 2 s and no close');

    // The room still serves: a new client is welcomed, and the server hears of it or is cut.
    const probe = await make({ room });
    const probeWelcome = await probe.asClient();
    assert.ok(probeWelcome.client_id > flooder.id, `a fresh id: ${probeWelcome.client_id}`);
    await host.next((m) => m.client_id === probe.id && isDeepEqual(m.client_data, {}) || host.closed !== null,
      'the new client on the server, or the server closed', hostFrom).catch((e) => {
      if (host.closed === null) throw e;
    });
    if (host.closed !== null) {
      assert.equal(host.closed.code, 1008, `closed as a slow consumer: ${JSON.stringify(host.closed)}`);
      // The server left: its clients hear of it.
      await flooder.expect({ server_disconnect: true }, 'the slow server\'s leave on the flooder', 0);
    }

    assert.equal(server.exitStatus, null, 'ringcast is still running');
    assert.equal((await httpGet(server.port, '/metrics')).status, 200);
    const late = await make({ room: 'flood-after' });
    assert.deepEqual(await late.asClient(), { client_id: 1, server_data: {} });
    for (const c of [host, flooder, other, probe, late]) c.terminate();
  });
});
