'use strict';
// Graceful drain: SIGTERM with pusher-js clients connected.
const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { startServer, withTimeout, httpGet } = require('../lib/server');
const { Clients, Recorder } = require('../lib/clients');
const { RawPusher } = require('../lib/rawws');

/** A raw HTTP/1.1 keep-alive connection: opened before the drain, reused during it. */
class KeepAlive {
  constructor(port) {
    this.port = port;
    this.responses = new Recorder('keep-alive responses');
    this.buf = '';
  }

  async open() {
    this.sock = net.connect({ host: '127.0.0.1', port: this.port });
    this.closed = new Promise((resolve) => this.sock.on('close', resolve));
    this.sock.on('error', () => {});
    this.sock.setEncoding('latin1');
    this.sock.on('data', (d) => {
      this.buf += d;
      for (;;) {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = this.buf.slice(0, end);
        const len = Number((/content-length:\s*(\d+)/i.exec(head) || [0, 0])[1]);
        if (this.buf.length < end + 4 + len) return;
        const body = this.buf.slice(end + 4, end + 4 + len);
        this.buf = this.buf.slice(end + 4 + len);
        this.responses.push({ status: Number(head.split(' ')[1]), head, body });
      }
    });
    await withTimeout(new Promise((resolve, reject) => {
      this.sock.once('connect', resolve);
      this.sock.once('error', reject);
    }), 5000, 'keep-alive connect timed out');
  }

  /** GET /ready on this connection; resolves a response, or null if the server closed it. */
  async ready(ms = 5000) {
    if (this.sock.destroyed) return null;
    const n = this.responses.items.length;
    this.sock.write(`GET /ready HTTP/1.1\r\nHost: 127.0.0.1:${this.port}\r\n\r\n`);
    const got = this.responses.until((xs) => xs.length > n, 'a /ready response', ms)
      .then((xs) => xs[n]);
    return Promise.race([got, this.closed.then(() => got.catch(() => null))]);
  }

  destroy() { if (this.sock) this.sock.destroy(); }
}

describe('graceful drain on SIGTERM', () => {
  const cleanups = [];
  after(async () => {
    for (const f of cleanups.reverse()) await f();
  });

  it('sends pusher:error 4200 and close 4200 to every client, answers /ready 503, exits 0', async (t) => {
    const DRAIN_S = 5;
    const server = await startServer(['--drain-timeout', String(DRAIN_S)]);
    const clients = new Clients(server.port);
    cleanups.push(() => server.kill(), () => clients.closeAll());

    const a = await clients.connectOnShard(0, { name: 'a', user: { user_id: 'a', user_info: {} } });
    const b = await clients.connectOnShard(1, { name: 'b', user: { user_id: 'b', user_info: {} } });
    await a.subscribe('presence-drain');
    await b.subscribe('presence-drain');
    await a.subscribe('private-drain');
    await b.subscribe('my-public-drain');

    const ka = new KeepAlive(server.port);
    await ka.open();
    cleanups.push(() => ka.destroy());
    const before = await ka.ready();
    assert.equal(before.status, 200, 'ready before the drain');
    assert.deepEqual(JSON.parse(before.body), { ready: true });

    server.child.kill('SIGTERM');

    for (const c of [a, b]) {
      const msg = await c.messages.first((m) => m.event === 'pusher:error',
        `pusher:error on ${c.name}`, 10000);
      assert.equal(msg.data.code, 4200, `${c.name}: pusher:error code`);
      assert.equal(typeof msg.data.message, 'string');
      const err = await c.errorCode(4200, 10000); // what connection.bind('error') shows
      assert.equal(err.type, 'PusherError');
      const close = await c.closes.first(() => true, `${c.name}: WebSocket close`, 10000);
      assert.equal(close.code, 4200, `${c.name}: close frame code`);
    }

    // The server is draining now: a /ready answered from here on must be 503.
    const during = await ka.ready();
    if (during) {
      assert.equal(during.status, 503, `/ready while draining: ${during.head}`);
      assert.equal(JSON.parse(during.body).ready, false);
    } else {
      t.diagnostic('/ready during the drain was not observable (keep-alive connection closed)');
    }
    try {
      const fresh = await httpGet(server.port, '/ready', { timeoutMs: 3000 });
      assert.equal(fresh.status, 503, '/ready on a new connection while draining');
    } catch (e) {
      // Not accepting new connections any more is fine too.
      assert.match(e.message, /ECONNREFUSED|ECONNRESET|socket hang up|timed out/);
    }

    const exit = await server.waitExit((DRAIN_S + 10) * 1000,
      `ringcast to exit after SIGTERM (drain timeout ${DRAIN_S} s)`);
    assert.deepEqual(exit, { code: 0, signal: null }, `exit status; stderr:\n${server.stderr}`);
    // pusher-js treats 4200 as "reconnect now": that is expected, and it cannot get back in.
    for (const c of [a, b]) assert.notEqual(c.state, 'connected');
  });

  it('exits 0 after --drain-timeout even when a client never answers the close', async () => {
    const DRAIN_S = 2;
    const server = await startServer(['--drain-timeout', String(DRAIN_S)]);
    cleanups.push(() => server.kill());
    const stubborn = new RawPusher(server.port, 'stubborn');
    stubborn.replyToClose = false; // keeps its TCP connection open and says nothing
    await stubborn.open();
    cleanups.push(() => stubborn.destroy());

    server.child.kill('SIGTERM');
    const msg = await stubborn.event('pusher:error', 10000);
    assert.equal(msg.data.code, 4200);
    const close = await stubborn.closeFrame(10000);
    assert.equal(close.code, 4200);
    const exit = await server.waitExit((DRAIN_S + 10) * 1000,
      `ringcast to exit after the ${DRAIN_S} s drain timeout`);
    assert.deepEqual(exit, { code: 0, signal: null }, `exit status; stderr:\n${server.stderr}`);
    await withTimeout(stubborn.ended, 5000, 'the stubborn TCP connection did not end');
  });
});
