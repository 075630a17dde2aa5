'use strict';
// The Socket.IO dialect's transport and namespace joins, through the official socket.io-client
// 4 as the Ekko client configures it (websocket transport, namespace /<app id>, auth {jwt, uuid})
// and tokens made with jsonwebtoken as the Ekko CLI makes them.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { startServer, httpGet, withTimeout, APP } = require('../lib/server');
const { token, connect } = require('../lib/socketio');

const SERVER_SECRET = 'ekko-server-secret';

describe('socket.io: transport and namespaces', () => {
  let server;

  before(async () => {
    server = await startServer([
      '--jwt-secret', SERVER_SECRET,
      '--socketio-ping-interval', '1000', '--socketio-ping-timeout', '1000',
    ]);
  });

  after(async () => {
    if (server) await server.kill();
  });

  it('joins the app namespace with a token signed by the app secret or the server secret', async () => {
    for (const secret of [APP.secret, SERVER_SECRET]) {
      const socket = await connect(server.port, APP.appId, { jwt: token(APP.appId, secret), uuid: 'u-1' });
      try {
        assert.equal(socket.connected, true);
        assert.equal(typeof socket.id, 'string');
        assert.ok(socket.id.length > 0);
      } finally {
        socket.close();
      }
    }
  });

  it('refuses forged, expired, other-app and unsigned tokens and unknown namespaces', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases = [
      ['forged', APP.appId, { jwt: token(APP.appId, 'not-the-secret'), uuid: 'u' }, 'Authorization error'],
      ['expired', APP.appId, { jwt: token(APP.appId, APP.secret, { exp: now - 10 }), uuid: 'u' }, 'Authorization error'],
      ['another app', APP.appId, { jwt: token('other-app', APP.secret), uuid: 'u' }, 'Authorization error'],
      ['HS512', APP.appId, { jwt: token(APP.appId, APP.secret, {}, { algorithm: 'HS512' }), uuid: 'u' }, 'Authorization error'],
      ['no token', APP.appId, { uuid: 'u' }, 'Authorization error'],
      ['unknown namespace', 'no-such-app', { jwt: token('no-such-app', SERVER_SECRET), uuid: 'u' }, 'Invalid namespace'],
    ];
    for (const [name, namespace, auth, message] of cases) {
      await assert.rejects(connect(server.port, namespace, auth), (err) => {
        assert.equal(err.message, message, name);
        return true;
      }, name);
    }
    // A token that expires later is fine.
    const later = await connect(server.port, APP.appId, { jwt: token(APP.appId, APP.secret, { exp: now + 600 }) });
    later.close();
  });

  it('answers long-polling with Engine.IO\'s "Transport unknown" and other versions with code 5', async () => {
    const polling = await httpGet(server.port, '/socket.io/?EIO=4&transport=polling');
    assert.equal(polling.status, 400);
    assert.deepEqual(JSON.parse(polling.body), { code: 0, message: 'Transport unknown' });
    const v3 = await httpGet(server.port, '/socket.io/?EIO=3&transport=websocket');
    assert.equal(v3.status, 400);
    assert.deepEqual(JSON.parse(v3.body), { code: 5, message: 'Unsupported protocol version' });
    // The client with its default transports (polling first) fails instead of hanging.
    await assert.rejects(
      connect(server.port, APP.appId, { jwt: token(APP.appId, APP.secret) }, { transports: ['polling'] }),
      /xhr poll error|websocket error|server error/,
    );
  });

  it('sends the open packet with the configured heartbeat and keeps a client that answers pings', async () => {
    const raw = new WebSocket(`ws://127.0.0.1:${server.port}/socket.io/?EIO=4&transport=websocket`);
    const frames = [];
    raw.on('message', (data) => {
      const text = data.toString();
      frames.push(text);
      if (text === '2') raw.send('3');
    });
    await withTimeout(new Promise((resolve) => raw.on('open', resolve)), 3000, 'no upgrade');
    try {
      await withTimeout((async () => {
        while (frames.length === 0) await new Promise((r) => setTimeout(r, 20));
      })(), 3000, 'no open packet');
      assert.equal(frames[0][0], '0');
      const open = JSON.parse(frames[0].slice(1));
      assert.deepEqual(
        { upgrades: open.upgrades, pingInterval: open.pingInterval, pingTimeout: open.pingTimeout, maxPayload: open.maxPayload },
        { upgrades: [], pingInterval: 1000, pingTimeout: 1000, maxPayload: 1000000 },
      );
      assert.equal(typeof open.sid, 'string');
      // Several pings come and are answered; the socket stays open.
      await new Promise((r) => setTimeout(r, 4500));
      assert.ok(frames.filter((f) => f === '2').length >= 2, `pings seen: ${JSON.stringify(frames)}`);
      assert.equal(raw.readyState, WebSocket.OPEN);
    } finally {
      raw.close();
    }
  });

  it('closes a client that stops answering pings', async () => {
    const raw = new WebSocket(`ws://127.0.0.1:${server.port}/socket.io/?EIO=4&transport=websocket`);
    const closed = new Promise((resolve) => raw.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    await withTimeout(new Promise((resolve) => raw.on('open', resolve)), 3000, 'no upgrade');
    const { code, reason } = await withTimeout(closed, 8000, 'never closed');
    assert.equal(code, 1000);
    assert.equal(reason, 'ping timeout');
  });

  it('keeps a connection through bad packets with an error event, and joins several namespaces', async () => {
    const raw = new WebSocket(`ws://127.0.0.1:${server.port}/socket.io/?EIO=4&transport=websocket`);
    const frames = [];
    raw.on('message', (data) => {
      const text = data.toString();
      if (text === '2') raw.send('3');
      else frames.push(text);
    });
    await withTimeout(new Promise((resolve) => raw.on('open', resolve)), 3000, 'no upgrade');
    const next = async (what) => withTimeout((async () => {
      while (frames.length === 0) await new Promise((r) => setTimeout(r, 10));
      return frames.shift();
    })(), 3000, `no answer to ${what}`);
    try {
      await next('the upgrade'); // the open packet
      raw.send('9garbage');
      assert.match(await next('garbage'), /^42\["error",\{"message":"Unknown Engine.IO packet type"\}\]$/);
      raw.send('451-["x",{"_placeholder":true,"num":0}]');
      assert.match(await next('a binary event'), /Binary packets are not supported/);
      raw.send(Buffer.from([1, 2, 3]));
      assert.match(await next('a binary frame'), /Binary packets are not supported/);
      raw.send(`42/${APP.appId},["publish",{}]`);
      assert.match(await next('an event before joining'), /Join the namespace first/);
      raw.send(`40/${APP.appId},${JSON.stringify({ jwt: token(APP.appId, APP.secret), uuid: 'u' })}`);
      assert.match(await next('a connect'), new RegExp(`^40/${APP.appId},\\{"sid":"[^"]+"\\}$`));
      raw.send(`40/other,${JSON.stringify({ jwt: token('other', SERVER_SECRET) })}`);
      assert.equal(await next('a second connect'), '44/other,{"message":"Invalid namespace"}');
      assert.equal(raw.readyState, WebSocket.OPEN);
    } finally {
      raw.close();
    }
  });
});
