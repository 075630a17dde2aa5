'use strict';
// socket.io-client 4 as the Ekko client configures it (websocket transport, namespace
// /<app id>, auth {jwt, uuid}), with tokens made by jsonwebtoken as the Ekko CLI makes them.
const { io } = require('socket.io-client');
const jwt = require('jsonwebtoken');
const { Recorder } = require('./clients');
const { withTimeout, APP } = require('./server');

/** An Ekko token for `appName`, signed with `secret` (HS256 unless told). */
function token(appName, secret, extra = {}, options = {}) {
  return jwt.sign({ appName, admin: false, ...extra }, secret, { algorithm: 'HS256', ...options });
}

/** Connects like the Ekko client; resolves with the socket once connected, rejects on error. */
function connect(port, namespace, auth, options = {}) {
  const socket = io(`http://127.0.0.1:${port}/${namespace}`, {
    transports: ['websocket'],
    reconnection: false,
    auth,
    ...options,
  });
  const outcome = new Promise((resolve, reject) => {
    socket.on('connect', () => resolve(socket));
    socket.on('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
  return withTimeout(outcome, 5000, `no connect or connect_error for /${namespace}`);
}

/**
 * An Ekko client of the test app: a connected socket that records every event it receives
 * (`{name, args}`), and the calls the Ekko client makes, each acknowledged.
 */
class EkkoClient {
  static async connect(port, { uuid = 'u', admin = false, secret = APP.secret } = {}) {
    const auth = { jwt: token(APP.appId, secret, { admin }), uuid };
    // forceNew: one connection per client, as separate Ekko clients have.
    const socket = await connect(port, APP.appId, auth, { forceNew: true });
    return new EkkoClient(socket, uuid);
  }

  constructor(socket, uuid) {
    this.socket = socket;
    this.uuid = uuid;
    this.events = new Recorder(`socket.io ${uuid}`);
    socket.onAny((name, ...args) => this.events.push({ name, args }));
  }

  /** Emits `name` with `payload` and resolves with the server's acknowledgement. */
  call(name, payload, ms = 5000) {
    return withTimeout(this.socket.emitWithAck(name, payload), ms, `no ack for ${name}`);
  }

  subscribe(channels, extra = {}) {
    return this.call('subscribe', { channels, uuid: this.uuid, ...extra });
  }

  unsubscribe(channels) {
    return this.call('unsubscribe', { channels, uuid: this.uuid });
  }

  publish(channel, message, extra = {}) {
    return this.call('publish', { channel, message, uuid: this.uuid, ...extra });
  }

  /** The `name` events received so far, their first argument each. */
  received(name) {
    return this.events.filter((e) => e.name === name).map((e) => e.args[0]);
  }

  /** Resolves with the first `name` event whose argument matches `fn`. */
  async first(name, fn, what, ms) {
    const event = await this.events.first((e) => e.name === name && fn(e.args[0]), what, ms);
    return event.args[0];
  }

  close() {
    this.socket.close();
  }
}

module.exports = { token, connect, EkkoClient };
