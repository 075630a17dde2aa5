'use strict';
// Run by test/17-tls.test.js in its own node process, so that NODE_EXTRA_CA_CERTS (read once,
// at start) can name the test's throwaway CA, as a deployment with a private CA would.
//
//   node lib/tls_child.js PORT CHANNEL both   pusher-js (forceTLS) subscribes, the pusher SDK
//                                             (useTLS) triggers on the same port
//   node lib/tls_child.js PORT CHANNEL sdk    the SDK alone (the test runs it without the CA)
//
// Prints one JSON line with what happened, and exits 0 (failures are reported in the JSON).
const PusherClient = require('pusher-js');
const PusherServer = require('pusher');
const { APP, withTimeout } = require('./server');

const [portText, channelName, mode] = process.argv.slice(2);
const port = Number(portText);

function sdk() {
  return new PusherServer({
    appId: APP.appId, key: APP.key, secret: APP.secret,
    host: '127.0.0.1', port: String(port), useTLS: true, timeout: 5000,
  });
}

async function sdkOnly() {
  try {
    const res = await sdk().trigger(channelName, 'nobody', {});
    return { triggered: res.status };
  } catch (e) {
    const cause = e && e.error ? (e.error.code || e.error.message) : '';
    return { error: `${e && e.message} ${cause}` };
  }
}

async function both() {
  const client = new PusherClient(APP.key, {
    wsHost: '127.0.0.1', wsPort: port, wssPort: port, forceTLS: true,
    enabledTransports: ['ws'], cluster: 'mt1', disableStats: true,
  });
  const errors = [];
  client.connection.bind('error', (e) => errors.push(JSON.stringify(e)));
  try {
    await withTimeout(new Promise((resolve) => client.connection.bind('connected', resolve)),
      10000, `pusher-js did not connect over TLS: ${errors.join('; ')}`);
    const channel = client.subscribe(channelName);
    await withTimeout(new Promise((resolve, reject) => {
      channel.bind('pusher:subscription_succeeded', resolve);
      channel.bind('pusher:subscription_error', (e) => reject(new Error(JSON.stringify(e))));
    }), 5000, `no subscription_succeeded on ${channelName}`);
    const received = new Promise((resolve) => channel.bind('tls-event', resolve));
    const server = sdk();
    const triggered = await server.trigger(channelName, 'tls-event', { over: 'tls', n: 7 });
    const data = await withTimeout(received, 5000, 'the triggered event did not arrive');
    const info = await server.get({ path: `/channels/${channelName}`,
      params: { info: 'subscription_count' } });
    // The WebSocket under pusher-js (pusher-js / faye internals): its URL and its TLS socket.
    const socket = client.connection.connection.transport.socket;
    const stream = socket._stream;
    return {
      socketId: client.connection.socket_id,
      url: socket.url,
      encrypted: Boolean(stream && stream.encrypted),
      peerCN: stream && stream.getPeerCertificate().subject.CN,
      triggered: triggered.status,
      data,
      info: { status: info.status, body: JSON.parse(await info.text()) },
    };
  } catch (e) {
    return { error: e.message, errors };
  } finally {
    client.disconnect();
  }
}

(mode === 'sdk' ? sdkOnly() : both()).then((result) => {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
});
