'use strict';
// Two nodes on one real redis-server whose app tables differ, as in a rolling change that adds
// an app: node A knows the test app and a second app with webhooks, node B only the test app.
// Every webhook event of the second app must reach its receiver exactly once — node B, which
// does not know that app, must never take (and settle or drop) one of its events: not from the
// Redis queue (`--queue-driver redis`) and not from the delayed leaves (both queue drivers).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const PusherClient = require('pusher-js');
const { startServer, withTimeout, delay } = require('../lib/server');
const { Clients, connectOptions } = require('../lib/clients');
const { startRedis, waitLinked } = require('../lib/cluster');
const { WebhookReceiver } = require('../lib/webhook_receiver');

const LEAVE_DELAY_MS = 3000;
const CHANNELS = 12;
const OTHER = Object.freeze({ appId: '777', key: 'other-key', secret: 'other-secret' });
const named = (name, channel) => (e) => e.name === name && e.channel === channel;
const onPath = (p, name) => (e) => e.path === p && e.name === name;

/** A pusher-js client of the second app, on `port`. */
function otherAppClient(port) {
  return new PusherClient(OTHER.key, connectOptions(port));
}

/** Subscribes `pusher` to `name`; resolves once the server confirmed it. */
function subscribed(pusher, name) {
  return withTimeout(new Promise((resolve) => {
    pusher.subscribe(name).bind('pusher:subscription_succeeded', () => resolve());
  }), 10000, `subscription to ${name}`);
}

for (const queueArgs of [['--queue-driver', 'redis'], []]) {
  const driver = queueArgs.length ? 'the Redis queue' : 'the local queue';
  describe(`webhooks of an app only one node knows, with ${driver}`, () => {
    let redis;
    let nodes = [];
    let configDir;
    let baseClients;
    const receiver = new WebhookReceiver({ apps: [{ key: OTHER.key, secret: OTHER.secret }] });

    before(async () => {
      await receiver.start();
      redis = await startRedis();
      const events = ['channel_occupied', 'channel_vacated'];
      configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-apps-'));
      const config = path.join(configDir, 'apps.json');
      fs.writeFileSync(config, JSON.stringify({
        applications: [{
          app_id: OTHER.appId,
          app_key: OTHER.key,
          app_secret: OTHER.secret,
          app_webhooks: [{ url: receiver.url('/other'), event_types: events }],
        }],
      }));
      const prefix = `apps${process.pid}${queueArgs.length}`;
      const common = ['--adapter-driver', 'redis', '--redis-url', redis.url, '--redis-prefix',
        prefix, ...queueArgs,
        '--app-webhooks', JSON.stringify([{ url: receiver.url('/base'), event_types: events }])];
      nodes = [
        await startServer([...common, '--config-file', config]), // A: both apps
        await startServer(common), // B: the test app only
      ];
      await Promise.all(nodes.map((n) => waitLinked(n.port)));
      baseClients = new Clients(nodes[1].port);
    });

    after(async () => {
      if (baseClients) baseClients.closeAll();
      await Promise.all(nodes.map((n) => n.kill()));
      if (redis) await redis.stop();
      await receiver.stop();
      if (configDir) fs.rmSync(configDir, { recursive: true, force: true });
    });

    it('every event reaches the receiver once, although the other node takes events too', async () => {
      // Node B sends the test app's webhooks meanwhile: it reads the queue and takes leaves.
      const base = await baseClients.connect({ name: 'base@B' });
      await base.subscribe('base-channel');
      await receiver.waitFor(onPath('/base', 'channel_occupied'), 1, 'the test app on node B');

      const other = otherAppClient(nodes[0].port);
      try {
        const names = Array.from({ length: CHANNELS }, (_, i) => `other-${i}`);
        await Promise.all(names.map((name) => subscribed(other, name)));
        await receiver.waitFor(onPath('/other', 'channel_occupied'), CHANNELS, 'occupied', 20000);
        // Spread over more than the due tasks' polls, so both nodes' polls find leaves due.
        for (const name of names) {
          other.unsubscribe(name);
          await delay(300); // eslint-disable-line no-await-in-loop
        }
        await receiver.waitFor(onPath('/other', 'channel_vacated'), CHANNELS, 'vacated',
          LEAVE_DELAY_MS + 20000);
        // A last leave of the test app on B, once due, shows every earlier due leave was taken.
        base.pusher.unsubscribe('base-channel');
        await receiver.waitFor(onPath('/base', 'channel_vacated'), 1, 'the test app vacated',
          LEAVE_DELAY_MS + 20000);
        for (const name of names) {
          for (const kind of ['channel_occupied', 'channel_vacated']) {
            const got = receiver.accepted((e) => e.path === '/other' && named(kind, name)(e));
            assert.equal(got.length, 1, `${kind} of ${name}: exactly once (got ${got.length})`);
          }
        }
        assert.equal(receiver.accepted((e) => e.path === '/base' && e.channel.startsWith('other-'))
          .length, 0, "the second app's events never go to the test app's webhook");
      } finally {
        other.disconnect();
      }
    });
  });
}
