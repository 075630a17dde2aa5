'use strict';
// WebSocket-over-HTTP in the SLIP Sockets dialect (`/slip/{app_key}`), against the real binary
// on 2 shards and a real HTTP backend written here (node:http): every socket event (open, text,
// close) is POSTed to the app's target URL with a JWT the backend checks, and the backend's
// answers are commands (accept, text, metadata, subscribe, publish, close, close a channel) that
// the server runs in order; the control API takes the same commands out of band. Refusals and a
// failing or silent backend end in the documented HTTP status or close code; one channel space
// with pusher-js, channels JSON, Socket.IO and the Pusher REST SDK, also across two nodes on
// Redis; another app's connections are out of reach; hostile input (a flood to a slow backend,
// binary frames, oversized metadata) is bounded without losing or reordering anything.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const jwt = require('jsonwebtoken');
const WebSocket = require('ws');
const { startServer, delay, httpGet, withTimeout, APP } = require('../lib/server');
const { Clients, Recorder } = require('../lib/clients');
const { restSdk, eventually } = require('../lib/rest');
const { EkkoClient } = require('../lib/socketio');
const { startRedis, startNodes, waitLinked } = require('../lib/cluster');

const WAIT_MS = 5000;
const SETTLE_MS = 300; // how long "nothing more arrives" is watched for
const ISSUER = 'slip-sockets';
const SLIP_SECRET = 'slip-secret-of-the-cluster'; // --app-slip-jwt-secret of the two nodes
// A second app, from a JSON config file (its own key, secret and SLIP secret).
const OTHER = Object.freeze({ appId: '777', key: 'other-key', secret: 'other-secret' });
const OTHER_SLIP_SECRET = 'other-slip-secret';
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-slip-'));

// ---- commands, as the backend writes them ----
const accept = (connectionId) => ({ type: 'ACCEPT', connectionId });
const closeConn = (connectionId) => ({ type: 'CLOSE', connectionId });
const text = (connectionId, data) => ({ type: 'TEXT', connectionId, data });
const setMetadata = (connectionId, metadata) => ({ type: 'SET_METADATA', connectionId, metadata });
const subscribe = (connectionId, channel) => ({ type: 'SUBSCRIBE', connectionId, channel });
const unsubscribe = (connectionId, channel) => ({ type: 'UNSUBSCRIBE', connectionId, channel });
const publishText = (channelId, data) => ({ type: 'PUBLISH_TEXT', channelId, data });
const closeChannel = (channelId) => ({ type: 'CLOSE_CHANNEL', channelId });

/**
 * A backend's behaviour: after ACCEPT, `open(id)` commands; `text(data, id)` and `close(id)`
 * answer the other events. Each returns a list of commands or a full answer
 * ({status, body | events, delayMs}).
 */
function app({ open = () => [], text: onText = () => [], close = () => [] } = {}) {
  return (ev) => {
    const id = ev.connectionId;
    if (ev.type === 'OPEN') {
      const more = open(id);
      return Array.isArray(more) ? [accept(id), ...more] : more;
    }
    if (ev.type === 'TEXT') return onText(ev.data, id);
    return close(id);
  };
}

/** The `x-slip-tag` header of an open event's metadata (looked up whatever its case). */
function tagOf(metadata) {
  const headers = (metadata && metadata.headers) || {};
  const name = Object.keys(headers).find((k) => k.toLowerCase() === 'x-slip-tag');
  return name ? headers[name] : undefined;
}

/**
 * The app's backend: checks the JWT of every request (HS256 with the secret of its path),
 * records every request (parsed body, headers, claims, time, how many of its connection's
 * requests were in flight), and answers as the handler registered for the connection's tag
 * says (the tag is the `x-slip-tag` header the test's client sent with its upgrade).
 */
class SlipBackend {
  constructor(secrets) {
    this.secrets = secrets; // path → JWT secret
    this.requests = new Recorder('backend requests');
    this.handlers = new Map(); // tag → handler
    this.tags = new Map(); // connectionId → tag
    this.inFlight = new Map(); // connectionId → requests not yet answered
    this.maxInFlight = new Map(); // connectionId → most requests in flight at once
    this.timers = new Set();
  }

  async start() {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  url(p) {
    return `http://127.0.0.1:${this.server.address().port}${p}`;
  }

  async stop() {
    for (const t of this.timers) clearTimeout(t);
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** How the backend answers the connection opened with this tag. */
  expect(tag, handler) {
    this.handlers.set(tag, handler);
  }

  /** The id of the connection opened with this tag (its open event was recorded). */
  async idOf(tag) {
    const r = await this.requests.first((x) => x.event && x.event.type === 'OPEN' && x.tag === tag,
      `the open event of ${tag}`, WAIT_MS);
    return r.id;
  }

  /** Recorded requests of one connection (of one event type). */
  of(id, type) {
    return this.requests.filter((r) => r.id === id && (!type || (r.event && r.event.type === type)));
  }

  /** Recorded requests whose token did not verify. */
  get tokenErrors() {
    return this.requests.filter((r) => r.tokenError);
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const route = req.url.split('?')[0];
      let body;
      try { body = JSON.parse(raw); } catch (_) { body = undefined; }
      const record = {
        at: Date.now(), path: route, method: req.method, headers: req.headers, raw, body,
        id: body && body.connectionId, event: body && Array.isArray(body.events) ? body.events[0] : undefined,
      };
      // The token: Bearer, HS256 with the path's secret, aud WebSocketEvent, iss slip-sockets.
      const auth = req.headers.authorization || '';
      try {
        if (!auth.startsWith('Bearer ')) throw new Error(`Authorization: ${JSON.stringify(auth)}`);
        const token = auth.slice('Bearer '.length);
        record.header = jwt.decode(token, { complete: true }).header;
        record.claims = jwt.verify(token, this.secrets[route], {
          algorithms: ['HS256'], audience: 'WebSocketEvent', issuer: ISSUER,
        });
      } catch (e) {
        record.tokenError = e.message;
      }
      if (record.event && record.event.type === 'OPEN') this.tags.set(record.id, tagOf(body.metadata));
      record.tag = this.tags.get(record.id);
      const id = record.id;
      const n = (this.inFlight.get(id) || 0) + 1;
      this.inFlight.set(id, n);
      this.maxInFlight.set(id, Math.max(n, this.maxInFlight.get(id) || 0));
      record.inFlight = n;
      let answered = false;
      const settle = () => {
        if (answered) return;
        answered = true;
        this.inFlight.set(id, this.inFlight.get(id) - 1);
      };
      res.on('close', settle); // answered, or the server gave up on it
      this.requests.push(record);

      let answer;
      if (record.tokenError) {
        answer = { status: 401, body: { error: 'bad token' } };
      } else {
        const handler = this.handlers.get(record.tag) || app();
        answer = handler(record.event || {}, record);
      }
      if (Array.isArray(answer)) answer = { events: answer };
      const { status = 200, delayMs = 0 } = answer;
      const payload = answer.body !== undefined ? answer.body : { events: answer.events || [] };
      const send = () => {
        settle(); // before the bytes go: the server may send the next event at once
        if (res.destroyed || res.writableEnded) return;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
      };
      if (delayMs > 0) {
        const t = setTimeout(() => { this.timers.delete(t); send(); }, delayMs);
        this.timers.add(t);
      } else {
        send();
      }
    });
  }
}

/** A plain WebSocket client (`ws`) of `/slip/{key}`: the raw messages it got, its close. */
class SlipClient {
  static async connect(port, { tag, key = APP.key, headers = {}, ms = WAIT_MS } = {}) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/slip/${key}`,
      { headers: tag ? { 'X-Slip-Tag': tag, ...headers } : headers });
    const client = new SlipClient(ws, tag || key);
    await withTimeout(new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        const err = new Error(`HTTP ${res.statusCode}`);
        err.status = res.statusCode;
        reject(err);
      });
    }), ms, `${tag}: no answer to the upgrade within ${ms} ms`);
    return client;
  }

  constructor(ws, name) {
    this.ws = ws;
    this.name = name;
    this.messages = new Recorder(`slip ${name} messages`); // {text} or {binary}
    this.closes = new Recorder(`slip ${name} close`);
    ws.on('error', (e) => { this.error = e; });
    ws.on('message', (data, isBinary) => {
      this.messages.push(isBinary ? { binary: data } : { text: data.toString() });
    });
    ws.on('close', (code, reason) => this.closes.push({ code, reason: reason.toString() }));
  }

  /** Every text message so far. */
  get texts() {
    return this.messages.filter((m) => m.text !== undefined).map((m) => m.text);
  }

  /** Resolves once a text message equal to `data` arrived. */
  async got(data, ms = WAIT_MS) {
    await this.messages.first((m) => m.text === data, `the text ${JSON.stringify(data)}`, ms);
  }

  count(data) {
    return this.texts.filter((t) => t === data).length;
  }

  async closed(ms = WAIT_MS) {
    return this.closes.first(() => true, 'the close', ms);
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(data) {
    this.ws.send(data);
  }

  terminate() {
    try { this.ws.terminate(); } catch (_) { /* gone */ }
  }
}

/** A channels JSON client (`/channels/KEY`), as test 22 drives it. */
class ChannelsClient {
  static async connect(port) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/channels/${APP.key}`);
    const client = new ChannelsClient(ws);
    await withTimeout(new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    }), WAIT_MS, 'channels JSON client: no open');
    return client;
  }

  constructor(ws) {
    this.ws = ws;
    this.messages = new Recorder('channels JSON messages');
    ws.on('error', () => {});
    ws.on('message', (data) => this.messages.push(JSON.parse(data.toString())));
  }

  async join(channelId) {
    const from = this.messages.items.length;
    this.ws.send(JSON.stringify({ type: 'join', channelId }));
    const items = await this.messages.until((xs) => xs.slice(from).some((m) => /^join/.test(m.type)),
      `join answer for ${channelId}`, WAIT_MS);
    return items.slice(from).find((m) => /^join/.test(m.type));
  }

  close() {
    try { this.ws.terminate(); } catch (_) { /* gone */ }
  }
}

/** A control API token (aud ControlEvent), HS256 with `secret` unless told. */
function controlToken(secret = APP.secret, { claims = {}, ...options } = {}) {
  return jwt.sign(claims, secret, {
    algorithm: 'HS256', audience: 'ControlEvent', issuer: ISSUER, expiresIn: 60, ...options,
  });
}

/** One HTTP request with headers; resolves {status, text}. */
function httpRequest(port, method, urlPath, headers = {}, body) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (body !== undefined) {
      h['content-type'] = h['content-type'] || 'application/json';
      h['content-length'] = Buffer.byteLength(body);
    }
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers: h, agent: false },
      (res) => {
        let t = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { t += c; });
        res.on('end', () => resolve({ status: res.statusCode, text: t }));
        res.on('error', reject);
      });
    req.setTimeout(WAIT_MS, () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** POST /slip/KEY/control: `events` (a list, or a raw body string) with a Bearer token. */
function control(port, events, { token = controlToken(), key = APP.key, authorization } = {}) {
  const body = typeof events === 'string' ? events : JSON.stringify({ events });
  const auth = authorization !== undefined ? authorization : `Bearer ${token}`;
  return httpRequest(port, 'POST', `/slip/${key}/control`, auth === null ? {} : { authorization: auth }, body);
}

/**
 * Resolves once each client receives what the channel carries: a SUBSCRIBE takes effect once the
 * channel's interest is confirmed (another shard, another node), and the backend has no ack for
 * it, so probes are published through the control API until every client has heard one.
 */
async function untilSubscribed(port, clients, channel, { token, key } = {}) {
  const deadline = Date.now() + WAIT_MS;
  const prefix = `probe ${key || APP.key} ${channel} `;
  const heard = (c) => c.texts.some((t) => t.startsWith(prefix));
  for (let n = 0; ; n += 1) {
    const res = await control(port, [publishText(channel, `${prefix}${n}`)], { token, key });
    assert.equal(res.status, 200, `probe publish: ${res.status} ${res.text}`);
    await delay(50);
    if (clients.every(heard)) return;
    if (Date.now() > deadline) {
      throw new Error(`${channel}: no probe reached ${clients.filter((c) => !heard(c)).map((c) => c.name)
        .join(', ')} within ${WAIT_MS} ms`);
    }
  }
}

/** Sum over shards of a Prometheus counter (lines `name{…} v` or `name v`). */
async function metric(port, name) {
  const { body } = await httpGet(port, '/metrics');
  let sum = 0;
  let seen = false;
  for (const line of body.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      sum += Number(line.split(' ').pop());
      seen = true;
    }
  }
  if (!seen) throw new Error(`no ${name} in /metrics`);
  return sum;
}

let tagCounter = 0;
const newTag = (what) => `${what}-${(tagCounter += 1)}`;

describe('slip: one node (two shards) and its backend', () => {
  let server;
  let port;
  let pusher;
  const backend = new SlipBackend({ '/events': APP.secret, '/other': OTHER_SLIP_SECRET });
  const open = [];
  /** Registers `handler` for a new tag, connects with it; the client knows its id. */
  const make = async (what, handler, opts = {}) => {
    const tag = newTag(what);
    backend.expect(tag, handler);
    const client = await SlipClient.connect(port, { tag, ...opts });
    open.push(client);
    client.id = await backend.idOf(tag);
    return client;
  };
  /** The upgrade of a client whose backend answers with `handler`; resolves the HTTP error. */
  const refused = async (what, handler, ms) => {
    const tag = newTag(what);
    backend.expect(tag, handler);
    const err = await SlipClient.connect(port, { tag, ms }).then(
      (c) => { open.push(c); return null; },
      (e) => e,
    );
    assert.ok(err && err.status, `${what}: the upgrade was not refused with an HTTP status (${err})`);
    return { status: err.status, id: await backend.idOf(tag) };
  };
  /** A slip client in `channel` (subscribed in its open answer). */
  const member = (what, channel, more = {}) => make(what, app({
    open: (id) => [subscribe(id, channel), text(id, 'joined')], ...more,
  }));

  before(async () => {
    await backend.start();
    const config = path.join(TMP, 'apps.json');
    fs.writeFileSync(config, JSON.stringify({
      applications: [{
        app_id: OTHER.appId,
        app_key: OTHER.key,
        app_secret: OTHER.secret,
        app_slip_target_url: backend.url('/other'),
        app_slip_jwt_secret: OTHER_SLIP_SECRET,
      }],
    }));
    server = await startServer(['--app-slip-target-url', backend.url('/events'), '--config-file', config]);
    port = server.port;
    await waitLinked(port); // the bridge, which calls the backend, started by itself
    pusher = new Clients(port);
  });

  after(async () => {
    for (const c of open) c.terminate();
    if (pusher) pusher.closeAll();
    if (server) await server.kill();
    await backend.stop();
    fs.rmSync(TMP, { recursive: true, force: true });
  });

  it('asks the backend before the upgrade: the open event, its token and headers, then runs the answer', async () => {
    const client = await make('welcome', app({
      open: (id) => [text(id, JSON.stringify({ welcome: id })), text(id, 'second')],
    }), { headers: { 'X-Custom-Thing': 'Some Value' } });
    // The answer's other commands ran right after the socket opened, in order, as raw text.
    await client.got('second');
    assert.deepEqual(client.messages.items, [{ text: JSON.stringify({ welcome: client.id }) }, { text: 'second' }]);
    assert.match(client.id, /^\d+\.\d+$/);

    const [req] = backend.of(client.id);
    assert.equal(req.method, 'POST');
    assert.equal(req.path, '/events');
    assert.match(req.headers['content-type'], /^application\/websocket-events\b/);
    assert.equal(req.tokenError, undefined, `the token verifies: ${req.tokenError}`);
    assert.equal(req.header.alg, 'HS256');
    assert.deepEqual(Object.keys(req.claims).sort(), ['aud', 'exp', 'iat', 'iss']);
    assert.equal(req.claims.exp - req.claims.iat, 60);
    assert.ok(Math.abs(req.claims.iat - Date.now() / 1000) < 30, `iat ${req.claims.iat} is now`);
    assert.deepEqual(req.body.events, [{ type: 'OPEN', connectionId: client.id }]);
    assert.deepEqual(Object.keys(req.body).sort(), ['connectionId', 'events', 'metadata']);
    assert.equal(req.body.connectionId, client.id);
    const { metadata } = req.body;
    assert.deepEqual(Object.keys(metadata).sort(), ['headers', 'ip']);
    assert.equal(metadata.ip, '127.0.0.1', 'the address the socket came from');
    const { headers } = metadata;
    for (const name of Object.keys(headers)) assert.equal(name, name.toLowerCase(), `header ${name} lower-cased`);
    assert.equal(headers['x-custom-thing'], 'Some Value');
    assert.equal(headers['x-slip-tag'], backend.tags.get(client.id));
    assert.equal(headers.host, `127.0.0.1:${port}`);
    assert.match(headers.upgrade, /^websocket$/i);
    assert.equal(headers['sec-websocket-version'], '13');
    assert.ok(client.isOpen);
  });

  it('posts each text message, one at a time in order, and runs each answer', async () => {
    const client = await make('echo', app({ text: (data, id) => [text(id, `echo:${data}`)] }));
    const sent = ['one', 'zwei ✓ 三', '{"looks":"like json"}', '', 'a "quoted"\nline'];
    for (const data of sent) client.send(data);
    await client.messages.until((xs) => xs.length >= sent.length, `${sent.length} echoes`, WAIT_MS);
    assert.deepEqual(client.texts, sent.map((d) => `echo:${d}`));
    const [opened] = backend.of(client.id, 'OPEN');
    const texts = backend.of(client.id, 'TEXT');
    assert.deepEqual(texts.map((r) => r.body.events), sent.map((data) => [{ type: 'TEXT', connectionId: client.id, data }]));
    for (const r of texts) {
      assert.equal(r.body.connectionId, client.id);
      assert.match(r.headers['content-type'], /^application\/websocket-events\b/);
      assert.equal(r.tokenError, undefined);
      // No SET_METADATA yet: the current metadata (the open event's) or none.
      assert.ok(r.body.metadata === null || JSON.stringify(r.body.metadata) === JSON.stringify(opened.body.metadata),
        `metadata ${JSON.stringify(r.body.metadata)}`);
    }
    assert.equal(backend.maxInFlight.get(client.id), 1, 'one request at a time');
  });

  it('refuses the upgrade with 403 unless the backend accepts this connection first', async () => {
    const cases = {
      'an empty list': () => [],
      'only a text': (ev) => [text(ev.connectionId, 'hi')],
      'a close before the accept': (ev) => [closeConn(ev.connectionId), accept(ev.connectionId)],
      'an accept of another connection': () => [accept('999999999.9')],
    };
    const ids = [];
    for (const [what, handler] of Object.entries(cases)) {
      const { status, id } = await refused(what, handler);
      assert.equal(status, 403, what);
      ids.push(id);
    }
    // A connection never accepted has no close event.
    await delay(SETTLE_MS);
    for (const id of ids) assert.deepEqual(backend.of(id).map((r) => r.event.type), ['OPEN']);
  });

  it('answers 502 when the backend fails or answers what is not a list of commands', async () => {
    const cases = {
      'a 500': () => ({ status: 500, body: { error: 'boom' } }),
      'a 404': () => ({ status: 404, events: [] }),
      'a 500 with an accept': (ev) => ({ status: 500, events: [accept(ev.connectionId)] }),
      'bad JSON': () => ({ body: '{not json' }),
      'an unknown type': (ev) => [accept(ev.connectionId), { type: 'DANCE', connectionId: ev.connectionId }],
      'a text without data': (ev) => [accept(ev.connectionId), { type: 'TEXT', connectionId: ev.connectionId }],
      'events not a list': () => ({ body: { events: { type: 'ACCEPT' } } }),
    };
    for (const [what, handler] of Object.entries(cases)) {
      const { status } = await refused(what, handler);
      assert.equal(status, 502, what);
    }
  });

  it('answers 502 or 504 when the backend does not answer within the bridge\'s timeout', async () => {
    // The bridge gives up on a call after 5 s; this backend would answer (accept) after 7 s.
    const { status, id } = await refused('silent', (ev) => ({ delayMs: 7000, events: [accept(ev.connectionId)] }), 10000);
    assert.ok(status === 502 || status === 504, `status ${status}`);
    assert.equal(backend.of(id).length, 1, 'asked once');
  });

  it('sends the metadata the backend set with every later event, and none once cleared', async () => {
    const user = { user: 'ada', n: 1, list: [true, null] };
    const client = await make('metadata', app({
      open: (id) => [setMetadata(id, user), text(id, 'ready')],
      text: (data, id) => {
        if (data === 'clear') return [setMetadata(id, null), text(id, 'ack clear')];
        if (data === 'set') return [setMetadata(id, 'just a string'), text(id, 'ack set')];
        return [text(id, `ack ${data}`)];
      },
      close: () => [],
    }));
    await client.got('ready');
    const metadataOf = (data) => backend.of(client.id, 'TEXT').find((r) => r.event.data === data).body.metadata;
    for (const data of ['a', 'clear', 'b', 'set', 'c']) {
      client.send(data);
      await client.got(`ack ${data}`);
    }
    assert.deepEqual(metadataOf('a'), user);
    assert.deepEqual(metadataOf('clear'), user);
    assert.equal(metadataOf('b'), null);
    assert.equal(metadataOf('set'), null);
    assert.equal(metadataOf('c'), 'just a string');
    // The close event carries it too.
    client.ws.close(1000);
    const closing = await backend.requests.first((r) => r.id === client.id && r.event.type === 'CLOSE',
      'the close event', WAIT_MS);
    assert.equal(closing.body.metadata, 'just a string');
  });

  it('ignores a SET_METADATA over 16 KiB, and keeps one under it', async () => {
    const small = { blob: 'm'.repeat(8 * 1024) };
    const big = { blob: 'b'.repeat(17 * 1024) };
    const client = await make('big-metadata', app({
      open: (id) => [setMetadata(id, { v: 1 }), text(id, 'ready')],
      text: (data, id) => {
        if (data === 'big') return [setMetadata(id, big), text(id, 'ack big')];
        if (data === 'small') return [setMetadata(id, small), text(id, 'ack small')];
        return [text(id, `ack ${data}`)];
      },
    }));
    await client.got('ready');
    for (const data of ['big', 'after big', 'small', 'after small', 'big', 'after big again']) {
      client.send(data);
      await client.got(`ack ${data}`);
    }
    const metadataOf = (data) => backend.of(client.id, 'TEXT').find((r) => r.event.data === data).body.metadata;
    assert.deepEqual(metadataOf('after big'), { v: 1 }, 'the big one was ignored');
    assert.deepEqual(metadataOf('after small'), small, 'the small one was kept');
    assert.deepEqual(metadataOf('after big again'), small, 'the big one ignored again');
    assert.ok(client.isOpen);
  });

  it('carries a PUBLISH_TEXT to every slip subscriber of the channel, the sender too, once', async () => {
    const publisher = (who) => ({ text: (data) => [publishText('room-a', `${who}: ${data}`)] });
    const a = await member('a', 'room-a', publisher('A'));
    const b = await member('b', 'room-a', publisher('B'));
    const c = await member('c', 'room-b', publisher('C'));
    await untilSubscribed(port, [a, b], 'room-a');
    await untilSubscribed(port, [c], 'room-b');
    a.send('hello');
    await a.got('A: hello');
    await b.got('A: hello');
    b.send('hi back');
    await a.got('B: hi back');
    await b.got('B: hi back');
    await delay(SETTLE_MS);
    for (const client of [a, b]) {
      assert.equal(client.count('A: hello'), 1, `${client.name}: once`);
      assert.equal(client.count('B: hi back'), 1, `${client.name}: once`);
    }
    assert.deepEqual(c.texts.filter((t) => !t.startsWith('probe ')), ['joined'], 'another channel hears nothing');
  });

  it('ignores channel names that are not public Pusher channels, and keeps the connection', async () => {
    const bad = ['private-slip', 'presence-slip', 'has space', 'x'.repeat(300), ''];
    const client = await make('bad-channels', app({
      open: (id) => [...bad.map((ch) => subscribe(id, ch)), subscribe(id, 'ok-room_-=@,.;'), text(id, 'ready')],
    }));
    await client.got('ready');
    const p = await pusher.connect({ name: 'pusher-js private' });
    const seen = p.record(await p.subscribe('private-slip'));
    await untilSubscribed(port, [client], 'ok-room_-=@,.;');
    const sdk = restSdk(port);
    await sdk.trigger('private-slip', 'e', 'private data');
    await sdk.trigger('ok-room_-=@,.;', 'e', 'public data');
    await client.got('public data');
    await seen.first((e) => e.event === 'e', 'the private trigger on pusher-js', WAIT_MS);
    // A PUBLISH_TEXT to a private channel is ignored too.
    const res = await control(port, [publishText('private-slip', 'forged')]);
    assert.equal(res.status, 200, res.text);
    await delay(SETTLE_MS);
    assert.equal(client.count('private data'), 0, 'never in the private channel');
    assert.equal(seen.filter((e) => e.event === 'message').length, 0, 'nothing published to the private channel');
    assert.ok(client.isOpen);
  });

  it('stops delivering a channel after UNSUBSCRIBE', async () => {
    const a = await member('leaver', 'room-u', {
      text: (data, id) => (data === 'leave' ? [unsubscribe(id, 'room-u'), text(id, 'left')] : []),
    });
    const b = await member('stayer', 'room-u');
    await untilSubscribed(port, [a, b], 'room-u');
    const sdk = restSdk(port);
    await sdk.trigger('room-u', 'e', 'before');
    await a.got('before');
    await b.got('before');
    a.send('leave');
    await a.got('left');
    await sdk.trigger('room-u', 'e', 'after');
    await b.got('after');
    await delay(SETTLE_MS);
    assert.equal(a.count('after'), 0, 'unsubscribed');
    assert.ok(a.isOpen);
  });

  it('closes the connection with 1000 on a CLOSE command, after the texts before it', async () => {
    const client = await make('close-cmd', app({
      text: (data, id) => (data === 'bye' ? [text(id, 'bye-bye'), closeConn(id)] : []),
    }));
    client.send('bye');
    const { code } = await client.closed();
    assert.equal(code, 1000);
    assert.deepEqual(client.texts, ['bye-bye']);
  });

  it('posts a CLOSE event when the client closes or drops, and runs its answer', async () => {
    const leaving = (who) => ({ close: () => [publishText('room-c', `${who} left`)] });
    const a = await member('closer', 'room-c', leaving('closer'));
    const b = await member('dropper', 'room-c', leaving('dropper'));
    const watcher = await member('watcher', 'room-c');
    await untilSubscribed(port, [watcher], 'room-c');
    a.ws.close(1000, 'done');
    await watcher.got('closer left');
    b.terminate(); // the TCP connection just ends
    await watcher.got('dropper left');
    await delay(SETTLE_MS);
    for (const client of [a, b]) {
      const closes = backend.of(client.id, 'CLOSE');
      assert.equal(closes.length, 1, `${client.name}: one close event`);
      assert.deepEqual(closes[0].body.events, [{ type: 'CLOSE', connectionId: client.id }]);
      assert.equal(closes[0].body.connectionId, client.id);
      assert.equal(closes[0].tokenError, undefined);
    }
    assert.equal(watcher.count('closer left'), 1);
    assert.equal(watcher.count('dropper left'), 1);
  });

  it('closes every slip subscriber of a channel with 1000 on CLOSE_CHANNEL, nobody else', async () => {
    const a = await member('ch-a', 'room-x', {
      text: (data) => (data === 'close all' ? [closeChannel('room-x')] : []),
    });
    const b = await member('ch-b', 'room-x');
    const c = await member('ch-c', 'room-y');
    const p = await pusher.connect({ name: 'pusher-js room-x' });
    const seen = p.record(await p.subscribe('room-x'));
    await untilSubscribed(port, [a, b], 'room-x');
    a.send('close all');
    assert.equal((await a.closed()).code, 1000);
    assert.equal((await b.closed()).code, 1000);
    await delay(SETTLE_MS);
    assert.ok(c.isOpen, 'another channel\'s subscriber stays');
    assert.equal(p.state, 'connected', 'a pusher-js subscriber is not the backend\'s to close');
    const res = await control(port, [publishText('room-x', 'still here')]);
    assert.equal(res.status, 200);
    await seen.first((e) => e.event === 'message' && e.data === 'still here', 'pusher-js still subscribed', WAIT_MS);
  });

  it('control API: 403 for a bad token, 400 for a bad list (nothing runs), 200 runs the commands', async () => {
    const target = await member('ctl', 'ctl-room', {
      text: (data, id) => [text(id, `ack ${data}`)],
    });
    const p = await pusher.connect({ name: 'pusher-js ctl-room' });
    const seen = p.record(await p.subscribe('ctl-room'));
    await untilSubscribed(port, [target], 'ctl-room');
    const marker = [text(target.id, 'must not run')];
    const now = Math.floor(Date.now() / 1000);

    const badTokens = {
      'no Authorization': { authorization: null },
      'not Bearer': { authorization: controlToken() },
      'an empty Bearer': { authorization: 'Bearer ' },
      garbage: { authorization: 'Bearer not.a.token' },
      'the event audience': { token: controlToken(APP.secret, { audience: 'WebSocketEvent' }) },
      'another secret': { token: controlToken('not-the-secret') },
      'the other app\'s secret': { token: controlToken(OTHER_SLIP_SECRET) },
      expired: { token: jwt.sign({ aud: 'ControlEvent', iss: ISSUER, exp: now - 30 }, APP.secret) },
    };
    for (const [what, opts] of Object.entries(badTokens)) {
      const res = await control(port, marker, opts);
      assert.deepEqual([res.status, res.text], [403, 'Invalid token'], what);
    }

    const badLists = {
      'bad JSON': '{not json',
      'an empty body': '',
      'not an object': '[]',
      'events not a list': JSON.stringify({ events: {} }),
      'an unknown type': JSON.stringify({ events: [...marker, { type: 'DANCE', connectionId: target.id }] }),
      'a missing field': JSON.stringify({ events: [...marker, { type: 'TEXT', connectionId: target.id }] }),
      'a PUBLISH_TEXT with channel, not channelId': JSON.stringify({ events: [...marker,
        { type: 'PUBLISH_TEXT', channel: 'ctl-room', data: 'x' }] }),
      'an ACCEPT': JSON.stringify({ events: [...marker, accept(target.id)] }),
    };
    for (const [what, body] of Object.entries(badLists)) {
      const res = await control(port, body);
      assert.deepEqual([res.status, res.text], [400, '{"message": "invalid commands"}'], what);
    }
    await delay(SETTLE_MS);
    assert.equal(target.count('must not run'), 0, 'nothing of a refused request ran');

    const ok = await control(port, [
      text(target.id, 'from control'),
      { type: 'POLL_FOR_CONNECTION', connectionId: target.id, timeout: 1000 },
      setMetadata(target.id, { via: 'control' }),
      publishText('ctl-room', 'ctl hi'),
    ]);
    assert.deepEqual([ok.status, ok.text], [200, '{"message": "processed successfully"}']);
    await target.got('from control');
    await target.got('ctl hi');
    const got = await seen.first((e) => e.event === 'message' && e.data === 'ctl hi', 'ctl hi on pusher-js', WAIT_MS);
    assert.equal(got.data, 'ctl hi');
    // The metadata set from outside goes with the next event.
    target.send('ping');
    await target.got('ack ping');
    const ping = backend.of(target.id, 'TEXT').find((r) => r.event.data === 'ping');
    assert.deepEqual(ping.body.metadata, { via: 'control' });

    // A SUBSCRIBE from outside: REST triggers reach it.
    assert.equal((await control(port, [subscribe(target.id, 'ctl-sub')])).status, 200);
    await untilSubscribed(port, [target], 'ctl-sub');
    await restSdk(port).trigger('ctl-sub', 'e', 'via rest');
    await target.got('via rest');

    // A CLOSE from outside.
    assert.equal((await control(port, [closeConn(target.id)])).status, 200);
    assert.equal((await target.closed()).code, 1000);

    // Other methods, and an unknown app key.
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const res = await httpRequest(port, method, `/slip/${APP.key}/control`,
        { authorization: `Bearer ${controlToken()}` }, method === 'GET' ? undefined : '{"events":[]}');
      assert.equal(res.status, 405, method);
    }
    assert.equal((await control(port, [], { key: 'no-such-key' })).status, 404);
  });

  it('keeps each app to its own connections and channels', async () => {
    const mine = await member('mine', 'shared-name');
    const tag = newTag('theirs');
    backend.expect(tag, app({ open: (id) => [subscribe(id, 'shared-name'), text(id, 'joined')] }));
    const theirs = await SlipClient.connect(port, { tag, key: OTHER.key });
    open.push(theirs);
    theirs.id = await backend.idOf(tag);
    // The other app's backend is asked at its own URL, with tokens of its own SLIP secret.
    const [opened] = backend.of(theirs.id);
    assert.equal(opened.path, '/other');
    assert.equal(opened.tokenError, undefined, `signed with ${OTHER_SLIP_SECRET}: ${opened.tokenError}`);
    const theirToken = controlToken(OTHER_SLIP_SECRET);
    await untilSubscribed(port, [mine], 'shared-name');
    await untilSubscribed(port, [theirs], 'shared-name', { key: OTHER.key, token: theirToken });

    // The other app names this app's connection: nothing happens to it.
    const res = await control(port, [
      text(mine.id, 'intruder'), setMetadata(mine.id, { by: 'other' }), subscribe(mine.id, 'their-room'),
      closeConn(mine.id),
    ], { key: OTHER.key, token: theirToken });
    assert.equal(res.status, 200, res.text);
    assert.equal((await control(port, [publishText('shared-name', 'other app')], { key: OTHER.key, token: theirToken }))
      .status, 200);
    await theirs.got('other app');
    // And this app cannot reach theirs.
    assert.equal((await control(port, [text(theirs.id, 'from the wrong app'), closeConn(theirs.id)])).status, 200);
    await control(port, [publishText('shared-name', 'this app')]);
    await mine.got('this app');
    await delay(SETTLE_MS);
    assert.equal(mine.count('intruder'), 0);
    assert.equal(mine.count('other app'), 0, 'channels are per app');
    assert.equal(theirs.count('this app'), 0, 'channels are per app');
    assert.equal(theirs.count('from the wrong app'), 0);
    assert.ok(mine.isOpen && theirs.isOpen, 'both still open');
  });

  it('shares one channel space with pusher-js, channels JSON, Socket.IO and the REST SDK', async () => {
    const slip = await member('mapped', 'map-1');
    const p = await pusher.connect({ name: 'pusher-js map-1' });
    const seen = p.record(await p.subscribe('map-1'));
    const channels = await ChannelsClient.connect(port);
    const sio = await EkkoClient.connect(port, { uuid: 'ekko-slip' });
    try {
      assert.deepEqual(await channels.join('map-1'), { type: 'joinSuccess' });
      assert.deepEqual(await sio.subscribe(['map-1']), { ok: true });
      await untilSubscribed(port, [slip], 'map-1');

      // PUBLISH_TEXT from the backend, to every dialect.
      assert.equal((await control(port, [publishText('map-1', 'hi')])).status, 200);
      await slip.got('hi');
      const onPusher = await seen.first((e) => e.event === 'message' && e.data === 'hi', 'hi on pusher-js', WAIT_MS);
      assert.equal(onPusher.data, 'hi');
      const onChannels = await channels.messages.first((m) => m.type === 'message' && m.data === 'hi',
        'hi on channels JSON', WAIT_MS);
      assert.deepEqual(onChannels, { type: 'message', senderId: 'server', data: 'hi' });
      const onSio = await sio.first('message', (m) => m.message === 'hi', 'hi on Socket.IO', WAIT_MS);
      assert.deepEqual(onSio, { channel: 'map-1', message: 'hi' });

      // A REST trigger reaches the slip subscriber as its data, raw.
      const sdk = restSdk(port);
      await sdk.trigger('map-1', 'e', { a: 1 });
      await slip.got('{"a":1}');
      await sdk.trigger('map-1', 'e', 'plain');
      await slip.got('plain');
      // A channels JSON publish too.
      channels.ws.send(JSON.stringify({ type: 'publish', data: { x: 1 } }));
      await slip.got('{"x":1}');

      await delay(SETTLE_MS);
      for (const data of ['hi', '{"a":1}', 'plain', '{"x":1}']) assert.equal(slip.count(data), 1, `${data} once`);
      assert.equal(seen.filter((e) => e.event === 'message' && e.data === 'hi').length, 1);
    } finally {
      sio.close();
      channels.close();
    }
  });

  it('closes the socket with 1011 when the backend fails a text event', async () => {
    const cases = {
      'a 500': () => ({ status: 500, events: [] }),
      'bad JSON': () => ({ body: '{not json' }),
      'an unknown type': (_data, id) => [{ type: 'DANCE', connectionId: id }],
    };
    const clients = [];
    for (const [what, onText] of Object.entries(cases)) {
      const client = await make(`fail-${what}`, app({ text: onText }));
      client.send('x');
      clients.push([what, client]);
    }
    for (const [what, client] of clients) assert.equal((await client.closed()).code, 1011, what);
  });

  it('closes a client that sends a binary message with 1003', async () => {
    const client = await make('binary', app());
    client.ws.send(Buffer.from([0, 1, 2, 255]), { binary: true });
    assert.equal((await client.closed()).code, 1003);
    assert.equal(backend.of(client.id, 'TEXT').length, 0, 'nothing of it went to the backend');
  });

  it('holds a flood for a slow backend: one request in flight, every message, in order', async () => {
    const COUNT = 500;
    const payload = (n) => `${n}:${'f'.repeat(1000)}`;
    const flooder = await make('flood', app({
      text: (data, id) => ({ delayMs: 10, events: data.startsWith(`${COUNT - 1}:`) ? [text(id, 'got them all')] : [] }),
    }));
    for (let n = 0; n < COUNT; n += 1) flooder.send(payload(n));
    // Another connection is served meanwhile.
    const other = await make('bystander', app({ text: (data, id) => [text(id, `echo:${data}`)] }));
    other.send('still there?');
    await other.got('echo:still there?', 15000);

    await flooder.got('got them all', 60000);
    const texts = backend.of(flooder.id, 'TEXT');
    assert.equal(texts.length, COUNT, 'every message reached the backend');
    const got = texts.map((r) => r.event.data);
    const firstWrong = got.findIndex((d, n) => d !== payload(n));
    assert.equal(firstWrong, -1, `in order and unchanged (first wrong at ${firstWrong})`);
    assert.equal(backend.maxInFlight.get(flooder.id), 1, 'never more than one request in flight');
    assert.ok(flooder.isOpen, 'the flooder is still connected');
    assert.equal((await httpGet(port, '/ready')).status, 200);
  });

  it('refuses an unknown app key with 404', async () => {
    await assert.rejects(SlipClient.connect(port, { key: 'no-such-key' }), /HTTP 404/);
  });

  it('counts calls, failures and refused upgrades in /metrics; one request in flight per connection', async () => {
    assert.ok(await metric(port, 'ringcast_slip_calls_total') > 0);
    assert.ok(await metric(port, 'ringcast_slip_calls_failed_total') > 0, 'the failed calls above');
    assert.ok(await metric(port, 'ringcast_slip_upgrades_refused_total') > 0, 'the refused upgrades above');
    await eventually(() => metric(port, 'ringcast_bridge_slip_calls_answered_total'),
      (v) => v > 0, 'the bridge counting answered calls', WAIT_MS);
    for (const [id, max] of backend.maxInFlight) assert.ok(max <= 1, `${id}: ${max} requests in flight at once`);
    assert.deepEqual(backend.tokenErrors.map((r) => r.tokenError), [], 'every token verified');
    assert.equal(server.exitStatus, null, `still running; stderr:\n${server.stderr.slice(-2000)}`);
  });
});

describe('slip: a node without a target URL', () => {
  let server;
  before(async () => { server = await startServer([]); });
  after(async () => { if (server) await server.kill(); });

  it('answers the mount with 404', async () => {
    await assert.rejects(SlipClient.connect(server.port, { tag: 'nobody' }), /HTTP 404/);
  });
});

describe('slip: two nodes on one Redis, with their own SLIP secret', () => {
  let redis;
  let nodes = [];
  let pusher;
  const backend = new SlipBackend({ '/events': SLIP_SECRET });
  const open = [];

  before(async () => {
    await backend.start();
    redis = await startRedis();
    nodes = await startNodes(redis, 2,
      ['--app-slip-target-url', backend.url('/events'), '--app-slip-jwt-secret', SLIP_SECRET]);
    pusher = new Clients(nodes[0].port);
  });

  after(async () => {
    for (const c of open) c.terminate();
    if (pusher) pusher.closeAll();
    await Promise.all(nodes.map((n) => n.kill()));
    if (redis) await redis.stop();
    await backend.stop();
  });

  it('carries REST triggers and PUBLISH_TEXT from node 1 to slip and pusher-js subscribers on node 0, once', async () => {
    const token = controlToken(SLIP_SECRET); // made now: it lives 60 s
    const tag = newTag('x-node');
    backend.expect(tag, app({ open: (id) => [subscribe(id, 'x-slip'), text(id, 'joined')] }));
    const near = await SlipClient.connect(nodes[0].port, { tag });
    open.push(near);
    near.id = await backend.idOf(tag);
    const p = await pusher.connect({ name: 'pusher-js@node0' });
    const seen = p.record(await p.subscribe('x-slip'));
    // Probes through node 1's control API: the subscription is known across nodes.
    await untilSubscribed(nodes[1].port, [near], 'x-slip', { token });

    await restSdk(nodes[1].port).trigger('x-slip', 'note', { from: 'node 1' });
    await near.got('{"from":"node 1"}');
    const res = await control(nodes[1].port, [publishText('x-slip', 'from control 1')], { token });
    assert.deepEqual([res.status, res.text], [200, '{"message": "processed successfully"}']);
    await near.got('from control 1');
    const got = await seen.first((e) => e.event === 'message' && e.data === 'from control 1',
      'node 1\'s PUBLISH_TEXT on pusher-js at node 0', WAIT_MS);
    assert.equal(got.data, 'from control 1');

    // The SLIP secret, not the app secret, signs everything.
    const withAppSecret = await control(nodes[1].port, [publishText('x-slip', 'app secret')]);
    assert.deepEqual([withAppSecret.status, withAppSecret.text], [403, 'Invalid token']);
    assert.deepEqual(backend.tokenErrors.map((r) => r.tokenError), [], `event tokens signed with ${SLIP_SECRET}`);

    await delay(SETTLE_MS);
    assert.equal(near.count('{"from":"node 1"}'), 1, 'once');
    assert.equal(near.count('from control 1'), 1, 'once');
    assert.equal(near.count('app secret'), 0);
    assert.equal(seen.filter((e) => e.event === 'message' && e.data === 'from control 1').length, 1, 'once');
  });

  it('runs node 1\'s control commands for a connection held by node 0, and CLOSE_CHANNEL on every node', async () => {
    // Behind a load balancer the control API is reached on any node: a command for a
    // connection elsewhere goes there through Redis.
    const token = controlToken(SLIP_SECRET);
    const tag = newTag('x-far');
    backend.expect(tag, app({ open: (id) => [text(id, 'joined')] }));
    const far = await SlipClient.connect(nodes[0].port, { tag });
    open.push(far);
    far.id = await backend.idOf(tag);
    await far.got('joined');
    const res = await control(nodes[1].port, [text(far.id, 'via node 1'), subscribe(far.id, 'x-far-room')],
      { token });
    assert.equal(res.status, 200);
    await far.got('via node 1');
    await untilSubscribed(nodes[1].port, [far], 'x-far-room', { token });
    const closing = await control(nodes[1].port, [closeChannel('x-far-room')], { token });
    assert.equal(closing.status, 200);
    assert.equal((await far.closed()).code, 1000, 'closed by a CLOSE_CHANNEL made on the other node');
    assert.equal(far.count('via node 1'), 1, 'once');
  });
});
