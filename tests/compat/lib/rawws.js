'use strict';
// A minimal hand-made WebSocket client over a plain TCP socket (node `net`), so a test can
// stop reading on purpose and see every frame the server sends, including close frames.
const net = require('node:net');
const crypto = require('node:crypto');
const { withTimeout } = require('./server');
const { Recorder } = require('./clients');

const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

/** A masked client frame. */
function encodeFrame(opcode, payload) {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const mask = crypto.randomBytes(4);
  let header;
  if (body.length < 126) {
    header = Buffer.alloc(2);
    header[1] = 0x80 | body.length;
  } else if (body.length < 65536) {
    header = Buffer.alloc(4);
    header[1] = 0x80 | 126;
    header.writeUInt16BE(body.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(body.length), 2);
  }
  header[0] = 0x80 | opcode; // FIN
  const masked = Buffer.alloc(body.length);
  for (let i = 0; i < body.length; i += 1) masked[i] = body[i] ^ mask[i % 4];
  return Buffer.concat([header, mask, masked]);
}

/** Incremental parser of (unmasked) server frames. */
class FrameParser {
  constructor(onFrame) {
    this.buf = Buffer.alloc(0);
    this.onFrame = onFrame;
    this.fragments = null;
  }

  push(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0];
      const b1 = this.buf[1];
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      if (masked) off += 4;
      if (this.buf.length < off + len) return;
      let payload = this.buf.subarray(off, off + len);
      if (masked) {
        const key = this.buf.subarray(off - 4, off);
        payload = Buffer.from(payload.map((b, i) => b ^ key[i % 4]));
      }
      this.buf = this.buf.subarray(off + len);
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      const frame = { fin, opcode, payload: Buffer.from(payload), masked, rsv: b0 & 0x70 };
      if (opcode === OP.CONT || (!fin && opcode < 0x8)) {
        // Reassemble fragmented data messages.
        if (opcode !== OP.CONT) this.fragments = { opcode, parts: [] };
        if (this.fragments) this.fragments.parts.push(frame.payload);
        if (fin && this.fragments) {
          this.onFrame({ fin: true, opcode: this.fragments.opcode,
            payload: Buffer.concat(this.fragments.parts), masked: false, rsv: 0 });
          this.fragments = null;
        }
      } else {
        this.onFrame(frame);
      }
    }
  }
}

/**
 * Raw Pusher connection. `frames` records every frame: {opcode, text?, json?, code?, reason?}.
 * `ended` resolves when the server ends the TCP connection.
 */
class RawPusher {
  constructor(port, name = 'raw') {
    this.port = port;
    this.name = name;
    this.frames = new Recorder(`${name} frames`);
    this.bytesRead = 0;
    this.replyToClose = true;
  }

  async open(urlPath = '/app/app-key?protocol=7&client=js&version=8.6.0&flash=false', ms = 5000,
    extraHeaders = {}) {
    const key = crypto.randomBytes(16).toString('base64');
    const sock = net.connect({ host: '127.0.0.1', port: this.port });
    this.socket = sock;
    this.ended = new Promise((resolve) => {
      sock.on('end', () => resolve('end'));
      sock.on('close', () => resolve('close'));
    });
    sock.on('error', (e) => { this.socketError = e; });
    await withTimeout(new Promise((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    }), ms, `${this.name}: TCP connect timed out`);
    sock.write(`GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1:${this.port}\r\n` +
      'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
      Object.entries(extraHeaders).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n');
    const parser = new FrameParser((f) => this.onFrame(f));
    let head = Buffer.alloc(0);
    let upgraded = false;
    const response = new Promise((resolve, reject) => {
      sock.on('data', (chunk) => {
        this.bytesRead += chunk.length;
        if (upgraded) { parser.push(chunk); return; }
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        upgraded = true;
        const text = head.subarray(0, end).toString('latin1');
        const rest = head.subarray(end + 4);
        resolve(text);
        if (rest.length) parser.push(rest);
      });
      sock.once('close', () => reject(new Error(`${this.name}: closed during the handshake`)));
    });
    const text = await withTimeout(response, ms, `${this.name}: no HTTP upgrade response`);
    const expectedAccept = crypto.createHash('sha1')
      .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    if (!/^HTTP\/1\.1 101/.test(text)) throw new Error(`${this.name}: upgrade refused: ${text}`);
    const accept = /sec-websocket-accept:\s*(\S+)/i.exec(text);
    if (!accept || accept[1] !== expectedAccept) {
      throw new Error(`${this.name}: bad Sec-WebSocket-Accept in ${text}`);
    }
    const established = await this.event('pusher:connection_established', ms);
    this.socketId = JSON.parse(established.data).socket_id;
    return this.socketId;
  }

  onFrame(f) {
    const rec = { opcode: f.opcode, length: f.payload.length };
    if (f.opcode === OP.TEXT) {
      rec.text = f.payload.toString('utf8');
      try { rec.json = JSON.parse(rec.text); } catch (_) { /* keep text */ }
    } else if (f.opcode === OP.CLOSE) {
      rec.code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
      rec.reason = f.payload.subarray(2).toString('utf8');
      // Answer like a browser would: echo the close code, once.
      if (!this.closeSent && this.replyToClose) {
        this.closeSent = true;
        this.sendFrame(OP.CLOSE, f.payload.subarray(0, 2));
      }
    } else if (f.opcode === OP.PING) {
      this.sendFrame(OP.PONG, f.payload);
    }
    this.frames.push(rec);
  }

  sendFrame(opcode, payload) {
    if (!this.socket.destroyed) this.socket.write(encodeFrame(opcode, payload));
  }

  send(obj) { this.sendFrame(OP.TEXT, JSON.stringify(obj)); }

  /** The first Pusher message with this event name (and channel, if given). */
  async event(name, ms = 5000, channel) {
    const f = await this.frames.first((x) => x.json && x.json.event === name &&
      (!channel || x.json.channel === channel), `event ${name}`, ms);
    return f.json;
  }

  closeFrame(ms = 5000) {
    return this.frames.first((x) => x.opcode === OP.CLOSE, 'a close frame', ms);
  }

  pauseReading() { this.socket.pause(); }

  resumeReading() { this.socket.resume(); }

  destroy() { if (this.socket) this.socket.destroy(); }
}

module.exports = { RawPusher, encodeFrame, FrameParser, OP };
