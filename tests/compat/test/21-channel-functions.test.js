'use strict';
// Channel functions (Ekko's "functions") on ringcast, with a real HTTP function server: a
// publish to a channel whose app associates functions with it (from a Socket.IO `publish`, the
// official `pusher` SDK's REST trigger, or a pusher-js client event) runs through those
// functions in order and its result reaches every subscriber, in every dialect; a channel's
// messages keep their order; a failing function delivers the original and tells the admin room;
// `PUT /associations` with a token signed by the server secret replaces the associations on
// every shard and every node; bad files stop the start; a flood to a slow function is bounded.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const jwt = require('jsonwebtoken');
const { startServer, delay, httpGet, APP } = require('../lib/server');
const { Clients } = require('../lib/clients');
const { restSdk, request, eventually } = require('../lib/rest');
const { startRedis, startNodes, waitLinked, freePort } = require('../lib/cluster');
const { EkkoClient } = require('../lib/socketio');
const { FunctionServer } = require('../lib/function_server');

const OK = { ok: true };
const JWT_SECRET = 'functions-server-secret';
const SETTLE_MS = 400;
const WAIT_MS = 8000; // a /slow call times out after 2 s; connect retries fit in that too

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-functions-'));

/** An associations document for the test app (and `others`, more apps' lists). */
function documentOf(channels, others = {}) {
  return { applications: { [APP.appId]: { channels }, ...others } };
}

const assoc = (channelName, ...functionNames) => ({ channelName, functionNames });

/** The associations the main server starts with (--associations-file). */
const START_DOCUMENT = documentOf([
  assoc('pipe', 'upper', 'exclaim'),
  assoc('rest', 'upper'),
  assoc('private-cev', 'upper'),
  assoc('order', 'jitter'),
  assoc('halfway', 'upper', 'fail'),
  assoc('fail', 'fail'),
  assoc('bad', 'bad'),
  assoc('slow', 'slow'),
  assoc('gone', 'gone'),
  assoc('keep-empty', 'empty'),
  assoc('keep-null', 'null'),
  assoc('keep-mid', 'upper', 'null', 'empty', 'exclaim'),
  assoc('news', 'upper'),
  assoc('multi-a', 'exclaim'),
  assoc('multi', 'upper'),
  assoc('room-[0-9]+$', 'upper'),
], {
  // Another app's association never applies to this app's channels.
  'other-app': { channels: [assoc('plain', 'upper')] },
});

function writeJson(name, value) {
  const file = path.join(TMP, name);
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
}

/** The options naming the functions (and `gone`, a port nobody listens on) and the secret. */
async function functionArgs(functions) {
  const gone = `http://127.0.0.1:${await freePort()}/gone`;
  return ['--channel-functions', functions.channelFunctions({ gone }), '--jwt-secret', JWT_SECRET];
}

/** A PUT /associations body carrying `document` signed with `secret` (HS256 unless told). */
function updateBody(document, { secret = JWT_SECRET, algorithm = 'HS256' } = {}) {
  return JSON.stringify({ token: jwt.sign(document, secret, { algorithm }) });
}

const putAssociations = (port, body) => request(port, 'PUT', '/associations', body);

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

/** The `function_error` statuses an admin client got for `channel`. */
const functionErrors = (admin, channel) => admin.received('status')
  .filter((s) => s.event === 'function_error' && s.channel === channel);

describe('channel functions on one node (two shards)', () => {
  let server;
  let clients;
  const functions = new FunctionServer();
  const ekko = [];
  let admin;
  const make = async (opts) => {
    const client = await EkkoClient.connect(server.port, opts);
    ekko.push(client);
    return client;
  };
  /** A Socket.IO subscriber and a pusher-js subscriber of `channel`, recording. */
  const subscribers = async (channel, uuid) => {
    const sio = await make({ uuid });
    assert.deepEqual(await sio.subscribe([channel]), OK);
    const pusherClient = await clients.connect({ name: `pusher-js ${uuid}` });
    const seen = pusherClient.record(await pusherClient.subscribe(channel));
    return { sio, pusherClient, seen };
  };

  before(async () => {
    await functions.start();
    const file = writeJson('start.json', START_DOCUMENT);
    server = await startServer([...await functionArgs(functions), '--associations-file', file,
      '--app-enable-client-messages', 'true']);
    await waitLinked(server.port); // the bridge, which calls the functions, started by itself
    clients = new Clients(server.port);
    admin = await make({ uuid: 'boss', admin: true });
  });

  after(async () => {
    for (const client of ekko) client.close();
    if (clients) clients.closeAll();
    if (server) await server.kill();
    await functions.stop();
  });

  it('runs a Socket.IO publish through two functions to Socket.IO and pusher-js subscribers', async () => {
    const { sio, seen } = await subscribers('pipe-1', 'sub1');
    const publisher = await make({ uuid: 'pub1' });
    const payload = { channel: 'pipe-1', message: { text: 'hello pipe', n: 1 }, uuid: 'pub1', extra: 'kept' };
    assert.deepEqual(await publisher.call('publish', payload), OK);

    const transformed = { ...payload, message: { text: 'HELLO PIPE!', n: 1 } };
    assert.deepEqual(await sio.first('message', (m) => m.channel === 'pipe-1', 'the transformed publish', WAIT_MS),
      transformed);
    const got = await seen.first((e) => e.event === 'message', 'the publish on pusher-js', WAIT_MS);
    assert.deepEqual(got.data, { text: 'HELLO PIPE!', n: 1 });

    // Each function got a POST of JSON: the first the message as sent, the second its result.
    const upperCalls = functions.withMarker('hello pipe', '/upper');
    const exclaimCalls = functions.withMarker('HELLO PIPE', '/exclaim');
    assert.equal(upperCalls.length, 1, 'upper called once');
    assert.equal(exclaimCalls.length, 1, 'exclaim called once');
    for (const call of [...upperCalls, ...exclaimCalls]) {
      assert.equal(call.method, 'POST');
      assert.match(call.headers['content-type'], /^application\/json\b/);
    }
    assert.deepEqual(JSON.parse(upperCalls[0].body), { text: 'hello pipe', n: 1 });
    assert.deepEqual(JSON.parse(exclaimCalls[0].body), { text: 'HELLO PIPE', n: 1 });

    await delay(SETTLE_MS);
    assert.equal(sio.received('message').length, 1, 'delivered once');
    assert.equal(seen.filter((e) => e.event === 'message').length, 1, 'delivered once to pusher-js');
    assert.deepEqual(publisher.received('message'), [], 'the publisher did not subscribe');
  });

  it('runs a Pusher REST trigger (the pusher SDK) through a function to pusher-js and Socket.IO', async () => {
    const { sio, seen } = await subscribers('rest-1', 'sub2');
    const sdk = restSdk(server.port);

    // A string: the SDK sends it as the data; the function gets it as a JSON string.
    await sdk.trigger('rest-1', 'greet', 'hello rest');
    assert.deepEqual(await sio.first('message', (m) => m.event === 'greet', 'the REST trigger on Socket.IO', WAIT_MS),
      { channel: 'rest-1', message: 'HELLO REST', event: 'greet' });
    const greet = await seen.first((e) => e.event === 'greet', 'the REST trigger on pusher-js', WAIT_MS);
    assert.equal(greet.data, 'HELLO REST');
    const [call] = functions.withMarker('hello rest', '/upper');
    assert.equal(call.body, '"hello rest"');
    assert.match(call.headers['content-type'], /^application\/json\b/);

    // An object: the SDK JSON-encodes it, so the function gets a JSON string holding JSON.
    await sdk.trigger('rest-1', 'obj', { text: 'rest object' });
    const fromObj = await sio.first('message', (m) => m.event === 'obj', 'the object trigger on Socket.IO', WAIT_MS);
    const [objCall] = functions.withMarker('rest object', '/upper');
    assert.ok(objCall, 'upper got the object trigger');
    assert.equal(JSON.parse(objCall.body), JSON.stringify({ text: 'rest object' }));
    assert.deepEqual(fromObj, { channel: 'rest-1', message: '{"TEXT":"REST OBJECT"}', event: 'obj' });
    const objEvent = await seen.first((e) => e.event === 'obj', 'the object trigger on pusher-js', WAIT_MS);
    // pusher-js parses a data string that is JSON.
    assert.deepEqual(objEvent.data, { TEXT: 'REST OBJECT' });
  });

  it('runs a pusher-js client event through a function, to the other subscribers only', async () => {
    const sender = await clients.connect({ name: 'cev sender' });
    const receiver = await clients.connect({ name: 'cev receiver' });
    const senderChannel = await sender.subscribe('private-cev-1');
    const seenBySender = sender.record(senderChannel);
    const seen = receiver.record(await receiver.subscribe('private-cev-1'));
    assert.equal(senderChannel.trigger('client-note', { text: 'psst' }), true);
    const got = await seen.first((e) => e.event === 'client-note', 'the client event', WAIT_MS);
    assert.deepEqual(got.data, { text: 'PSST' });
    const [call] = functions.withMarker('psst', '/upper');
    assert.deepEqual(JSON.parse(call.body), { text: 'psst' });
    await delay(SETTLE_MS);
    assert.equal(seenBySender.filter((e) => e.event === 'client-note').length, 0, 'never back to the sender');
    assert.equal(seen.filter((e) => e.event === 'client-note').length, 1, 'delivered once');
  });

  it('keeps one channel\'s order through a function answering with random delays', async () => {
    const COUNT = 30;
    const { sio, seen } = await subscribers('order-1', 'sub3');
    const publisher = await make({ uuid: 'pub3' });
    assert.deepEqual(await publisher.subscribe(['order-1']), OK);
    const acks = [];
    for (let n = 0; n < COUNT; n += 1) acks.push(publisher.publish('order-1', { text: `o${n}`, n }));
    for (const ack of await Promise.all(acks)) assert.deepEqual(ack, OK);

    const expected = Array.from({ length: COUNT }, (_, n) => ({ text: `O${n}`, n }));
    for (const client of [sio, publisher]) {
      await client.events.until((xs) => xs.filter((e) => e.name === 'message').length >= COUNT,
        `${client.uuid}: ${COUNT} messages`, 15000);
      assert.deepEqual(client.received('message').map((m) => m.message), expected, `${client.uuid}: in order`);
    }
    await seen.until((xs) => xs.filter((e) => e.event === 'message').length >= COUNT,
      `pusher-js: ${COUNT} messages`, 15000);
    assert.deepEqual(seen.filter((e) => e.event === 'message').map((e) => e.data), expected, 'pusher-js: in order');
    assert.deepEqual(functions.jitterInputs.map((v) => v.n), expected.map((v) => v.n),
      'the function got them one after another, in order');
  });

  it('delivers the original and tells the admin room when a function fails, answers junk or times out', async () => {
    const failedBefore = await metric(server.port, 'ringcast_function_pipelines_failed_total');
    const cases = [
      { channel: 'fail-1', error: /function "fail" answered 500/ },
      { channel: 'bad-1', error: /function "bad" answered with invalid JSON/ },
      { channel: 'slow-1', error: /function "slow" timed out/ },
      { channel: 'gone-1', error: /function "gone"/ }, // connection refused
      { channel: 'halfway-1', error: /function "fail" answered 500/ }, // upper ran, then fail
    ];
    const publisher = await make({ uuid: 'pub4' });
    const subs = [];
    for (const c of cases) subs.push(await subscribers(c.channel, `sub4-${c.channel}`));
    await Promise.all(cases.map((c) => publisher.publish(c.channel, { text: `original ${c.channel}` })));

    await Promise.all(cases.map(async (c, i) => {
      const { sio, seen } = subs[i];
      const original = { text: `original ${c.channel}` };
      const got = await sio.first('message', (m) => m.channel === c.channel, `${c.channel}: the message`, WAIT_MS);
      assert.deepEqual(got, { channel: c.channel, message: original, uuid: 'pub4' }, `${c.channel}: unchanged`);
      const onPusher = await seen.first((e) => e.event === 'message', `${c.channel} on pusher-js`, WAIT_MS);
      assert.deepEqual(onPusher.data, original, `${c.channel}: unchanged on pusher-js`);
      const status = await admin.first('status', (s) => s.event === 'function_error' && s.channel === c.channel,
        `the admin's function_error for ${c.channel}`, WAIT_MS);
      assert.deepEqual(Object.keys(status).sort(), ['app', 'channel', 'error', 'event', 'uuid']);
      assert.equal(status.uuid, null);
      assert.equal(status.app, APP.appId);
      assert.match(status.error, c.error, `${c.channel}: ${status.error}`);
    }));
    // The function was really called (and, for halfway, upper before it).
    assert.equal(functions.withMarker('original fail-1', '/fail').length, 1);
    assert.equal(functions.withMarker('original bad-1', '/bad').length, 1);
    assert.equal(functions.withMarker('original slow-1', '/slow').length, 1);
    assert.equal(functions.withMarker('original halfway-1', '/upper').length, 1);
    assert.equal(functions.withMarker('ORIGINAL HALFWAY-1', '/fail').length, 1);
    // Non-admin clients never hear about it.
    assert.equal(subs[0].sio.received('status').length, 0);
    assert.ok(await metric(server.port, 'ringcast_function_pipelines_failed_total') >= failedBefore + cases.length);
    await eventually(() => metric(server.port, 'ringcast_bridge_function_pipelines_failed_total'),
      (v) => v >= cases.length, 'the bridge counting the failed pipelines', 5000);
    await delay(SETTLE_MS);
    for (const [i, c] of cases.entries()) {
      assert.equal(subs[i].sio.received('message').length, 1, `${c.channel}: delivered once`);
      assert.equal(functionErrors(admin, c.channel).length, 1, `${c.channel}: one function_error`);
    }
  });

  it('keeps the message when a function answers an empty body or null', async () => {
    const cases = [
      { channel: 'keep-empty-1', message: 'kept by empty', expected: 'kept by empty' },
      { channel: 'keep-null-1', message: 'kept by null', expected: 'kept by null' },
      // upper, null, empty, exclaim: the two in the middle pass upper's result on.
      { channel: 'keep-mid-1', message: 'mid', expected: 'MID!' },
    ];
    const publisher = await make({ uuid: 'pub5' });
    const subs = [];
    for (const c of cases) subs.push(await subscribers(c.channel, `sub5-${c.channel}`));
    for (const c of cases) assert.deepEqual(await publisher.publish(c.channel, c.message), OK);
    for (const [i, c] of cases.entries()) {
      const got = await subs[i].sio.first('message', (m) => m.channel === c.channel, c.channel, WAIT_MS);
      assert.equal(got.message, c.expected, c.channel);
      const onPusher = await subs[i].seen.first((e) => e.event === 'message', `${c.channel} on pusher-js`, WAIT_MS);
      assert.equal(onPusher.data, c.expected, `${c.channel} on pusher-js`);
    }
    assert.equal(functions.withMarker('kept by empty', '/empty').length, 1, 'empty was called');
    assert.equal(functions.withMarker('kept by null', '/null').length, 1, 'null was called');
    assert.equal(functions.withMarker('"MID"', '/null').length, 1);
    assert.equal(functions.withMarker('"MID"', '/empty').length, 1);
    assert.equal(functions.withMarker('"MID"', '/exclaim').length, 1, 'exclaim got upper\'s result');
    await delay(SETTLE_MS);
    for (const c of cases) assert.equal(functionErrors(admin, c.channel).length, 0, `${c.channel}: not a failure`);
  });

  it('matches associations at the start of the channel name, first match wins, others untouched', async () => {
    const publisher = await make({ uuid: 'pub6' });
    const cases = [
      { channel: 'news-eu', message: 'news eu', expected: 'NEWS EU' }, // prefix
      { channel: 'eu-news', message: 'eu news', expected: 'eu news', called: false }, // not at the start
      { channel: 'multi-a1', message: 'multi a', expected: 'multi a!' }, // first of two matches
      { channel: 'multi-b', message: 'multi b', expected: 'MULTI B' }, // only the second
      { channel: 'room-12', message: 'room ok', expected: 'ROOM OK' }, // a regex
      { channel: 'room-12x', message: 'room no', expected: 'room no', called: false }, // its `$`
      { channel: 'plain-1', message: 'plain one', expected: 'plain one', called: false }, // other app's
    ];
    const subs = [];
    for (const c of cases) {
      const sio = await make({ uuid: `sub6-${c.channel}` });
      assert.deepEqual(await sio.subscribe([c.channel]), OK);
      subs.push(sio);
    }
    for (const c of cases) assert.deepEqual(await publisher.publish(c.channel, c.message), OK);
    for (const [i, c] of cases.entries()) {
      const got = await subs[i].first('message', (m) => m.channel === c.channel, c.channel, WAIT_MS);
      assert.deepEqual(got, { channel: c.channel, message: c.expected, uuid: 'pub6' }, c.channel);
    }
    // A REST trigger to a channel without functions is delivered unchanged too.
    const plainPusher = await clients.connect({ name: 'pusher-js plain' });
    const seen = plainPusher.record(await plainPusher.subscribe('plain-2'));
    await restSdk(server.port).trigger('plain-2', 'note', 'plain two');
    assert.equal((await seen.first((e) => e.event === 'note', 'the plain REST trigger', WAIT_MS)).data, 'plain two');

    await delay(SETTLE_MS);
    for (const c of cases.filter((x) => x.called === false)) {
      assert.deepEqual(functions.withMarker(c.message), [], `${c.channel}: no function called`);
    }
    assert.deepEqual(functions.withMarker('plain two'), [], 'plain-2: no function called');
    assert.equal(functions.withMarker('multi a', '/upper').length, 0, 'multi-a1: only the first match ran');
    assert.equal(functions.withMarker('multi a', '/exclaim').length, 1);
  });

  it('replaces the associations with PUT /associations and refuses bad tokens and documents', async () => {
    const port = server.port;
    const updatesBefore = await metric(port, 'ringcast_associations_updates_total');
    const refusedBefore = await metric(port, 'ringcast_associations_refused_total');
    const LATE = documentOf([assoc('late', 'exclaim')]);
    const publisher = await make({ uuid: 'pub7' });
    const sub = await make({ uuid: 'sub7' });
    assert.deepEqual(await sub.subscribe(['late-1', 'news-late']), OK);

    // Before: no association for late-1.
    await publisher.publish('late-1', 'before');
    assert.equal((await sub.first('message', (m) => m.channel === 'late-1', 'late-1 before', WAIT_MS)).message, 'before');

    // Refused: forged, HS384, expired, not {"token":…} → 400 Invalid JWT.
    const now = Math.floor(Date.now() / 1000);
    const invalidJwt = {
      forged: updateBody(LATE, { secret: 'not-the-secret' }),
      hs384: updateBody(LATE, { algorithm: 'HS384' }),
      expired: updateBody({ ...LATE, exp: now - 60 }),
      'no token': JSON.stringify({ jwt: jwt.sign(LATE, JWT_SECRET) }),
      'not json': 'not json',
      'token not a jwt': JSON.stringify({ token: 'a.b.c' }),
    };
    for (const [what, body] of Object.entries(invalidJwt)) {
      const res = await putAssociations(port, body);
      assert.deepEqual([res.status, res.text], [400, 'Invalid JWT'], what);
    }
    // A good token whose document is not: unknown function, invalid pattern → 400.
    const invalidDocuments = {
      'unknown function': documentOf([assoc('late', 'nope')]),
      'invalid regex': documentOf([assoc('late(', 'exclaim')]),
    };
    for (const [what, document] of Object.entries(invalidDocuments)) {
      const res = await putAssociations(port, updateBody(document));
      assert.equal(res.status, 400, what);
      assert.ok(res.text.startsWith('Invalid associations: '), `${what}: ${res.text}`);
    }
    // Other methods.
    for (const method of ['GET', 'POST', 'DELETE']) {
      const res = await request(port, method, '/associations', method === 'GET' ? undefined : updateBody(LATE));
      assert.equal(res.status, 405, method);
    }
    // Nothing changed yet.
    await publisher.publish('late-1', 'still before');
    assert.equal((await sub.first('message', (m) => m.message === 'still before' || m.message === 'still before!',
      'late-1 still before', WAIT_MS)).message, 'still before');

    // A good one (with iat, as jsonwebtoken signs) replaces every app's associations.
    const res = await putAssociations(port, updateBody(LATE));
    assert.deepEqual([res.status, res.text], [200, 'OK']);
    await delay(100); // the other shard gets them through its inbox
    // From several connections (the kernel spreads them over both shards) and REST.
    const publishers = [];
    for (let i = 0; i < 4; i += 1) publishers.push(await make({ uuid: `pub7-${i}` }));
    for (const [i, p] of publishers.entries()) await p.publish('late-1', `after ${i}`);
    await restSdk(port).trigger('late-1', 'rest', 'after rest');
    for (let i = 0; i < 4; i += 1) {
      const got = await sub.first('message', (m) => m.channel === 'late-1' && m.uuid === `pub7-${i}`, `after ${i}`, WAIT_MS);
      assert.equal(got.message, `after ${i}!`);
    }
    const fromRest = await sub.first('message', (m) => m.event === 'rest', 'the REST trigger after', WAIT_MS);
    assert.equal(fromRest.message, 'after rest!');
    // Replaced, not merged: news had upper, and now nothing.
    await publisher.publish('news-late', 'news after');
    assert.equal((await sub.first('message', (m) => m.channel === 'news-late', 'news-late', WAIT_MS)).message,
      'news after');

    assert.ok(await metric(port, 'ringcast_associations_updates_total') >= updatesBefore + 1, 'updates counted');
    assert.equal(await metric(port, 'ringcast_associations_refused_total'),
      refusedBefore + Object.keys(invalidJwt).length + Object.keys(invalidDocuments).length);
    assert.ok(await metric(port, 'ringcast_function_pipelines_total') > 0);
    await eventually(() => metric(port, 'ringcast_bridge_function_pipelines_done_total'),
      (v) => v > 0, 'the bridge counting done pipelines', 5000);
  });
});

describe('channel functions: refused starts and a server without a secret', () => {
  const functions = new FunctionServer();
  const servers = [];
  before(async () => { await functions.start(); });
  after(async () => {
    for (const s of servers) await s.kill();
    await functions.stop();
  });

  it('exits at start with an error naming an invalid --associations-file', async () => {
    const files = {
      'unknown function': writeJson('unknown.json', documentOf([assoc('x', 'upper', 'nope')])),
      'invalid regex': writeJson('regex.json', documentOf([assoc('x(', 'upper')])),
      'not json': writeJson('garbage.json', '{"applications":'),
      missing: path.join(TMP, 'missing.json'),
    };
    const args = await functionArgs(functions);
    for (const [what, file] of Object.entries(files)) {
      await assert.rejects(startServer([...args, '--associations-file', file]), (err) => {
        assert.match(err.message, /ringcast exited \(code [1-9]\d*, signal null\) before listening/, what);
        const stderr = err.message.split('\nstderr:\n')[1] || '';
        assert.ok(stderr.includes(file), `${what}: the error names the file; stderr:\n${stderr}`);
        if (what === 'unknown function') assert.match(stderr, /nope/, 'and the function');
        return true;
      }, what);
    }
  });

  it('answers PUT /associations 403 without a --jwt-secret', async () => {
    const server = await startServer(['--channel-functions', functions.channelFunctions()]);
    servers.push(server);
    const res = await putAssociations(server.port,
      updateBody(documentOf([assoc('x', 'upper')]), { secret: 'anything' }));
    assert.equal(res.status, 403);
  });
});

describe('channel functions across two nodes on one Redis', () => {
  let redis;
  let nodes = [];
  let clients = [];
  const functions = new FunctionServer();
  const ekko = [];
  const make = async (node, opts) => {
    const client = await EkkoClient.connect(nodes[node].port, opts);
    ekko.push(client);
    return client;
  };

  before(async () => {
    await functions.start();
    redis = await startRedis();
    nodes = await startNodes(redis, 2, await functionArgs(functions));
    clients = nodes.map((n) => new Clients(n.port));
  });

  after(async () => {
    for (const client of ekko) client.close();
    for (const c of clients) c.closeAll();
    await Promise.all(nodes.map((n) => n.kill()));
    if (redis) await redis.stop();
    await functions.stop();
  });

  it('applies a PUT /associations on node 0 on node 1, and runs a publish on node 1 once for node 0', async () => {
    const updatesBefore = await metric(nodes[1].port, 'ringcast_associations_updates_total');
    const res = await putAssociations(nodes[0].port, updateBody(documentOf([assoc('cl', 'upper', 'exclaim')])));
    assert.deepEqual([res.status, res.text], [200, 'OK']);
    await eventually(() => metric(nodes[1].port, 'ringcast_associations_updates_total'),
      (v) => v > updatesBefore, 'node 1 applying the associations from node 0', 10000);

    const near = await make(0, { uuid: 'near' });
    assert.deepEqual(await near.subscribe(['cl-1']), OK);
    const pusherClient = await clients[0].connect({ name: 'pusher-js@node0' });
    const seen = pusherClient.record(await pusherClient.subscribe('cl-1'));
    const far = await make(1, { uuid: 'far' });
    assert.deepEqual(await far.subscribe(['cl-1']), OK);
    await delay(SETTLE_MS);

    const payload = { channel: 'cl-1', message: { text: 'across' }, uuid: 'far', extra: [1] };
    assert.deepEqual(await far.call('publish', payload), OK);
    const transformed = { ...payload, message: { text: 'ACROSS!' } };
    assert.deepEqual(await far.first('message', () => true, 'node 1 (the publisher)', WAIT_MS), transformed);
    assert.deepEqual(await near.first('message', () => true, 'node 0 Socket.IO', WAIT_MS), transformed);
    const onPusher = await seen.first((e) => e.event === 'message', 'node 0 pusher-js', WAIT_MS);
    assert.deepEqual(onPusher.data, { text: 'ACROSS!' });

    // A REST trigger on node 0 runs there, and reaches node 1 transformed.
    await restSdk(nodes[0].port).trigger('cl-1', 'rest', 'from node 0');
    assert.equal((await far.first('message', (m) => m.event === 'rest', 'node 1: node 0\'s REST trigger', WAIT_MS))
      .message, 'FROM NODE 0!');

    await delay(SETTLE_MS);
    assert.equal(near.received('message').length, 2, 'node 0 Socket.IO: each once');
    assert.equal(far.received('message').length, 2, 'node 1 Socket.IO: each once');
    assert.equal(seen.filter((e) => e.event === 'message').length, 1, 'node 0 pusher-js: once');
    // The pipeline ran once per message, on the node it was published on.
    assert.equal(functions.withMarker('across', '/upper').length, 1);
    assert.equal(functions.withMarker('ACROSS', '/exclaim').length, 1);
    assert.equal(functions.withMarker('from node 0', '/upper').length, 1);
  });
});

describe('channel functions: a flood to a slow function', () => {
  let server;
  const functions = new FunctionServer();
  const ekko = [];
  const make = async (opts) => {
    const client = await EkkoClient.connect(server.port, opts);
    ekko.push(client);
    return client;
  };

  before(async () => {
    await functions.start();
    const file = writeJson('flood.json', documentOf([assoc('flood', 'slow'), assoc('quick', 'upper')]));
    server = await startServer([...await functionArgs(functions), '--associations-file', file]);
    await waitLinked(server.port);
  });

  after(async () => {
    for (const client of ekko) client.close();
    if (server) await server.kill();
    await functions.stop();
  });

  it('keeps serving other channels and delivers the flooded messages unchanged, in order', async () => {
    const COUNT = 500;
    const admin = await make({ uuid: 'boss', admin: true });
    const sub = await make({ uuid: 'sub' });
    assert.deepEqual(await sub.subscribe(['flood-1', 'free-1', 'quick-1']), OK);
    const publisher = await make({ uuid: 'flooder' });
    const acks = [];
    for (let n = 0; n < COUNT; n += 1) acks.push(publisher.publish('flood-1', { n }, {}));
    for (const ack of await Promise.all(acks)) assert.deepEqual(ack, OK);

    const ready = await httpGet(server.port, '/ready');
    assert.equal(ready.status, 200, `/ready: ${ready.body}`);
    // A channel without functions, and one with a quick function, are not held behind it.
    await publisher.publish('free-1', 'free');
    assert.equal((await sub.first('message', (m) => m.channel === 'free-1', 'the function-less publish', 10000))
      .message, 'free');
    await publisher.publish('quick-1', 'quick');
    assert.equal((await sub.first('message', (m) => m.channel === 'quick-1', 'the quick function\'s publish', 10000))
      .message, 'QUICK');

    // The first flooded messages come out unchanged (each after its call timed out), in order.
    await sub.events.until((xs) => xs.filter((e) => e.name === 'message' && e.args[0].channel === 'flood-1').length >= 2,
      'the first flooded messages', 10000);
    const flooded = sub.received('message').filter((m) => m.channel === 'flood-1').map((m) => m.message.n);
    assert.deepEqual(flooded, flooded.map((_, i) => i), 'in order, unchanged');
    const status = await admin.first('status', (s) => s.event === 'function_error' && s.channel === 'flood-1',
      'the admin hearing of the flood', 10000);
    assert.match(status.error, /function "slow"|waited too long|too many/);
    console.log(`# flood: ${functions.withMarker('"n"', '/slow').length} calls to /slow so far for ${COUNT} publishes`);
    await eventually(() => metric(server.port, 'ringcast_function_pipelines_total'),
      (v) => v >= COUNT, 'every flooded publish counted', 5000);

    assert.equal(server.exitStatus, null, `the server is still running; stderr:\n${server.stderr.slice(-2000)}`);
    assert.equal((await httpGet(server.port, '/ready')).status, 200);
  });
});
