'use strict';
// A real HTTP server that receives ringcast's webhooks, as an app backend would: it records each
// request (path, lower-case headers, raw body) and checks it with the official `pusher` SDK's
// webhook validator. It can answer with an error status for a while, or stop listening (the
// port is kept so it can come back on the same URL).
const http = require('node:http');
const PusherServer = require('pusher');
const { APP } = require('./server');
const { Recorder } = require('./clients');

class WebhookReceiver {
  /** `apps`: more `{key, secret}` pairs whose signatures count as valid (the test app's always do). */
  constructor({ apps = [] } = {}) {
    this.extraApps = apps;
    this.requests = new Recorder('webhook requests'); // {path, headers, rawBody, valid, body}
    this.events = new Recorder('webhook events'); // every event of every valid request, with path
    this.failuresLeft = 0;
    this.failureStatus = 500;
    this.sdk = new PusherServer({
      appId: APP.appId, key: APP.key, secret: APP.secret, cluster: 'mt1',
    });
    this.server = null;
    this.port = 0;
  }

  /** Listens on a free port (first call) or on the same port again. */
  async start() {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = this.server.address().port;
    return this;
  }

  url(path = '/hooks') { return `http://127.0.0.1:${this.port}${path}`; }

  /** Stops listening: connections are refused until start() again. */
  async stop() {
    if (!this.server) return;
    const server = this.server;
    this.server = null;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(() => resolve()));
  }

  /** The next `count` requests are answered with `status` (and recorded as such). */
  failNext(count, status = 500) {
    this.failuresLeft = count;
    this.failureStatus = status;
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const failing = this.failuresLeft > 0;
      if (failing) this.failuresLeft -= 1;
      const webhook = this.sdk.webhook({ headers: req.headers, rawBody });
      const valid = webhook.isValid(this.extraApps);
      const record = {
        path: req.url, method: req.method, headers: req.headers, rawBody, valid, refused: failing,
      };
      if (valid) record.body = webhook.getData();
      this.requests.push(record);
      if (!failing && valid) {
        for (const event of webhook.getEvents()) this.events.push({ path: req.url, ...event });
      }
      res.writeHead(failing ? this.failureStatus : 200, { 'content-type': 'text/plain' });
      res.end(failing ? 'refused by the test' : 'ok');
    });
  }

  /** Accepted events matching `fn`. */
  accepted(fn = () => true) { return this.events.items.filter(fn); }

  /** Waits until `count` accepted events match `fn`; returns them. */
  async waitFor(fn, count, what, ms = 10000) {
    await this.events.until((xs) => xs.filter(fn).length >= count, what, ms);
    return this.accepted(fn);
  }
}

module.exports = { WebhookReceiver };
