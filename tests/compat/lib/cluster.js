'use strict';
// A real redis-server on a free port and several ringcast nodes linked through it (each node
// starts and supervises its own bridge), for the multi-node tests.
const { spawn } = require('node:child_process');
const net = require('node:net');
const { startServer, httpGet, delay } = require('./server');

/** A free loopback TCP port (bound, read, released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Resolves true when something on `port` answers PING with +PONG. */
function pings(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** Starts redis-server on `port` (a free one by default); resolves {port, stop()}. */
async function startRedis(port) {
  const p = port || await freePort();
  const child = spawn('redis-server',
    ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' });
  const failed = new Promise((_, reject) => child.on('error', (e) => reject(new Error(
    `cannot start redis-server (${e.message}): install it (Debian: apt-get install redis-server)`))));
  const deadline = Date.now() + 10000;
  for (;;) {
    // eslint-disable-next-line no-await-in-loop
    const up = await Promise.race([pings(p), failed]);
    if (up) break;
    if (Date.now() > deadline) throw new Error(`redis-server on ${p} did not start`);
    // eslint-disable-next-line no-await-in-loop
    await delay(20);
  }
  return {
    port: p,
    url: `127.0.0.1:${p}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Resolves once every shard of the node on `port` has linked to its bridge. */
async function waitLinked(port, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    // eslint-disable-next-line no-await-in-loop
    const { body } = await httpGet(port, '/metrics');
    const counts = body.split('\n')
      .filter((l) => l.startsWith('ringcast_bridge_link_connects_total{'))
      .map((l) => Number(l.split(' ').pop()));
    if (counts.length > 0 && counts.every((c) => c >= 1)) return;
    if (Date.now() > deadline) throw new Error(`node on ${port} did not link to its bridge`);
    // eslint-disable-next-line no-await-in-loop
    await delay(50);
  }
}

/** Starts `count` nodes on one Redis under one prefix; resolves the started servers. */
async function startNodes(redis, count, extraArgs = []) {
  const prefix = `compat${process.pid}${Date.now() % 100000}`;
  const nodes = [];
  for (let i = 0; i < count; i += 1) {
    // eslint-disable-next-line no-await-in-loop
    const node = await startServer(['--adapter-driver', 'redis', '--redis-url', redis.url,
      '--redis-prefix', prefix, ...extraArgs]);
    nodes.push(node);
  }
  await Promise.all(nodes.map((n) => waitLinked(n.port)));
  return nodes;
}

module.exports = { startRedis, startNodes, waitLinked, freePort };
