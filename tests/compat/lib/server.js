'use strict';
// Starts and stops the real ringcast binary for one test file.
const { spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');
const fs = require('node:fs');

const COMPAT_DIR = path.resolve(__dirname, '..');
const BIN = path.resolve(COMPAT_DIR, process.env.RINGCAST_BIN || '../../target/debug/ringcast');

const APP = Object.freeze({ appId: '12345', key: 'app-key', secret: 'app-secret' });
const BASE_ARGS = [
  '--port', '0', '--bind-address', '127.0.0.1', '--shards', '2',
  '--app-id', APP.appId, '--app-key', APP.key, '--app-secret', APP.secret,
];

const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try { child.kill('SIGKILL'); } catch (_) { /* already gone */ }
  }
});

/**
 * Start ringcast with the base flags plus `extraArgs`. Resolves once stderr shows
 * `listening on 127.0.0.1:PORT`.
 */
async function startServer(extraArgs = [], { startTimeoutMs = 15000 } = {}) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`ringcast binary not found at ${BIN}: build it with ` +
      '`cargo build -p ringcast` or set RINGCAST_BIN');
  }
  const args = [...BASE_ARGS, ...extraArgs];
  // No RUST_LOG override: the default `info` level logs the listening line.
  const child = spawn(BIN, args, {
    cwd: COMPAT_DIR, // no ./.env in here
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  running.add(child);
  let stderr = '';
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ringcast did not log "listening on 127.0.0.1:PORT" within ` +
        `${startTimeoutMs} ms; args: ${args.join(' ')}\nstderr:\n${stderr}`));
    }, startTimeoutMs);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`ringcast exited (code ${code}, signal ${signal}) before listening; ` +
        `args: ${args.join(' ')}\nstderr:\n${stderr}`));
    });
  });
  if (port === 0) throw new Error(`ringcast reported port 0:\n${stderr}`);

  const server = {
    port,
    args,
    child,
    exited,
    get stderr() { return stderr; },
    /** Exit status, or null while running. */
    get exitStatus() {
      return child.exitCode === null && child.signalCode === null
        ? null : { code: child.exitCode, signal: child.signalCode };
    },
    /** Hard stop for after() hooks. */
    async kill() {
      if (server.exitStatus === null) child.kill('SIGKILL');
      await withTimeout(exited, 5000, 'ringcast did not die after SIGKILL');
    },
    /** Resolves with {code, signal} or rejects after `ms`. */
    waitExit(ms, what = 'ringcast to exit') {
      return withTimeout(exited, ms, `timed out after ${ms} ms waiting for ${what}`);
    },
  };
  return server;
}

/** Reject with `message` if `promise` does not settle within `ms`. */
function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** One HTTP GET; resolves {status, body} or rejects on a socket error or timeout. */
function httpGet(port, urlPath, { timeoutMs = 3000, agent } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: agent || false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
  });
}

module.exports = { startServer, withTimeout, delay, httpGet, APP, BIN };
