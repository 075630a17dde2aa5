'use strict';
// A real HTTP server of channel functions, as an app's backend would run them: each path is a
// function that takes a message's JSON (POST) and answers the next message. It records every
// request (path, method, lower-case headers, raw body) so a test can check what a function got.
//
//   /upper    upper-cases a JSON string, or the `text` member of an object
//   /exclaim  appends "!" to a JSON string, or to the `text` member of an object
//   /jitter   as /upper, after a random 0–40 ms; `jitterInputs` keeps its inputs in arrival order
//   /fail     500
//   /bad      200 with `{not json`
//   /slow     answers (as /upper) after 3000 ms, past the server's 2000 ms per call
//   /empty    200 with an empty body (keep the message)
//   /null     200 `null` (keep the message)
const http = require('node:http');
const { Recorder } = require('./clients');

const SLOW_MS = 3000;

function transform(value, fn) {
  if (typeof value === 'string') return fn(value);
  if (value && typeof value === 'object' && !Array.isArray(value) && typeof value.text === 'string') {
    return { ...value, text: fn(value.text) };
  }
  return value;
}

const upper = (v) => transform(v, (s) => s.toUpperCase());
const exclaim = (v) => transform(v, (s) => `${s}!`);

class FunctionServer {
  constructor() {
    this.requests = new Recorder('function requests'); // {path, method, headers, body}
    this.jitterInputs = [];
    this.timers = new Set();
    this.server = null;
    this.port = 0;
  }

  async start() {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = this.server.address().port;
    return this;
  }

  url(path) { return `http://127.0.0.1:${this.port}${path}`; }

  /** The `--channel-functions` value naming every endpoint (plus `extra` name=url pairs). */
  channelFunctions(extra = {}) {
    const names = ['upper', 'exclaim', 'jitter', 'fail', 'bad', 'slow', 'empty', 'null'];
    const pairs = names.map((n) => `${n}=${this.url(`/${n}`)}`);
    for (const [name, url] of Object.entries(extra)) pairs.push(`${name}=${url}`);
    return pairs.join(',');
  }

  async stop() {
    if (!this.server) return;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const server = this.server;
    this.server = null;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(() => resolve()));
  }

  later(ms, fn) {
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
    t.unref();
    this.timers.add(t);
  }

  /** Requests whose raw body contains `marker` (optionally to `path`). */
  withMarker(marker, path) {
    return this.requests.filter((r) => r.body.includes(marker) && (!path || r.path === path));
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = req.url.split('?')[0];
      this.requests.push({ path, method: req.method, headers: req.headers, body });
      const send = (status, text) => {
        if (res.destroyed || res.writableEnded) return;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(text);
      };
      let value;
      try { value = JSON.parse(body); } catch (_) {
        send(422, JSON.stringify({ error: 'the function got a body that is not JSON' }));
        return;
      }
      switch (path) {
        case '/upper': send(200, JSON.stringify(upper(value))); break;
        case '/exclaim': send(200, JSON.stringify(exclaim(value))); break;
        case '/jitter':
          this.jitterInputs.push(value);
          this.later(Math.floor(Math.random() * 41), () => send(200, JSON.stringify(upper(value))));
          break;
        case '/fail': send(500, '{"error":"refused by the test"}'); break;
        case '/bad': send(200, '{not json'); break;
        case '/slow': this.later(SLOW_MS, () => send(200, JSON.stringify(upper(value)))); break;
        case '/empty': send(200, ''); break;
        case '/null': send(200, 'null'); break;
        default: send(404, '{"error":"no such function"}');
      }
    });
  }
}

module.exports = { FunctionServer, upper, exclaim, SLOW_MS };
