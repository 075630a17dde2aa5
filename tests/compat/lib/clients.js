'use strict';
// pusher-js clients wired to a local ringcast, signing with the official `pusher` server SDK.
const PusherClient = require('pusher-js');
const PusherServer = require('pusher');
const { APP, withTimeout, delay } = require('./server');

const ENCRYPTION_MASTER_KEY_BASE64 = Buffer.alloc(32, 7).toString('base64');

/** The official server SDK, used only to compute signatures. */
function sdk(secret = APP.secret) {
  return new PusherServer({
    appId: APP.appId,
    key: APP.key,
    secret,
    cluster: 'mt1',
    encryptionMasterKeyBase64: ENCRYPTION_MASTER_KEY_BASE64,
  });
}

/** pusher-js options for a plain WebSocket to the local ringcast on `port`. */
function connectOptions(port) {
  return {
    wsHost: '127.0.0.1',
    wsPort: port,
    forceTLS: false,
    enabledTransports: ['ws'],
    cluster: 'mt1',
    disableStats: true,
  };
}

const SOCKET_ID_RE = /^\d+\.\d+$/;

/** Shard index = the two digits just before the dot of the socket id. */
function shardOf(socketId) {
  if (!SOCKET_ID_RE.test(socketId)) throw new Error(`malformed socket id ${JSON.stringify(socketId)}`);
  const left = socketId.split('.')[0];
  return Number.parseInt(left.slice(-2), 10);
}

/**
 * Waits until `predicate(items)` holds for the items recorded so far; items arrive with push().
 */
class Recorder {
  constructor(name) {
    this.name = name;
    this.items = [];
    this.waiters = [];
  }

  push(item) {
    this.items.push(item);
    for (const w of [...this.waiters]) {
      if (w.predicate(this.items)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(this.items);
      }
    }
  }

  filter(fn) { return this.items.filter(fn); }

  /** Resolves when predicate(items) is true; rejects after ms with a message naming `what`. */
  until(predicate, what, ms = 5000) {
    if (predicate(this.items)) return Promise.resolve(this.items);
    let waiter;
    const p = new Promise((resolve) => {
      waiter = { predicate, resolve };
      this.waiters.push(waiter);
    });
    return withTimeout(p, ms, `${this.name}: timed out after ${ms} ms waiting for ${what}; ` +
      `recorded so far: ${describe(this.items)}`).finally(() => {
      const i = this.waiters.indexOf(waiter);
      if (i >= 0) this.waiters.splice(i, 1);
    });
  }

  /** Resolves with the first item matching fn. */
  async first(fn, what, ms) {
    const items = await this.until((xs) => xs.some(fn), what, ms);
    return items.find(fn);
  }
}

function describe(items) {
  const s = JSON.stringify(items.slice(-20));
  return s.length > 2000 ? `${s.slice(0, 2000)}…` : s;
}

/**
 * A pusher-js client for the local server. Options:
 *  - user: {user_id, user_info} used as presence channel data
 *  - signin: user data object for pusher.signin() ({id, user_info?, watchlist?})
 *  - secret: secret used to sign (a wrong one makes auth fail)
 */
class Client {
  constructor(port, { name = 'client', user, signin, secret } = {}) {
    this.name = name;
    this.signer = sdk(secret);
    this.messages = new Recorder(`${name} messages`); // every decoded message from the server
    this.errors = new Recorder(`${name} connection errors`);
    this.states = new Recorder(`${name} states`);
    this.closes = new Recorder(`${name} WebSocket closes`); // {code, reason} of each socket
    this.pusher = new PusherClient(APP.key, {
      ...connectOptions(port),
      channelAuthorization: {
        customHandler: ({ socketId, channelName }, callback) => {
          try {
            const presenceData = channelName.startsWith('presence-') ? user : undefined;
            callback(null, this.signer.authorizeChannel(socketId, channelName, presenceData));
          } catch (e) {
            callback(e, null);
          }
        },
      },
      userAuthentication: {
        customHandler: ({ socketId }, callback) => {
          try {
            callback(null, this.signer.authenticateUser(socketId, signin));
          } catch (e) {
            callback(e, null);
          }
        },
      },
    });
    const conn = this.pusher.connection;
    conn.bind('message', (ev) => this.messages.push(ev));
    conn.bind('error', (err) => this.errors.push(err));
    conn.bind('state_change', (s) => {
      this.states.push(s.current);
      // pusher-js may still act on a close code that arrives after disconnect() (e.g. 4100 →
      // reconnect with back-off); a client the test has let go of stays down.
      // Deferred: state_change fires before pusher-js starts the connection attempt.
      if (this.letGo && s.current === 'connecting') setImmediate(() => this.pusher.disconnect());
    });
    // Close codes of the underlying WebSocket, as pusher-js's transport reports them.
    conn.bind('connected', () => {
      const transport = conn.connection && conn.connection.transport;
      if (transport) {
        transport.bind('closed', (ev) => this.closes.push(ev ? { code: ev.code, reason: ev.reason } : {}));
      }
    });
  }

  get socketId() { return this.pusher.connection.socket_id; }

  get state() { return this.pusher.connection.state; }

  async connected(ms = 5000) {
    await this.states.until((xs) => xs.includes('connected'),
      `state "connected" (current: ${this.state}; errors: ${describe(this.errors.items)})`, ms);
    return this.socketId;
  }

  /** Subscribe and wait for pusher:subscription_succeeded; returns the channel. */
  async subscribe(channelName, ms = 5000) {
    const channel = this.pusher.subscribe(channelName);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(
        `${this.name}: no pusher:subscription_succeeded on ${channelName} within ${ms} ms`)), ms);
      channel.bind('pusher:subscription_succeeded', () => { clearTimeout(timer); resolve(); });
      channel.bind('pusher:subscription_error', (e) => {
        clearTimeout(timer);
        reject(new Error(`${this.name}: subscription_error on ${channelName}: ${JSON.stringify(e)}`));
      });
    });
    return channel;
  }

  /** Record every event the channel emits (name, data, metadata). */
  record(channel) {
    const rec = new Recorder(`${this.name} on ${channel.name}`);
    channel.bind_global((event, data, metadata) => rec.push({ event, data, metadata }));
    return rec;
  }

  /** Messages from the server of a given event name (optionally on a channel). */
  received(event, channel) {
    return this.messages.filter((m) => m.event === event && (!channel || m.channel === channel));
  }

  /** Sends pusher:ping and waits for pusher:pong (everything sent before it was read). */
  async pingPong(ms = 5000) {
    const before = this.received('pusher:pong').length;
    this.pusher.send_event('pusher:ping', {});
    await this.messages.until(() => this.received('pusher:pong').length > before,
      'pusher:pong', ms);
  }

  /** Waits for a pusher:error / close error with the given code on the connection. */
  errorCode(code, ms = 5000) {
    return this.errors.first((e) => e && e.data && e.data.code === code,
      `a connection error with code ${code}`, ms);
  }

  disconnect() {
    this.letGo = true;
    try { this.pusher.disconnect(); } catch (_) { /* ignore */ }
  }

  /** Resolves when the underlying WebSocket is closed (state disconnected). */
  async disconnected(ms = 5000) {
    this.disconnect();
    await this.states.until((xs) => xs[xs.length - 1] === 'disconnected',
      'state "disconnected"', ms);
  }
}

/** Tracks clients so after() can disconnect them all. */
class Clients {
  constructor(port) {
    this.port = port;
    this.all = [];
  }

  make(opts) {
    const c = new Client(this.port, opts);
    this.all.push(c);
    return c;
  }

  async connect(opts) {
    const c = this.make(opts);
    await c.connected();
    return c;
  }

  /**
   * Open connections with `opts` until one lands on `shard` (the kernel spreads connections
   * over shards); extras are disconnected before they do anything.
   */
  async connectOnShard(shard, opts = {}, maxAttempts = 64) {
    const seen = [];
    for (let i = 0; i < maxAttempts; i += 1) {
      const c = await this.connect({ ...opts, name: `${opts.name || 'client'}@shard${shard}` });
      if (shardOf(c.socketId) === shard) return c;
      seen.push(c.socketId);
      await c.disconnected();
    }
    throw new Error(`no connection landed on shard ${shard} after ${maxAttempts} tries ` +
      `(socket ids seen: ${seen.join(', ')}); are there really 2 shards?`);
  }

  closeAll() {
    for (const c of this.all) c.disconnect();
  }
}

/** Parsed JSON data string of a raw server message (pusher-js already parses `data`). */
module.exports = {
  connectOptions,
  Client, Clients, Recorder, sdk, shardOf, SOCKET_ID_RE, delay, withTimeout,
  ENCRYPTION_MASTER_KEY_BASE64,
};
