'use strict';
// The REST API through the official `pusher` Node SDK (5.3.4), received by pusher-js
// subscribers: trigger, triggerBatch, socket_id exclusion, channel queries across shards,
// sendToUser, terminateUserConnections, encrypted and cache channels, and the error statuses.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { startServer, delay, APP } = require('../lib/server');
const { Clients, Recorder, shardOf } = require('../lib/clients');
const { RawPusher } = require('../lib/rawws');
const {
  restSdk, ok, fails, signedRequest, md5, eventually,
} = require('../lib/rest');

// Time given to a wrong extra event to show up before asserting it did not (never a speed check:
// each such check first waits for a marker event published after the one that must not arrive).
const SETTLE_MS = 300;
const API = `/apps/${APP.appId}`;

/** User events (not pusher:*) recorded on a channel. */
const userEvents = (rec) => rec.items.filter((x) => !x.event.startsWith('pusher:'));
const names = (rec) => userEvents(rec).map((x) => x.event);

/** The WebSocket object under a connected pusher-js client (pusher-js/faye internals). */
function wsOf(c) {
  const conn = c.pusher.connection.connection;
  return conn && conn.transport && conn.transport.socket;
}

/**
 * pusher-js reacts to a 4000-4099 close by calling close() on the already closed WebSocket,
 * which arms the bundled WebSocket's 30 s close timer that nothing clears, keeping node alive
 * for 30 s after the tests. Clear it (client-side quirk, not a server matter).
 */
function clearLeakedCloseTimer(ws) {
  if (ws && ws.readyState === 3 && ws._closeTimer) clearTimeout(ws._closeTimer);
}

/** Connect on `shard`, subscribe to `channel`, record its events. */
async function subscriber(clients, shard, channel, opts = {}) {
  const c = await clients.connectOnShard(shard, { name: `${channel}-sub`, ...opts });
  const ch = await c.subscribe(channel);
  return { c, ch, rec: c.record(ch) };
}

/** Waits for event `name` in a recorder; returns its data. */
async function got(rec, name, what) {
  const item = await rec.first((x) => x.event === name, what || `event ${name}`);
  return item.data;
}

/** A signed-in pusher-js client on `shard`; `notes` records every user event named in `events`. */
async function signedIn(clients, shard, user, events = ['note']) {
  const c = await clients.connectOnShard(shard, { name: `user ${user.id}`, signin: user });
  c.notes = new Recorder(`${c.name} user events`);
  for (const ev of events) c.pusher.user.bind(ev, (data) => c.notes.push({ event: ev, data }));
  c.pusher.signin();
  await c.messages.first((m) => m.event === 'pusher:signin_success', `signin_success for ${user.id}`);
  await c.messages.first((m) => m.event === 'pusher_internal:subscription_succeeded' &&
    m.channel === `#server-to-user-${user.id}`, `subscription_succeeded on #server-to-user-${user.id}`);
  return c;
}

/** A raw WebSocket subscriber (sees the exact frames); `auth` for private channels. */
async function rawSubscriber(port, channel, raws, authFor) {
  const raw = new RawPusher(port, `raw ${channel}`);
  raws.push(raw);
  await raw.open();
  const data = { channel };
  if (authFor) data.auth = authFor(raw.socketId).auth;
  raw.send({ event: 'pusher:subscribe', data });
  await raw.event('pusher_internal:subscription_succeeded', 5000, channel);
  return raw;
}

/** Frames of `event` on `channel` a raw subscriber received. */
function rawEvents(raw, event, channel) {
  return raw.frames.items.filter((f) => f.json && f.json.event === event && f.json.channel === channel)
    .map((f) => f.json);
}

describe('REST API through the pusher Node SDK', () => {
  let server;
  let clients;
  let rest;
  const raws = [];

  before(async () => {
    server = await startServer();
    clients = new Clients(server.port);
    rest = restSdk(server.port);
  });

  after(async () => {
    if (clients) clients.closeAll();
    for (const r of raws) r.destroy();
    if (server) await server.kill();
  });

  describe('trigger', () => {
    it('public channel: pusher-js subscribers on both shards get the data; the data string is relayed unchanged', async () => {
      const channel = 'rest-public';
      const a = await subscriber(clients, 0, channel);
      const b = await subscriber(clients, 1, channel);
      const raw = await rawSubscriber(server.port, channel, raws);

      const res = await ok(rest.trigger(channel, 'greet', { a: 1 }), 'trigger greet');
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, {}, 'trigger without info answers {}');
      assert.deepEqual(await got(a.rec, 'greet', 'greet on shard 0'), { a: 1 });
      assert.deepEqual(await got(b.rec, 'greet', 'greet on shard 1'), { a: 1 });
      const frame = await raw.event('greet', 5000, channel);
      assert.equal(frame.data, '{"a":1}', 'the data string exactly as the SDK sent it');

      // A data string with odd spacing / non-ASCII is relayed byte for byte; pusher-js parses it.
      const odd = '{ "b" : [1, 2] ,"ü":"✓" }';
      await ok(rest.trigger(channel, 'odd', odd), 'trigger odd');
      assert.deepEqual(await got(a.rec, 'odd'), { b: [1, 2], ü: '✓' });
      assert.equal((await raw.event('odd', 5000, channel)).data, odd);
      // Non-JSON data stays a string.
      await ok(rest.trigger(channel, 'plain', 'just text'), 'trigger plain');
      assert.equal(await got(a.rec, 'plain', 'plain on shard 0'), 'just text');
      assert.equal(await got(b.rec, 'plain', 'plain on shard 1'), 'just text');
      assert.equal((await raw.event('plain', 5000, channel)).data, 'just text');
      assert.equal(frame.user_id, undefined, 'no user_id on REST events');
      assert.deepEqual(names(a.rec), ['greet', 'odd', 'plain']);
    });

    it('private channel: subscribers authorized with the SDK get the event', async () => {
      const channel = 'private-rest-orders';
      const a = await subscriber(clients, 0, channel);
      const b = await subscriber(clients, 1, channel);
      await ok(rest.trigger(channel, 'order-placed', { id: 7, items: ['tea'] }), 'trigger private');
      assert.deepEqual(await got(a.rec, 'order-placed', 'order-placed on shard 0'), { id: 7, items: ['tea'] });
      assert.deepEqual(await got(b.rec, 'order-placed', 'order-placed on shard 1'), { id: 7, items: ['tea'] });
    });

    it('presence channel: members on both shards get the event, without a user_id', async () => {
      const channel = 'presence-rest-room';
      const a = await subscriber(clients, 0, channel, { user: { user_id: 'pa', user_info: { n: 1 } } });
      const b = await subscriber(clients, 1, channel, { user: { user_id: 'pb' } });
      assert.equal(b.ch.members.count, 2);
      await ok(rest.trigger(channel, 'announce', { text: 'hi all' }), 'trigger presence');
      assert.deepEqual(await got(a.rec, 'announce', 'announce for pa'), { text: 'hi all' });
      assert.deepEqual(await got(b.rec, 'announce', 'announce for pb'), { text: 'hi all' });
      const [wire] = b.c.received('announce', channel);
      assert.equal(wire.user_id, undefined, `a REST event carries no user_id: ${JSON.stringify(wire)}`);
    });

    it('several channels at once (each subscriber gets it once per channel); info=subscription_count', async () => {
      const chans = ['rest-multi-a', 'rest-multi-b', 'private-rest-multi-c'];
      const a0 = await subscriber(clients, 0, chans[0]);
      const a1 = await subscriber(clients, 1, chans[0]);
      const b = await subscriber(clients, 1, chans[1]);
      const bRecA = b.c.record(await b.c.subscribe(chans[0])); // b listens on a and b
      const c = await subscriber(clients, 0, chans[2]);

      const res = await ok(rest.trigger(chans, 'fanout', { n: 3 }, { info: 'subscription_count' }),
        'trigger to 3 channels with info');
      assert.deepEqual(res.body, {
        channels: {
          'rest-multi-a': { subscription_count: 3 },
          'rest-multi-b': { subscription_count: 1 },
          'private-rest-multi-c': { subscription_count: 1 },
        },
      });
      for (const [who, rec] of [['a0', a0.rec], ['a1', a1.rec], ['b on b', b.rec], ['b on a', bRecA], ['c', c.rec]]) {
        assert.deepEqual(await got(rec, 'fanout', `fanout for ${who}`), { n: 3 });
      }
      // Marker on every channel, then: exactly one fanout per channel per subscriber.
      await ok(rest.trigger(chans, 'marker', {}), 'trigger marker');
      for (const rec of [a0.rec, a1.rec, b.rec, bRecA, c.rec]) await got(rec, 'marker');
      await delay(SETTLE_MS);
      const fanouts = b.c.messages.filter((m) => m.event === 'fanout').map((m) => m.channel).sort();
      assert.deepEqual(fanouts, ['rest-multi-a', 'rest-multi-b'], 'b gets it once per subscribed channel');
      assert.deepEqual(names(a0.rec), ['fanout', 'marker']);
    });

    it('triggerBatch: several events arrive in order; info gives one entry per event', async () => {
      const a0 = await subscriber(clients, 0, 'rest-batch-a');
      const a1 = await subscriber(clients, 1, 'rest-batch-a');
      const b = await subscriber(clients, 1, 'rest-batch-b');
      const res = await ok(rest.triggerBatch([
        { channel: 'rest-batch-a', name: 'step', data: { i: 1 } },
        { channel: 'rest-batch-b', name: 'other', data: { j: 1 } },
        { channel: 'rest-batch-a', name: 'step', data: { i: 2 } },
        { channel: 'rest-batch-a', name: 'step', data: { i: 3 } },
        { channel: 'rest-batch-a', name: 'done', data: 'end' },
      ]), 'triggerBatch');
      assert.deepEqual(res.body, {});
      const expected = [
        { event: 'step', data: { i: 1 } }, { event: 'step', data: { i: 2 } },
        { event: 'step', data: { i: 3 } }, { event: 'done', data: 'end' },
      ];
      for (const [who, s] of [['shard 0', a0], ['shard 1', a1]]) {
        await got(s.rec, 'done', `done on rest-batch-a (${who})`);
        assert.deepEqual(userEvents(s.rec).map(({ event, data }) => ({ event, data })), expected,
          `events in batch order (${who})`);
      }
      assert.deepEqual(await got(b.rec, 'other'), { j: 1 });

      const withInfo = await ok(rest.triggerBatch([
        { channel: 'rest-batch-a', name: 'counted', data: {}, info: 'subscription_count' },
        { channel: 'rest-batch-b', name: 'uncounted', data: {} },
      ]), 'triggerBatch with info');
      assert.deepEqual(withInfo.body, { batch: [{ subscription_count: 2 }, {}] });
      await got(a0.rec, 'counted');
      await got(b.rec, 'uncounted');
    });

    it('socket_id excludes that connection only (trigger and triggerBatch)', async () => {
      const channel = 'rest-exclude';
      const a = await subscriber(clients, 0, channel);
      const b = await subscriber(clients, 1, channel);
      await ok(rest.trigger(channel, 'not-for-a', { x: 1 }, { socket_id: a.c.socketId }),
        'trigger excluding a');
      assert.deepEqual(await got(b.rec, 'not-for-a', 'b gets the event'), { x: 1 });
      await ok(rest.trigger(channel, 'marker-1', {}), 'trigger marker-1');
      await got(a.rec, 'marker-1', 'marker-1 on a');

      await ok(rest.triggerBatch([
        { channel, name: 'not-for-b', data: { y: 2 }, socket_id: b.c.socketId },
        { channel, name: 'marker-2', data: {} },
      ]), 'triggerBatch excluding b');
      assert.deepEqual(await got(a.rec, 'not-for-b', 'a gets the batch event'), { y: 2 });
      await got(b.rec, 'marker-2', 'marker-2 on b');
      await got(a.rec, 'marker-2', 'marker-2 on a');
      await delay(SETTLE_MS);
      assert.deepEqual(names(a.rec), ['marker-1', 'not-for-b', 'marker-2'], 'a: excluded from not-for-a');
      assert.deepEqual(names(b.rec), ['not-for-a', 'marker-1', 'marker-2'], 'b: excluded from not-for-b');
    });
  });

  describe('channel queries', () => {
    let ann0;
    let ann1;
    let bob;

    before(async () => {
      // ann has a tab on each shard; bob and cat are on the other shard than one of ann's tabs.
      ann0 = await subscriber(clients, 0, 'presence-count-1', { user: { user_id: 'ann' } });
      ann1 = await subscriber(clients, 1, 'presence-count-1', { user: { user_id: 'ann' } });
      bob = await subscriber(clients, 1, 'presence-count-1', { user: { user_id: 'bob', user_info: { x: 1 } } });
      await subscriber(clients, 0, 'presence-count-2', { user: { user_id: 'cat' } });
      await subscriber(clients, 1, 'count-public');
      await subscriber(clients, 0, 'count-public');
      assert.notEqual(shardOf(ann0.c.socketId), shardOf(ann1.c.socketId));
    });

    it('GET /channels?filter_by_prefix=presence-&info=user_count counts users, not connections, over both shards', async () => {
      const res = await ok(rest.get({ path: '/channels',
        params: { filter_by_prefix: 'presence-count-', info: 'user_count' } }), 'GET /channels presence-count-');
      assert.deepEqual(res.body, {
        channels: { 'presence-count-1': { user_count: 2 }, 'presence-count-2': { user_count: 1 } },
      });
      const all = await ok(rest.get({ path: '/channels',
        params: { filter_by_prefix: 'presence-', info: 'user_count' } }), 'GET /channels presence-');
      assert.deepEqual(all.body.channels['presence-count-1'], { user_count: 2 });
      for (const name of Object.keys(all.body.channels)) {
        assert.ok(name.startsWith('presence-'), `only presence- channels listed, got ${name}`);
      }
    });

    it('GET /channels/{c}?info=user_count,subscription_count; occupied; non-presence user_count → 400', async () => {
      const p = await ok(rest.get({ path: '/channels/presence-count-1',
        params: { info: 'user_count,subscription_count' } }), 'GET presence-count-1');
      assert.deepEqual(p.body, { occupied: true, user_count: 2, subscription_count: 3 });
      const pub = await ok(rest.get({ path: '/channels/count-public',
        params: { info: 'subscription_count' } }), 'GET count-public');
      assert.deepEqual(pub.body, { occupied: true, subscription_count: 2 });
      const plain = await ok(rest.get({ path: '/channels/count-public' }), 'GET count-public (no info)');
      assert.deepEqual(plain.body, { occupied: true });
      const empty = await ok(rest.get({ path: '/channels/count-nobody-here' }), 'GET empty channel');
      assert.equal(empty.body.occupied, false);
      const bad = await fails(rest.get({ path: '/channels/count-public', params: { info: 'user_count' } }),
        'GET count-public info=user_count');
      assert.equal(bad.status, 400, `user_count on a public channel: ${bad.text}`);
      assert.equal(typeof bad.body.error, 'string');
    });

    it('GET /channels/{presence}/users lists user ids once each; non-presence → 400', async () => {
      const res = await ok(rest.get({ path: '/channels/presence-count-1/users' }), 'GET users');
      assert.ok(Array.isArray(res.body.users), JSON.stringify(res.body));
      const users = [...res.body.users].sort((x, y) => (x.id < y.id ? -1 : 1));
      assert.deepEqual(users, [{ id: 'ann' }, { id: 'bob' }]);
      const bad = await fails(rest.get({ path: '/channels/count-public/users' }), 'GET users of a public channel');
      assert.equal(bad.status, 400, bad.text);
    });

    it('user_count follows users leaving: one of two tabs closing keeps the user', async () => {
      await ann1.c.disconnected();
      const afterTab = await eventually(
        () => ok(rest.get({ path: '/channels/presence-count-1', params: { info: 'user_count,subscription_count' } }), 'GET'),
        (r) => r.body.subscription_count === 2, 'subscription_count 2 after ann closed a tab');
      assert.equal(afterTab.body.user_count, 2, 'ann still has a tab');
      await bob.c.disconnected();
      const afterBob = await eventually(
        () => ok(rest.get({ path: '/channels', params: { filter_by_prefix: 'presence-count-', info: 'user_count' } }), 'GET'),
        (r) => r.body.channels && r.body.channels['presence-count-1'] &&
          r.body.channels['presence-count-1'].user_count === 1, 'user_count 1 after bob left');
      assert.deepEqual(afterBob.body.channels['presence-count-2'], { user_count: 1 });
      const users = await ok(rest.get({ path: '/channels/presence-count-1/users' }), 'GET users');
      assert.deepEqual(users.body, { users: [{ id: 'ann' }] });
    });

    it('GET /channels without a filter lists occupied channels only', async () => {
      const live = await subscriber(clients, 0, 'occ-live');
      const gone = await subscriber(clients, 1, 'occ-gone');
      await ok(rest.trigger('occ-never', 'x', {}), 'trigger to a channel nobody subscribed to');
      gone.c.pusher.unsubscribe('occ-gone');
      const res = await eventually(() => ok(rest.get({ path: '/channels' }), 'GET /channels'),
        (r) => r.body.channels && !('occ-gone' in r.body.channels), 'occ-gone to leave /channels');
      assert.deepEqual(res.body.channels['occ-live'], {}, 'occupied channel listed with no attributes');
      assert.deepEqual(res.body.channels['count-public'], {});
      assert.ok(!('occ-never' in res.body.channels), 'a channel that only got REST events is not occupied');
      assert.ok(!('count-nobody-here' in res.body.channels));
      assert.ok(live.ch.subscribed);
    });
  });

  describe('users', () => {
    it('sendToUser reaches every tab of the signed-in user only', async () => {
      const u0 = await signedIn(clients, 0, { id: 'ursula' });
      const u1 = await signedIn(clients, 1, { id: 'ursula' });
      const victor = await signedIn(clients, 1, { id: 'victor' });
      // walt is not signed in and tries to subscribe to ursula's server-to-user channel itself.
      const walt = await subscriber(clients, 0, 'walt-public', { name: 'walt' });
      walt.c.pusher.send_event('pusher:subscribe', { channel: '#server-to-user-ursula', auth: '' });

      const res = await ok(rest.sendToUser('ursula', 'note', { hello: 'ursula' }), 'sendToUser ursula');
      assert.deepEqual(res.body, {});
      assert.deepEqual(await got(u0.notes, 'note', 'note on ursula tab 0'), { hello: 'ursula' });
      assert.deepEqual(await got(u1.notes, 'note', 'note on ursula tab 1'), { hello: 'ursula' });

      // Markers: victor gets his own note, walt gets a public event.
      await ok(rest.sendToUser('victor', 'note', { hello: 'victor' }), 'sendToUser victor');
      assert.deepEqual(await got(victor.notes, 'note', 'note on victor'), { hello: 'victor' });
      await ok(rest.trigger('walt-public', 'marker', {}), 'trigger walt marker');
      await got(walt.rec, 'marker', 'marker on walt');
      await delay(SETTLE_MS);
      assert.equal(victor.notes.items.length, 1, `victor: ${JSON.stringify(victor.notes.items)}`);
      assert.equal(u0.notes.items.length, 1, `ursula tab 0: ${JSON.stringify(u0.notes.items)}`);
      assert.equal(u1.notes.items.length, 1, `ursula tab 1: ${JSON.stringify(u1.notes.items)}`);
      const leaked = walt.c.messages.filter((m) => m.event === 'note' ||
        (m.channel === '#server-to-user-ursula' && !String(m.event).startsWith('pusher')));
      assert.deepEqual(leaked, [], 'a connection not signed in as ursula gets nothing');
    });

    it('terminateUserConnections closes every tab of the user with 4009; pusher-js stays down; others stay', async () => {
      const t0 = await signedIn(clients, 0, { id: 'tom' });
      const t1 = await signedIn(clients, 1, { id: 'tom' });
      const uma = await signedIn(clients, 1, { id: 'uma' });
      const umaCh = uma.record(await uma.subscribe('term-watch'));
      const other = await subscriber(clients, 0, 'term-watch');

      const tomSockets = [t0, t1].map(wsOf);
      const res = await ok(rest.terminateUserConnections('tom'), 'terminateUserConnections tom');
      assert.deepEqual(res.body, {});
      for (const [who, t] of [['tom tab 0', t0], ['tom tab 1', t1]]) {
        const err = await t.errorCode(4009);
        assert.equal(err.type, 'PusherError', `${who}: ${JSON.stringify(err)}`);
        const close = await t.closes.first(() => true, `${who}: WebSocket close`);
        assert.equal(close.code, 4009, `${who}: close code`);
        await t.states.until((xs) => xs[xs.length - 1] === 'disconnected', `${who}: state disconnected`);
      }
      await ok(rest.trigger('term-watch', 'still-here', { ok: true }), 'trigger still-here');
      assert.deepEqual(await got(umaCh, 'still-here', 'still-here on uma'), { ok: true });
      await got(other.rec, 'still-here', 'still-here on the other subscriber');
      await uma.pingPong();
      await delay(SETTLE_MS);
      for (const [who, t] of [['tom tab 0', t0], ['tom tab 1', t1]]) {
        assert.equal(t.state, 'disconnected', `${who} does not reconnect`);
        const i = t.states.items.lastIndexOf('connected');
        assert.ok(!t.states.items.slice(i).includes('connecting'), `${who} states: ${t.states.items}`);
      }
      assert.equal(uma.state, 'connected');
      assert.equal(uma.errors.items.length, 0, JSON.stringify(uma.errors.items));

      tomSockets.forEach(clearLeakedCloseTimer);

      const none = await ok(rest.terminateUserConnections('nobody-online'), 'terminate a user with no connections');
      assert.deepEqual(none.body, {});
    });
  });

  it('encrypted channel: pusher-js decrypts what the SDK encrypted; the server only relays {nonce, ciphertext}', async () => {
    const masterKey = crypto.randomBytes(32).toString('base64');
    const enc = restSdk(server.port, { encryptionMasterKeyBase64: masterKey });
    const channel = 'private-encrypted-x';
    const sampleAuth = enc.authorizeChannel('123.456', channel);
    assert.equal(typeof sampleAuth.shared_secret, 'string', 'the SDK hands out a shared_secret');

    const subs = [];
    for (const shard of [0, 1]) {
      const c = await clients.connectOnShard(shard, { name: 'enc' });
      c.signer = enc; // channelAuthorization customHandler → enc.authorizeChannel (same master key)
      subs.push({ c, rec: c.record(await c.subscribe(channel)) });
    }
    const raw = await rawSubscriber(server.port, channel, raws,
      (socketId) => enc.authorizeChannel(socketId, channel));

    const plaintext = { secret: 'plaintext-marker-42', n: [1, 2] };
    await ok(enc.trigger(channel, 'sealed', plaintext), 'trigger on the encrypted channel');
    for (const [i, s] of subs.entries()) {
      assert.deepEqual(await got(s.rec, 'sealed', `decrypted sealed on shard ${i}`), plaintext);
    }
    const frame = await raw.event('sealed', 5000, channel);
    const wire = JSON.parse(frame.data);
    assert.deepEqual(Object.keys(wire).sort(), ['ciphertext', 'nonce']);
    assert.equal(Buffer.from(wire.nonce, 'base64').length, 24, 'secretbox nonce');
    assert.ok(!frame.data.includes('plaintext-marker-42'), 'no plaintext on the wire');
    // pusher-js's connection-level `message` event shows the same undecrypted payload.
    const seen = subs[0].c.messages.filter((m) => m.event === 'sealed' && m.channel === channel);
    assert.equal(seen.length, 1);
    assert.deepEqual(seen[0].data, wire, 'every subscriber gets the same ciphertext');
  });

  it('cache channel: cache_miss, then a new subscriber gets the last event at once; GET info=cache', async () => {
    const channel = 'cache-weather';
    const a = await clients.connectOnShard(0, { name: 'cache a' });
    const aRec = a.record(await a.subscribe(channel));
    await a.messages.first((m) => m.event === 'pusher:cache_miss' && m.channel === channel,
      'pusher:cache_miss for the first subscriber');

    await ok(rest.trigger(channel, 'forecast', { t: 21 }), 'trigger forecast 21');
    assert.deepEqual(await got(aRec, 'forecast'), { t: 21 });
    await ok(rest.trigger(channel, 'forecast', { t: 22 }), 'trigger forecast 22');
    await aRec.until((xs) => xs.filter((x) => x.event === 'forecast').length === 2, 'second forecast');

    /** The messages a new subscriber gets on `ch` right after subscription_succeeded. */
    async function newSubscriber(shard, ch, what) {
      const c = await clients.connectOnShard(shard, { name: what });
      await c.subscribe(ch);
      const onChannel = () => c.messages.filter((m) => m.channel === ch);
      await c.messages.until(() => {
        const xs = onChannel();
        const i = xs.findIndex((m) => m.event === 'pusher_internal:subscription_succeeded');
        return i >= 0 && xs.length > i + 1;
      }, `${what}: a message after subscription_succeeded on ${ch}`);
      const xs = onChannel();
      const i = xs.findIndex((m) => m.event === 'pusher_internal:subscription_succeeded');
      return xs.slice(i + 1);
    }

    const [first] = await newSubscriber(1, channel, 'cache b');
    assert.equal(first.event, 'forecast', `first message after subscribing: ${JSON.stringify(first)}`);
    assert.deepEqual(first.data, { t: 22 }, 'the last event only');

    const info = await ok(rest.get({ path: `/channels/${channel}`, params: { info: 'cache' } }),
      'GET cache-weather info=cache');
    assert.equal(info.body.occupied, true);
    assert.ok(info.body.cache, `cache present: ${JSON.stringify(info.body)}`);
    assert.equal(info.body.cache.data, '{"t":22}', 'cache.data is the cached data string');
    assert.ok(info.body.cache.ttl > 0 && info.body.cache.ttl <= 1800, `ttl ${info.body.cache.ttl}`);

    // The cache is filled even with nobody subscribed.
    const empty = 'cache-empty-room';
    await ok(rest.trigger(empty, 'hello', { first: true }), 'trigger to an empty cache channel');
    const emptyInfo = await ok(rest.get({ path: `/channels/${empty}`, params: { info: 'cache' } }),
      'GET cache-empty-room info=cache');
    assert.equal(emptyInfo.body.occupied, false);
    assert.equal(emptyInfo.body.cache && emptyInfo.body.cache.data, '{"first":true}', JSON.stringify(emptyInfo.body));
    const [firstEmpty] = await newSubscriber(0, empty, 'cache d');
    assert.equal(firstEmpty.event, 'hello', JSON.stringify(firstEmpty));
    assert.deepEqual(firstEmpty.data, { first: true });
  });

  describe('errors', () => {
    let sub;
    before(async () => {
      sub = await subscriber(clients, 1, 'err-ch');
    });

    /** Publishes a marker and waits for it, then checks only allowed events arrived. */
    async function onlyMarkerSince(count, marker) {
      await ok(rest.trigger('err-ch', marker, {}), `trigger ${marker}`);
      await got(sub.rec, marker, `${marker} on err-ch`);
      await delay(SETTLE_MS);
      assert.deepEqual(names(sub.rec).slice(count), [marker], 'nothing but the marker was delivered');
    }

    it('wrong secret → 401 {"error"} and nothing delivered; unknown key → 401', async () => {
      const before = names(sub.rec).length;
      const bad = restSdk(server.port, { secret: 'not-the-secret' });
      const r = await fails(bad.trigger('err-ch', 'forged', { x: 1 }), 'trigger with a wrong secret');
      assert.equal(r.status, 401, r.text);
      assert.equal(typeof r.body.error, 'string', r.text);
      const g = await fails(bad.get({ path: '/channels' }), 'GET /channels with a wrong secret');
      assert.equal(g.status, 401, g.text);
      const k = await signedRequest(server.port, 'GET', `${API}/channels`, { key: 'unknown-key' });
      assert.equal(k.status, 401, `unknown auth_key: ${k.text}`);
      await onlyMarkerSince(before, 'after-bad-secret');
    });

    it('a hand-signed request 700 s old (or ahead) → 401; the same request signed now → 200', async () => {
      const now = Math.floor(Date.now() / 1000);
      const fresh = await signedRequest(server.port, 'GET', `${API}/channels`,
        { params: { filter_by_prefix: 'err-' } });
      assert.equal(fresh.status, 200, `hand-signed control request: ${fresh.text}`);
      assert.deepEqual(fresh.body, { channels: { 'err-ch': {} } });
      const stale = await signedRequest(server.port, 'GET', `${API}/channels`,
        { params: { filter_by_prefix: 'err-' }, timestamp: now - 700 });
      assert.equal(stale.status, 401, `stale timestamp: ${stale.text}`);
      assert.equal(typeof stale.body.error, 'string');
      const ahead = await signedRequest(server.port, 'GET', `${API}/channels`, { timestamp: now + 700 });
      assert.equal(ahead.status, 401, `timestamp 700 s ahead: ${ahead.text}`);

      const before = names(sub.rec).length;
      const body = JSON.stringify({ name: 'stale-event', channel: 'err-ch', data: '{}' });
      const post = await signedRequest(server.port, 'POST', `${API}/events`, { body, timestamp: now - 700 });
      assert.equal(post.status, 401, `stale POST: ${post.text}`);
      await onlyMarkerSince(before, 'after-stale');
    });

    it('a body_md5 that does not match the body → 401 and nothing delivered', async () => {
      const before = names(sub.rec).length;
      const body = JSON.stringify({ name: 'md5-event', channel: 'err-ch', data: '{"v":1}' });
      const wrong = await signedRequest(server.port, 'POST', `${API}/events`,
        { body, bodyMd5: md5(JSON.stringify({ name: 'md5-event', channel: 'err-ch', data: '{"v":2}' })) });
      assert.equal(wrong.status, 401, `wrong body_md5: ${wrong.text}`);
      assert.equal(typeof wrong.body.error, 'string');
      await onlyMarkerSince(before, 'after-md5');

      const right = await signedRequest(server.port, 'POST', `${API}/events`, { body });
      assert.equal(right.status, 200, `correct body_md5 (control): ${right.text}`);
      assert.deepEqual(await got(sub.rec, 'md5-event'), { v: 1 });
    });

    it('unknown app id → 404', async () => {
      const other = restSdk(server.port, { appId: '99999' });
      const t = await fails(other.trigger('err-ch', 'wrong-app', {}), 'trigger to app 99999');
      assert.equal(t.status, 404, t.text);
      const g = await fails(other.get({ path: '/channels' }), 'GET /apps/99999/channels');
      assert.equal(g.status, 404, g.text);
    });

    it('info=user_count on /channels without a presence- prefix → 400', async () => {
      for (const params of [{ info: 'user_count' }, { filter_by_prefix: 'private-', info: 'user_count' }]) {
        const r = await fails(rest.get({ path: '/channels', params }), `GET /channels ${JSON.stringify(params)}`);
        assert.equal(r.status, 400, `${JSON.stringify(params)}: ${r.text}`);
        assert.equal(typeof r.body.error, 'string');
      }
      await ok(rest.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } }),
        'the same with a presence- prefix (control)');
    });
  });
});

describe('REST payload limit (--app-max-event-payload-in-kb 1)', () => {
  let server;
  let clients;
  let rest;

  before(async () => {
    server = await startServer(['--app-max-event-payload-in-kb', '1']);
    clients = new Clients(server.port);
    rest = restSdk(server.port);
  });

  after(async () => {
    if (clients) clients.closeAll();
    if (server) await server.kill();
  });

  it('an oversized payload → 413 (trigger and batch) and nothing is delivered; a smaller one passes', async () => {
    const a = await subscriber(clients, 0, 'limited');
    const b = await subscriber(clients, 1, 'limited');
    const big = 'x'.repeat(2000);
    const t = await fails(rest.trigger('limited', 'too-big', big), 'trigger 2000 bytes');
    assert.equal(t.status, 413, t.text);
    assert.equal(typeof t.body.error, 'string', t.text);
    const m = await fails(rest.trigger(['limited', 'limited-2'], 'too-big-multi', big), 'trigger 2000 bytes to 2 channels');
    assert.equal(m.status, 413, m.text);
    const bt = await fails(rest.triggerBatch([
      { channel: 'limited', name: 'small-in-bad-batch', data: 'ok' },
      { channel: 'limited', name: 'too-big-in-batch', data: big },
    ]), 'triggerBatch with one oversized event');
    assert.equal(bt.status, 413, bt.text);

    const fits = 'y'.repeat(900);
    await ok(rest.trigger('limited', 'fits', fits), 'trigger 900 bytes');
    assert.equal(await got(a.rec, 'fits', 'fits on shard 0'), fits);
    assert.equal(await got(b.rec, 'fits', 'fits on shard 1'), fits);
    await delay(SETTLE_MS);
    assert.deepEqual(names(a.rec), ['fits'], 'nothing from the refused requests (shard 0)');
    assert.deepEqual(names(b.rec), ['fits'], 'nothing from the refused requests (shard 1)');
  });
});
