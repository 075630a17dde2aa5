'use strict';
// REST API helpers: the official `pusher` server SDK pointed at a local ringcast, and a
// hand-made request signer (docs/protocol-notes.md, REST signing) for requests the SDK cannot produce
// (stale timestamps, wrong body_md5, unknown keys).
const crypto = require('node:crypto');
const http = require('node:http');
const PusherServer = require('pusher');
const { APP, withTimeout, delay } = require('./server');

const REQUEST_TIMEOUT_MS = 5000;

/** The official server SDK talking to 127.0.0.1:port over plain HTTP. */
function restSdk(port, { appId = APP.appId, key = APP.key, secret = APP.secret,
  encryptionMasterKeyBase64 } = {}) {
  const options = {
    appId, key, secret, host: '127.0.0.1', port: String(port), useTLS: false,
    timeout: REQUEST_TIMEOUT_MS, // the SDK aborts the request after this
  };
  if (encryptionMasterKeyBase64) options.encryptionMasterKeyBase64 = encryptionMasterKeyBase64;
  return new PusherServer(options);
}

/** Describes a rejected SDK call (RequestError carries status and body). */
function describeError(e) {
  if (e && e.status !== undefined) return `HTTP ${e.status} ${e.body}`;
  const cause = e && e.error ? ` (${e.error.message || e.error})` : '';
  return `${e && e.message}${cause}`;
}

/**
 * Awaits an SDK call that must succeed; resolves {status, body} with the JSON body parsed.
 * Rejects with a message naming `what` and the HTTP status/body otherwise.
 */
async function ok(promise, what) {
  let res;
  try {
    res = await withTimeout(promise, REQUEST_TIMEOUT_MS + 1000, `${what}: no response`);
  } catch (e) {
    throw new Error(`${what} failed: ${describeError(e)}`);
  }
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch (_) {
    throw new Error(`${what}: HTTP ${res.status} with a non-JSON body: ${text}`);
  }
  return { status: res.status, body };
}

/**
 * Awaits an SDK call that must fail with an HTTP status; resolves {status, body, text}
 * (body parsed when it is JSON). Rejects if the call succeeded or failed without a status.
 */
async function fails(promise, what) {
  let res;
  try {
    res = await withTimeout(promise, REQUEST_TIMEOUT_MS + 1000, `${what}: no response`);
  } catch (e) {
    if (e && typeof e.status === 'number') {
      let body;
      try { body = JSON.parse(e.body); } catch (_) { body = undefined; }
      return { status: e.status, body, text: e.body };
    }
    throw new Error(`${what} failed without an HTTP status: ${describeError(e)}`);
  }
  const text = await res.text();
  throw new Error(`${what}: expected an HTTP error, got ${res.status} ${text}`);
}

const md5 = (s) => crypto.createHash('md5').update(s, 'utf8').digest('hex');

/**
 * Signed query string per §7: every parameter but auth_signature, keys lower-cased, sorted,
 * `k=v` joined with `&`, values not escaped; signature = hex HMAC-SHA256(secret,
 * "METHOD\nPATH\nQUERY"). The URL itself carries percent-encoded values.
 * Options: timestamp (unix s), bodyMd5 (overrides the MD5 of `body`), key, secret.
 */
function signedQuery(method, path, { params = {}, body, timestamp, bodyMd5, key = APP.key,
  secret = APP.secret } = {}) {
  const all = {
    auth_key: key,
    auth_timestamp: String(timestamp === undefined ? Math.floor(Date.now() / 1000) : timestamp),
    auth_version: '1.0',
    ...params,
  };
  if (bodyMd5 !== undefined) all.body_md5 = bodyMd5;
  else if (body) all.body_md5 = md5(body);
  const pairs = Object.entries(all).map(([k, v]) => [k.toLowerCase(), String(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const toSign = [method.toUpperCase(), path, pairs.map(([k, v]) => `${k}=${v}`).join('&')].join('\n');
  const signature = crypto.createHmac('sha256', secret).update(toSign).digest('hex');
  const query = [...pairs, ['auth_signature', signature]]
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return { query, toSign, signature };
}

/** One HTTP request; resolves {status, text, body (JSON or undefined), headers}. */
function request(port, method, pathAndQuery, body) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const req = http.request({ host: '127.0.0.1', port, method, path: pathAndQuery, headers, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { text += c; });
        res.on('end', () => {
          let json;
          try { json = JSON.parse(text); } catch (_) { json = undefined; }
          resolve({ status: res.statusCode, text, body: json, headers: res.headers });
        });
        res.on('error', reject);
      });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`${method} ${pathAndQuery} timed out`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** A request signed by hand; `path` is the full path (`/apps/12345/...`). */
function signedRequest(port, method, path, opts = {}) {
  const { query } = signedQuery(method, path, opts);
  return request(port, method, `${path}?${query}`, opts.body);
}

/**
 * Polls `fn` (async) until `check(value)` is true; rejects after ms naming `what` and the
 * last value seen. For server-side state that settles asynchronously (e.g. after a disconnect).
 */
async function eventually(fn, check, what, ms = 5000, everyMs = 50) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (check(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    }
    await delay(everyMs);
  }
}

module.exports = {
  restSdk, ok, fails, signedQuery, signedRequest, request, md5, eventually, describeError,
};
