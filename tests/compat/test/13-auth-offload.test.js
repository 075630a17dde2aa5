'use strict';
// Auth offload (`app_channel_authorization_url`): thin clients subscribe to private and
// presence channels without `auth`, and ringcast (through its bridge) asks the app's real
// authorization endpoint — a Node HTTP server here that signs with the official `pusher` SDK,
// as an app backend would — with the form pusher-js would send, plus the connection's cookie
// and query. Refusals, bad signatures and a silent endpoint end in a clear
// pusher:subscription_error; the server goes on.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const PusherServer = require('pusher');
const { startServer, APP, httpGet } = require('../lib/server');
const { RawPusher } = require('../lib/rawws');
const { Recorder } = require('../lib/clients');

const sdk = new PusherServer({
  appId: APP.appId, key: APP.key, secret: APP.secret, cluster: 'mt1',
});

/** The app's authorization endpoint: decides by channel name, records every request. */
class AuthEndpoint {
  constructor() {
    this.requests = new Recorder('authorization requests');
    this.held = []; // responses of the silent channel, never answered
  }

  async start() {
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => this.answer(req, res, Buffer.concat(chunks).toString('utf8')));
    });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}/pusher/auth`;
    return this;
  }

  answer(req, res, body) {
    const form = new URLSearchParams(body);
    const record = { path: req.url, headers: req.headers, body, form };
    this.requests.push(record);
    const socketId = form.get('socket_id');
    const channel = form.get('channel_name');
    const json = (status, obj) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    if (channel === 'private-denied') return json(403, { error: 'not yours' });
    if (channel === 'private-silent') { this.held.push(res); return undefined; }
    if (channel === 'private-forged') {
      return json(200, { auth: `${APP.key}:${'0'.repeat(64)}` });
    }
    if (channel.startsWith('presence-')) {
      const device = form.get('device') || 'unknown';
      return json(200, sdk.authorizeChannel(socketId, channel,
        { user_id: `device-${device}`, user_info: { cookie: req.headers.cookie || null } }));
    }
    return json(200, sdk.authorizeChannel(socketId, channel));
  }

  async stop() {
    for (const res of this.held) res.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('auth offload', () => {
  let server;
  const endpoint = new AuthEndpoint();
  const raws = [];

  before(async () => {
    await endpoint.start();
    // Forwarding Cookie needs an allow-list of the sites whose pages may connect.
    server = await startServer(['--app-channel-authorization-url', endpoint.url,
      '--app-channel-authorization-headers', 'Cookie', '--app-channel-authorization-query', 'true',
      '--app-allowed-origins', 'https://app.example.com']);
  });

  after(async () => {
    for (const raw of raws) raw.destroy();
    await server.kill();
    await endpoint.stop();
  });

  /** A raw (thin) client with a cookie and its own query parameter. */
  async function device(name) {
    const raw = new RawPusher(server.port, name);
    raws.push(raw);
    await raw.open(`/app/${APP.key}?protocol=7&client=device&version=1.0&device=${name}`, 5000,
      { Cookie: `session=${name}-cookie` });
    return raw;
  }

  it('authorizes a private subscription without auth, sending the form, cookie and query', async () => {
    const raw = await device('thermo1');
    raw.send({ event: 'pusher:subscribe', data: { channel: 'private-thermostat' } });
    // Longer than the engine's own 10 s wait (see below): a lost answer shows as its error.
    await raw.event('pusher_internal:subscription_succeeded', 15000, 'private-thermostat');
    const request = await endpoint.requests.first((r) => r.form.get('channel_name') === 'private-thermostat',
      'the authorization request');
    assert.equal(request.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(request.form.get('socket_id'), raw.socketId);
    assert.equal(request.form.get('device'), 'thermo1', 'the connection\'s query is sent along');
    for (const own of ['protocol', 'client', 'version']) {
      assert.equal(request.form.get(own), null, `Pusher's own ${own} is not`);
    }
    assert.equal(request.headers.cookie, 'session=thermo1-cookie');
  });

  it('refuses a page of another site, so its visitors\' cookies are never sent', async () => {
    const evil = new RawPusher(server.port, 'evil');
    raws.push(evil);
    await assert.rejects(
      evil.open(`/app/${APP.key}?protocol=7&client=js&version=8.6.0`, 5000,
        { Cookie: 'session=victim-cookie', Origin: 'https://evil.example' }),
      /upgrade refused: HTTP\/1\.1 403/);
    const page = new RawPusher(server.port, 'page');
    raws.push(page);
    await page.open(`/app/${APP.key}?protocol=7&client=js&version=8.6.0`, 5000,
      { Cookie: 'session=page-cookie', Origin: 'https://app.example.com' });
    page.send({ event: 'pusher:subscribe', data: { channel: 'private-page' } });
    // Longer than the engine's own 10 s wait, so a late answer shows as its error, not as silence.
    await page.event('pusher_internal:subscription_succeeded', 15000, 'private-page');
    const request = await endpoint.requests.first((r) => r.form.get('channel_name') === 'private-page',
      'the page\'s authorization request');
    assert.equal(request.headers.cookie, 'session=page-cookie');
    assert.ok(!endpoint.requests.items.some((r) => r.headers.cookie === 'session=victim-cookie'),
      'the refused page\'s cookie never reached the endpoint');
  });

  it('authorizes a presence subscription with the endpoint\'s channel_data', async () => {
    const a = await device('lamp1');
    a.send({ event: 'pusher:subscribe', data: { channel: 'presence-devices' } });
    const ok = await a.event('pusher_internal:subscription_succeeded', 10000, 'presence-devices');
    const presence = JSON.parse(ok.data).presence;
    assert.deepEqual(presence.ids, ['device-lamp1']);
    assert.deepEqual(presence.hash['device-lamp1'], { cookie: 'session=lamp1-cookie' });
    const b = await device('lamp2');
    b.send({ event: 'pusher:subscribe', data: { channel: 'presence-devices' } });
    await b.event('pusher_internal:subscription_succeeded', 10000, 'presence-devices');
    const added = await a.event('pusher_internal:member_added', 5000, 'presence-devices');
    assert.equal(JSON.parse(added.data).user_id, 'device-lamp2');
  });

  it('passes the endpoint\'s refusal on as a subscription_error with its status', async () => {
    const raw = await device('intruder');
    raw.send({ event: 'pusher:subscribe', data: { channel: 'private-denied' } });
    const err = await raw.event('pusher:subscription_error', 10000, 'private-denied');
    const data = JSON.parse(err.data);
    assert.equal(data.type, 'AuthError');
    assert.equal(data.status, 403);
    assert.match(data.error, /403/);
  });

  it('checks the endpoint\'s signature like any auth', async () => {
    const raw = await device('forger');
    raw.send({ event: 'pusher:subscribe', data: { channel: 'private-forged' } });
    const err = await raw.event('pusher:subscription_error', 10000, 'private-forged');
    const data = JSON.parse(err.data);
    assert.equal(data.status, 401);
    assert.match(data.error, /signature/i);
  });

  it('a silent endpoint ends in a timeout error, and the connection goes on', async () => {
    const raw = await device('patient');
    raw.send({ event: 'pusher:subscribe', data: { channel: 'private-silent' } });
    const err = await raw.event('pusher:subscription_error', 15000, 'private-silent');
    assert.equal(JSON.parse(err.data).status, 504);
    raw.send({ event: 'pusher:subscribe', data: { channel: 'private-after' } });
    await raw.event('pusher_internal:subscription_succeeded', 10000, 'private-after');
    const { body } = await httpGet(server.port, '/metrics');
    /** A per-shard counter summed over the shards. */
    const total = (name) => [...body.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\d+)$`, 'gm'))]
      .reduce((sum, m) => sum + Number(m[1]), 0);
    const sent = total('ringcast_auth_offload_requests_total');
    const refused = total('ringcast_auth_offload_refused_total');
    assert.ok(sent >= 6, `offloaded requests counted: ${sent}`);
    assert.ok(refused >= 2, `refusals (403, timeout) counted: ${refused}`);
    // The bridge's own counts (reported once a second): what the endpoint did.
    const bridgeCount = async (name) => {
      const m = new RegExp(`^${name} (\\d+)$`, 'm').exec((await httpGet(server.port, '/metrics')).body);
      return m ? Number(m[1]) : -1;
    };
    const deadline = Date.now() + 10000;
    for (;;) {
      const granted = await bridgeCount('ringcast_bridge_auth_granted_total');
      const endpointRefused = await bridgeCount('ringcast_bridge_auth_refused_total');
      const failed = await bridgeCount('ringcast_bridge_auth_failed_total');
      if (granted >= 3 && endpointRefused >= 1 && failed >= 1) break;
      assert.ok(Date.now() < deadline,
        `bridge auth counters: granted ${granted}, refused ${endpointRefused}, failed ${failed}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  it('an auth the client sends itself is used as before, without the endpoint', async () => {
    const raw = await device('selfsigned');
    const before = endpoint.requests.items.length;
    const { auth } = sdk.authorizeChannel(raw.socketId, 'private-own');
    raw.send({ event: 'pusher:subscribe', data: { channel: 'private-own', auth } });
    await raw.event('pusher_internal:subscription_succeeded', 5000, 'private-own');
    assert.equal(endpoint.requests.items.length, before);
  });
});
