'use strict';
// The one channel space, row by row: whatever dialect publishes to a public channel (the Pusher
// REST SDK, an Ekko Socket.IO client, a channels JSON member, a WebSocket-over-HTTP backend's
// PUBLISH_TEXT through the control API), a subscriber of every dialect on that channel (pusher-js,
// Socket.IO, channels JSON, a slip connection its backend subscribed) receives exactly one message
// per publish, in its own framing, with the data unchanged (a string and an object each where the
// publisher allows one). Proved against the real binary on one node (2 shards), and across two
// nodes on one real redis-server both ways (subscribers on one node, the publisher on the other),
// once every subscription is known cluster-wide (probed with PUBLISH_TEXT, probes not counted).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { isDeepStrictEqual } = require('node:util');
const jwt = require('jsonwebtoken');
const WebSocket = require('ws');
const { startServer, delay, withTimeout, APP } = require('../lib/server');
const { Clients, Recorder } = require('../lib/clients');
const { restSdk } = require('../lib/rest');
const { EkkoClient } = require('../lib/socketio');
const { startRedis, startNodes, waitLinked } = require('../lib/cluster');

const WAIT_MS = 5000;
const SETTLE_MS = 300; // how long "nothing more arrives" is watched for
const PROBE = 'probe '; // the prefix of the probes' texts; no row's data starts with it
const CHANNELS_SENDER_RE = /^[A-Za-z0-9_-]{21}$/;

// ---- the slip backend: ACCEPT + SUBSCRIBE on open, nothing else ----

/**
 * A WebSocket-over-HTTP backend (node:http): the open event of a connection whose upgrade
 * carried `x-space-channel: c` is answered with ACCEPT and SUBSCRIBE to c; every other event
 * with no commands. Its tokens are test 23's business.
 */
class SpaceBackend {
  async start() {
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        let body;
        try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch (_) { body = {}; }
        const id = body.connectionId;
        const event = Array.isArray(body.events) ? body.events[0] : undefined;
        const headers = (body.metadata && body.metadata.headers) || {};
        const channel = headers['x-space-channel'];
        const events = event && event.type === 'OPEN' && channel
          ? [{ type: 'ACCEPT', connectionId: id }, { type: 'SUBSCRIBE', connectionId: id, channel }]
          : [];
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ events }));
      });
    });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get url() {
    return `http://127.0.0.1:${this.server.address().port}/events`;
  }

  async stop() {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A control API token (aud ControlEvent, iss slip-sockets), HS256 with the app secret. */
function controlToken() {
  return jwt.sign({}, APP.secret, {
    algorithm: 'HS256', audience: 'ControlEvent', issuer: 'slip-sockets', expiresIn: 60,
  });
}

/** POST /slip/KEY/control with `events`; resolves {status, text}. */
function control(port, events) {
  const body = JSON.stringify({ events });
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, method: 'POST', path: `/slip/${APP.key}/control`, agent: false,
      headers: {
        authorization: `Bearer ${controlToken()}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
      res.on('error', reject);
    });
    req.setTimeout(WAIT_MS, () => req.destroy(new Error('control request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

const publishText = (channelId, data) => ({ type: 'PUBLISH_TEXT', channelId, data });

// ---- clients of the two plain-WebSocket dialects ----

/** Opens a `ws` client; resolves once open, rejects on an error or an HTTP refusal. */
async function openWs(url, options, what) {
  const ws = new WebSocket(url, options);
  await withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      reject(new Error(`${what}: HTTP ${res.statusCode}`));
    });
  }), WAIT_MS, `${what}: no open within ${WAIT_MS} ms`);
  ws.on('error', () => {});
  return ws;
}

/** A channels JSON client (`/channels/KEY`), as test 22 drives it. */
class ChannelsClient {
  static async connect(port, name) {
    return new ChannelsClient(await openWs(`ws://127.0.0.1:${port}/channels/${APP.key}`, {}, name), name);
  }

  constructor(ws, name) {
    this.ws = ws;
    this.messages = new Recorder(`channels JSON ${name}`);
    ws.on('message', (data, isBinary) => this.messages.push(isBinary ? { binary: true } : JSON.parse(data.toString())));
  }

  send(obj) {
    this.ws.send(JSON.stringify(obj));
  }

  async join(channelId) {
    const from = this.messages.items.length;
    this.send({ type: 'join', channelId });
    const items = await this.messages.until((xs) => xs.slice(from).some((m) => /^join/.test(m.type)),
      `join answer for ${channelId}`, WAIT_MS);
    return items.slice(from).find((m) => /^join/.test(m.type));
  }

  close() {
    try { this.ws.terminate(); } catch (_) { /* gone */ }
  }
}

/** A WebSocket-over-HTTP client (`/slip/KEY`) its backend subscribes to `channel`. */
class SlipClient {
  static async connect(port, channel) {
    const ws = await openWs(`ws://127.0.0.1:${port}/slip/${APP.key}`,
      { headers: { 'X-Space-Channel': channel } }, `slip client of ${channel}`);
    return new SlipClient(ws, channel);
  }

  constructor(ws, channel) {
    this.ws = ws;
    this.messages = new Recorder(`slip ${channel}`);
    ws.on('message', (data, isBinary) => this.messages.push(isBinary ? { binary: data } : data.toString()));
  }

  close() {
    try { this.ws.terminate(); } catch (_) { /* gone */ }
  }
}

// ---- views: what one subscriber received, in one normal form per dialect ----

const isProbeText = (x) => typeof x === 'string' && x.startsWith(PROBE);

/**
 * One subscriber's messages: `rec` records raw items, `extract` turns them into that dialect's
 * channel messages, `isProbe` tells the probes apart.
 */
function view(name, rec, extract, isProbe) {
  const all = () => extract(rec.items);
  return {
    name,
    rec,
    heardProbe: () => all().some(isProbe),
    messages: () => all().filter((m) => !isProbe(m)),
    /** Resolves once `n` (non-probe) messages arrived, whatever they are. */
    async count(n) {
      await rec.until(() => all().filter((m) => !isProbe(m)).length >= n,
        `${name}: ${n} message(s) besides the probes`, WAIT_MS);
    },
  };
}

/** pusher-js: channel events `{event, data}` (pusher-js's own events left out). */
const pusherView = (name, seen) => view(name, seen,
  (xs) => xs.filter((e) => !/^pusher(_internal)?:/.test(e.event)).map((e) => ({ event: e.event, data: e.data })),
  (m) => m.event === 'message' && isProbeText(m.data));

/** Socket.IO: the argument of each `message` event. */
const socketioView = (name, ekko) => view(name, ekko.events,
  (xs) => xs.filter((e) => e.name === 'message').map((e) => e.args[0]),
  (m) => m && isProbeText(m.message));

/** channels JSON: the `message` messages. */
const channelsView = (name, client) => view(name, client.messages,
  (xs) => xs.filter((m) => m.type === 'message'),
  (m) => isProbeText(m.data));

/** WebSocket-over-HTTP: the raw texts (a binary message would show as an object). */
const slipView = (name, client) => view(name, client.messages, (xs) => xs, isProbeText);

/** What pusher-js makes of a `data` string on the wire: its JSON value if it parses, else itself. */
function pusherJsData(text) {
  try { return JSON.parse(text); } catch (_) { return text; }
}

/** The raw text a slip subscriber gets for `data`: a string itself, anything else its JSON. */
const rawText = (data) => (typeof data === 'string' ? data : JSON.stringify(data));

/** What a pusher-js subscriber gets as `data` for `data` published as a JSON value. */
const pusherData = (data) => (typeof data === 'string' ? pusherJsData(data) : data);

/** A row's data: a string (quotes, a backslash, non-ASCII) and an object. */
function dataOf(row, topo) {
  return [
    `${row} ${topo} text "quoted" \\ ✓ ü`,
    { row, topo, list: [1, { z: 1, a: 2 }], s: 'ü ✓ "q"', nil: null, yes: true },
  ];
}

// ---- the rows: each sets up its publisher and, per data, publishes and says what each gets ----

const ROWS = [
  {
    row: 'row1',
    title: 'Pusher REST trigger (pusher SDK)',
    data: dataOf,
    async publisher(port, channel) {
      const sdk = restSdk(port);
      const event = `${channel}-event`;
      return {
        views: [],
        async publish(data) {
          await sdk.trigger(channel, event, data);
          const wire = typeof data === 'string' ? data : JSON.stringify(data); // the SDK's `data`
          return {
            pusher: [{ event, data: pusherJsData(wire) }],
            socketio: [{ channel, message: wire, event }],
            channels: [{ type: 'message', senderId: 'server', data: wire, event }],
            slip: [wire],
          };
        },
      };
    },
  },
  {
    row: 'row2',
    title: 'Socket.IO publish (Ekko client)',
    data: dataOf,
    async publisher(port, channel, ctx) {
      const uuid = `pub-${channel}`;
      const ekko = await ctx.ekko(port, uuid);
      assert.deepEqual(await ekko.subscribe([channel]), { ok: true });
      const own = socketioView('the Socket.IO publisher itself', ekko);
      return {
        views: [own],
        async publish(data) {
          assert.deepEqual(await ekko.publish(channel, data), { ok: true });
          const original = { channel, message: data, uuid };
          return {
            pusher: [{ event: 'message', data: pusherData(data) }],
            socketio: [original],
            channels: [{ type: 'message', senderId: uuid, data }],
            slip: [rawText(data)],
            own: [[own, [original]]],
          };
        },
      };
    },
  },
  {
    row: 'row3',
    title: 'channels JSON publish',
    data: dataOf,
    async publisher(port, channel, ctx) {
      const member = await ctx.channels(port, `publisher of ${channel}`);
      assert.deepEqual(await member.join(channel), { type: 'joinSuccess' });
      const own = channelsView('the channels JSON publisher itself', member);
      return {
        views: [own],
        async publish(data) {
          const from = member.messages.items.length;
          const successes = () => member.messages.items.slice(from).filter((m) => m.type === 'publishSuccess').length;
          member.send({ type: 'publish', data });
          await member.messages.until(() => successes() >= 1, 'publishSuccess', WAIT_MS);
          const mine = member.messages.items.slice(from)
            .find((m) => m.type === 'message' && isDeepStrictEqual(m.data, data));
          assert.ok(mine, `its own message before publishSuccess: ${JSON.stringify(member.messages.items.slice(from))}`);
          assert.match(mine.senderId, CHANNELS_SENDER_RE);
          const { senderId } = mine;
          return {
            pusher: [{ event: 'message', data: pusherData(data) }],
            socketio: [{ channel, message: data, uuid: senderId }],
            channels: [{ type: 'message', senderId, data }],
            slip: [rawText(data)],
            own: [[own, [{ type: 'message', senderId, data }]]],
          };
        },
      };
    },
  },
  {
    row: 'row4',
    title: 'WebSocket-over-HTTP PUBLISH_TEXT (control API)',
    // PUBLISH_TEXT data is always a string: a plain one, and one that looks like JSON.
    data: (row, topo) => [`${row} ${topo} text "quoted" \\ ✓ ü`, JSON.stringify({ row, topo, looks: 'like json' })],
    async publisher(port, channel) {
      return {
        views: [],
        async publish(data, { crossNode }) {
          const res = await control(port, [publishText(channel, data)]);
          assert.deepEqual([res.status, res.text], [200, '{"message": "processed successfully"}']);
          const sio = { channel, message: data };
          return {
            pusher: [{ event: 'message', data: pusherJsData(data) }],
            // Across nodes it travels as its Pusher frame, which may add "event":"message".
            socketio: crossNode ? [sio, { ...sio, event: 'message' }] : [sio],
            channels: [{ type: 'message', senderId: 'server', data }],
            slip: [data],
          };
        },
      };
    },
  },
];

/**
 * Publishes probes (PUBLISH_TEXT through `port`'s control API) until every view heard one: a
 * subscription is then known wherever the publisher is.
 */
async function untilSubscribed(port, views, channel) {
  const deadline = Date.now() + WAIT_MS;
  for (let n = 0; ; n += 1) {
    const res = await control(port, [publishText(channel, `${PROBE}${channel} ${n}`)]);
    assert.equal(res.status, 200, `probe publish: ${res.status} ${res.text}`);
    await delay(50);
    if (views.every((v) => v.heardProbe())) return;
    if (Date.now() > deadline) {
      throw new Error(`${channel}: no probe reached ${views.filter((v) => !v.heardProbe()).map((v) => v.name)
        .join(', ')} within ${WAIT_MS} ms`);
    }
  }
}

/** Tracks every client of a topology so after() can close them. */
function clientContext() {
  const open = [];
  const pushers = new Map(); // port → Clients
  return {
    async ekko(port, uuid) {
      const c = await EkkoClient.connect(port, { uuid });
      open.push(c);
      return c;
    },
    async channels(port, name) {
      const c = await ChannelsClient.connect(port, name);
      open.push(c);
      return c;
    },
    async slip(port, channel) {
      const c = await SlipClient.connect(port, channel);
      open.push(c);
      return c;
    },
    async pusher(port, name) {
      if (!pushers.has(port)) pushers.set(port, new Clients(port));
      return pushers.get(port).connect({ name });
    },
    closeAll() {
      for (const c of open) c.close();
      for (const p of pushers.values()) p.closeAll();
    },
  };
}

/** A subscriber of every dialect on `channel` at `port`; resolves their views by dialect. */
async function subscribeAll(ctx, port, channel) {
  const p = await ctx.pusher(port, `pusher-js ${channel}`);
  const seen = p.record(await p.subscribe(channel));
  const ekko = await ctx.ekko(port, `sub-${channel}`);
  assert.deepEqual(await ekko.subscribe([channel]), { ok: true });
  const member = await ctx.channels(port, `member of ${channel}`);
  assert.deepEqual(await member.join(channel), { type: 'joinSuccess' });
  const slip = await ctx.slip(port, channel);
  return {
    pusher: pusherView('pusher-js subscriber', seen),
    socketio: socketioView('Socket.IO subscriber', ekko),
    channels: channelsView('channels JSON member', member),
    slip: slipView('slip subscriber', slip),
  };
}

const DIALECTS = ['pusher', 'socketio', 'channels', 'slip'];

/**
 * One row: subscribers of every dialect at `subPort`, the row's publisher at `pubPort`; each
 * publish reaches every subscriber; after a settle period each has exactly one message per
 * publish, as the table says, in publish order.
 */
async function runRow(ctx, rowDef, { subPort, pubPort, topo }) {
  const channel = `space-${topo}-${rowDef.row}`;
  const crossNode = subPort !== pubPort;
  const subs = await subscribeAll(ctx, subPort, channel);
  const publisher = await rowDef.publisher(pubPort, channel, ctx);
  await untilSubscribed(pubPort, [...DIALECTS.map((d) => subs[d]), ...publisher.views], channel);

  const expected = new Map(); // view → list of accepted values, one list per publish
  const expect = (v, accepted) => {
    if (!expected.has(v)) expected.set(v, []);
    expected.get(v).push(accepted);
  };
  for (const data of rowDef.data(rowDef.row, topo)) {
    const exp = await publisher.publish(data, { crossNode });
    for (const d of DIALECTS) expect(subs[d], exp[d]);
    for (const [v, accepted] of exp.own || []) expect(v, accepted);
    // Each publish reaches everyone before the next: the order below is the publish order.
    await Promise.all([...expected].map(([v, lists]) => v.count(lists.length)));
  }

  await delay(SETTLE_MS);
  // Every subscriber's every message is checked before failing: one report names them all.
  const wrong = [];
  for (const [v, lists] of expected) {
    const got = v.messages();
    const where = `${rowDef.row} (${topo}) ${v.name}`;
    if (got.length !== lists.length) {
      wrong.push(`${where}: ${got.length} messages, not exactly one per publish (${lists.length}): ${JSON.stringify(got)}`);
    }
    lists.forEach((accepted, i) => {
      if (i < got.length && !accepted.some((a) => isDeepStrictEqual(got[i], a))) {
        wrong.push(`${where}, publish #${i + 1}: expected ${accepted.map((a) => JSON.stringify(a)).join(' or ')}, ` +
          `got ${JSON.stringify(got[i])}`);
      }
    });
  }
  if (wrong.length > 0) assert.fail(`not as the table says:\n${wrong.join('\n')}`);
}

describe('one channel space: one node (two shards)', () => {
  let server;
  const backend = new SpaceBackend();
  const ctx = clientContext();

  before(async () => {
    await backend.start();
    server = await startServer(['--app-slip-target-url', backend.url]);
    await waitLinked(server.port); // the bridge, which calls the backend
  });

  after(async () => {
    ctx.closeAll();
    if (server) await server.kill();
    await backend.stop();
  });

  for (const rowDef of ROWS) {
    it(`${rowDef.row}: ${rowDef.title} reaches every dialect once, as mapped`, () => runRow(ctx, rowDef,
      { subPort: server.port, pubPort: server.port, topo: '1n' }));
  }

  it('is still running', () => {
    assert.equal(server.exitStatus, null, `stderr:\n${server.stderr.slice(-2000)}`);
  });
});

describe('one channel space: two nodes on one Redis', () => {
  let redis;
  let nodes = [];
  const backend = new SpaceBackend();
  const ctx = clientContext();

  before(async () => {
    await backend.start();
    redis = await startRedis();
    nodes = await startNodes(redis, 2, ['--app-slip-target-url', backend.url]);
  });

  after(async () => {
    ctx.closeAll();
    await Promise.all(nodes.map((n) => n.kill()));
    if (redis) await redis.stop();
    await backend.stop();
  });

  for (const rowDef of ROWS) {
    it(`${rowDef.row}: ${rowDef.title} on node 1 reaches every dialect on node 0 once, as mapped`,
      () => runRow(ctx, rowDef, { subPort: nodes[0].port, pubPort: nodes[1].port, topo: '2n-1to0' }));
  }

  for (const rowDef of ROWS) {
    it(`${rowDef.row}: ${rowDef.title} on node 0 reaches every dialect on node 1 once, as mapped`,
      () => runRow(ctx, rowDef, { subPort: nodes[1].port, pubPort: nodes[0].port, topo: '2n-0to1' }));
  }

  it('both nodes are still running', () => {
    for (const n of nodes) assert.equal(n.exitStatus, null, `stderr:\n${n.stderr.slice(-2000)}`);
  });
});
