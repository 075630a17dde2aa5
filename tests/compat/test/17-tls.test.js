'use strict';
// TLS on the client port (--tls-cert-file / --tls-key-file) with the official clients:
// pusher-js with forceTLS subscribes over wss and receives an event the pusher SDK triggers
// with useTLS on the same port. The certificate comes from a throwaway CA made with openssl;
// the clients run in a child node process whose NODE_EXTRA_CA_CERTS names that CA.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startServer, httpGet } = require('../lib/server');
const { SOCKET_ID_RE } = require('../lib/clients');

const CHILD = path.resolve(__dirname, '../lib/tls_child.js');

/** A CA and a certificate for 127.0.0.1 it signed, in a new temporary directory. */
function makePki() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-compat-tls-'));
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=compat-ca',
    '-keyout', 'ca.key', '-out', 'ca.crt');
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=ringcast-compat',
    '-keyout', 'server.key', '-out', 'server.csr');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key',
    '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.crt');
  return { dir, ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'server.crt'),
    key: path.join(dir, 'server.key') };
}

/** Runs lib/tls_child.js with `env`; resolves its JSON line. */
function child(env, args) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CHILD, ...args], { env, timeout: 30000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`tls_child ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      try {
        return resolve(JSON.parse(stdout.trim().split('\n').pop()));
      } catch (e) {
        return reject(new Error(`tls_child printed no JSON: ${stdout}\n${stderr}`));
      }
    });
  });
}

/** Sum over shards of a counter in the metrics text. */
function counter(metrics, name) {
  return metrics.split('\n').filter((l) => l.startsWith(`${name}{`))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

describe('TLS on the client port', () => {
  let pki;
  let server;
  let metricsPort;

  before(async () => {
    pki = makePki();
    // A free port for the (plain) metrics listener.
    const probe = require('node:net').createServer().listen(0, '127.0.0.1');
    await new Promise((r) => probe.once('listening', r));
    metricsPort = probe.address().port;
    await new Promise((r) => probe.close(r));
    server = await startServer(['--tls-cert-file', pki.cert, '--tls-key-file', pki.key,
      '--metrics-port', String(metricsPort)]);
  });

  after(async () => {
    if (server) await server.kill();
    if (pki) fs.rmSync(pki.dir, { recursive: true, force: true });
  });

  it('pusher-js with forceTLS receives an event triggered by the pusher SDK with useTLS', async () => {
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: pki.ca };
    const r = await child(env, [String(server.port), 'tls-news', 'both']);
    assert.equal(r.error, undefined, `${r.error} ${JSON.stringify(r.errors)}\n${server.stderr}`);
    assert.match(r.socketId, SOCKET_ID_RE);
    assert.ok(r.url.startsWith(`wss://127.0.0.1:${server.port}/app/${'app-key'}`), r.url);
    assert.equal(r.encrypted, true, 'the WebSocket runs over a TLS socket');
    assert.equal(r.peerCN, 'ringcast-compat', 'the server showed the configured certificate');
    assert.equal(r.triggered, 200);
    assert.deepEqual(r.data, { over: 'tls', n: 7 });
    assert.equal(r.info.status, 200);
    assert.equal(r.info.body.occupied, true, JSON.stringify(r.info.body));
    assert.equal(r.info.body.subscription_count, 1, JSON.stringify(r.info.body));
  });

  it('a client without the CA refuses the server (the test above did verify the certificate)', async () => {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const r = await child(env, [String(server.port), 'tls-news', 'sdk']);
    assert.equal(r.triggered, undefined, 'the SDK must not trust a certificate of an unknown CA');
    assert.match(r.error, /self[- ]signed|unable to (get|verify)|UNABLE_TO|certificate/i, r.error);
    // Node checks the certificate after the handshake and then closes: for the server that is
    // a finished handshake, so nothing is counted; the node keeps serving.
    const metrics = (await httpGet(metricsPort, '/metrics')).body;
    assert.equal(counter(metrics, 'ringcast_tls_handshake_failures_total'), 0, metrics);
  });
});
