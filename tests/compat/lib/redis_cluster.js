'use strict';
// A real Redis Cluster (three masters, no replicas) on free loopback ports, for the
// `--redis-cluster` tests: started with `redis-cli --cluster create`, ready once every node
// reports `cluster_state:ok`. Plus the hash slot of a key (CRC16/XMODEM of its hash tag or of
// the whole key, mod 16384) and the master owning a slot, to pick channel names that land on
// every master.
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { freePort } = require('./cluster');
const { delay } = require('./server');

const SLOTS = 16384;

// Servers and directories still up when the test process exits (a crash, a forced exit).
const running = new Map(); // child → directory
process.on('exit', () => {
  for (const [child, dir] of running) {
    try { child.kill('SIGKILL'); } catch (_) { /* already gone */ }
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch (_) { /* best effort */ }
  }
});

/** CRC16/XMODEM (poly 0x1021, init 0, no reflection), the checksum Redis Cluster uses. */
function crc16(buf) {
  let crc = 0;
  for (const byte of buf) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit += 1) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/**
 * The hash slot of a key: only the part between the first `{` and the next `}` counts when that
 * part is non-empty (a hash tag), otherwise the whole key.
 */
function slotOf(key) {
  const buf = Buffer.from(key, 'utf8');
  const open = buf.indexOf(0x7b); // {
  if (open >= 0) {
    const close = buf.indexOf(0x7d, open + 1); // }
    if (close > open + 1) return crc16(buf.subarray(open + 1, close)) % SLOTS;
  }
  return crc16(buf) % SLOTS;
}

/** Runs a program; resolves its stdout, rejects with stderr/stdout in the message. */
function run(program, args, { timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(program, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const hint = err.code === 'ENOENT'
          ? `: ${program} not found, install it (Debian: apt-get install redis-server)` : '';
        reject(new Error(`${program} ${args.join(' ')} failed (${err.message})${hint}\n` +
          `stdout: ${stdout}\nstderr: ${stderr}`));
        return;
      }
      resolve(stdout);
    });
  });
}

/** `redis-cli -p port args…` against one node (no cluster redirection); resolves stdout. */
function redisCli(port, ...args) {
  return run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args.map(String)]);
}

/** A free port not in `taken` (which it joins): a released port can come back at once. */
async function unusedPort(taken) {
  for (;;) {
    // eslint-disable-next-line no-await-in-loop
    const port = await freePort();
    if (!taken.has(port)) {
      taken.add(port);
      return port;
    }
  }
}

/** Fails fast with an install hint when redis-server or redis-cli is missing. */
async function requireRedisTools() {
  for (const program of ['redis-server', 'redis-cli']) {
    // eslint-disable-next-line no-await-in-loop
    await run(program, ['--version']);
  }
}

/** Resolves when `CLUSTER INFO` on every port says cluster_state:ok and all slots are assigned. */
async function waitClusterOk(ports, ms = 20000) {
  const deadline = Date.now() + ms;
  let last = '';
  for (;;) {
    // eslint-disable-next-line no-await-in-loop
    const infos = await Promise.all(ports.map((p) => redisCli(p, 'CLUSTER', 'INFO').catch((e) => e.message)));
    const ok = infos.every((i) => /cluster_state:ok/.test(i) &&
      new RegExp(`cluster_slots_ok:${SLOTS}\\b`).test(i) &&
      new RegExp(`cluster_known_nodes:${ports.length}\\b`).test(i));
    if (ok) return;
    last = infos.map((i, k) => `${ports[k]}: ${i.split('\n').slice(0, 7).join(' ')}`).join('\n');
    if (Date.now() > deadline) throw new Error(`Redis Cluster not ok after ${ms} ms:\n${last}`);
    // eslint-disable-next-line no-await-in-loop
    await delay(100);
  }
}

/** Resolves once the node on `port` answers PING (its log in the error otherwise). */
async function waitPong(dir, port) {
  const deadline = Date.now() + 10000;
  for (;;) {
    // eslint-disable-next-line no-await-in-loop
    const pong = await redisCli(port, 'PING').catch(() => '');
    if (pong.trim() === 'PONG') return;
    if (Date.now() > deadline) {
      const logFile = path.join(dir, `redis-${port}.log`);
      const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
      throw new Error(`cluster redis-server on ${port} did not start:\n${log}`);
    }
    // eslint-disable-next-line no-await-in-loop
    await delay(20);
  }
}

/**
 * Starts `masters` cluster-enabled redis-servers in a fresh temporary directory and joins them
 * into one cluster. Resolves {ports, url, redisCli(port, ...args), slotOf, ownerPort(slot),
 * masterOf(key), stop()}; `url` is the seed list `127.0.0.1:P1,127.0.0.1:P2,…`.
 */
async function startRedisCluster({ masters = 3 } = {}) {
  await requireRedisTools();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-redis-cluster-'));
  const children = [];
  const ports = [];
  const busPorts = new Map(); // port → cluster bus port
  const childOf = new Map(); // port → its running redis-server
  const taken = new Set();
  /** Starts (or starts again: same directory, same node config) the node on `port`. */
  const spawnNode = (port, busPort) => {
    busPorts.set(port, busPort);
    const log = fs.openSync(path.join(dir, `redis-${port}.log`), 'a');
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1',
      '--cluster-enabled', 'yes', '--cluster-port', String(busPort),
      '--cluster-config-file', `nodes-${port}.conf`,
      '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    child.on('error', () => { /* reported by the PING wait */ });
    children.push(child);
    childOf.set(port, child);
    running.set(child, dir);
    return child;
  };
  const stop = async () => {
    await Promise.all(children.map((child) => {
      running.delete(child);
      if (child.exitCode !== null || child.signalCode !== null) return undefined;
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.kill('SIGKILL');
      return exited;
    }));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i += 1) {
      // The cluster bus needs a port too: its default, port + 10000, may be taken or above 65535.
      // eslint-disable-next-line no-await-in-loop
      const [port, busPort] = [await unusedPort(taken), await unusedPort(taken)];
      spawnNode(port, busPort);
      ports.push(port);
    }
    await Promise.all(ports.map((port) => waitPong(dir, port)));
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas', '0', '--cluster-yes'], { timeoutMs: 30000 });
    await waitClusterOk(ports);
  } catch (e) {
    await stop();
    throw e;
  }

  /** [{from, to, port}] from CLUSTER SLOTS (asked of the first node). */
  async function slotRanges() {
    const out = await redisCli(ports[0], '--json', 'CLUSTER', 'SLOTS').catch(() => null);
    if (out !== null) {
      return JSON.parse(out).map(([from, to, master]) => ({ from, to, port: Number(master[1]) }));
    }
    // redis-cli without --json (< 7.0): CLUSTER NODES lines `id ip:port@bus flags … 0-5460 …`.
    const ranges = [];
    for (const line of (await redisCli(ports[0], 'CLUSTER', 'NODES')).trim().split('\n')) {
      const fields = line.split(' ');
      if (!fields[2].split(',').includes('master')) continue; // eslint-disable-line no-continue
      const port = Number(fields[1].split('@')[0].split(':').pop());
      for (const r of fields.slice(8).filter((f) => /^\d+(-\d+)?$/.test(f))) {
        const [from, to = from] = r.split('-').map(Number);
        ranges.push({ from, to, port });
      }
    }
    return ranges;
  }

  let ranges = null;
  /** The port of the master serving `slot`. */
  async function ownerPort(slot) {
    if (!ranges) ranges = await slotRanges();
    const range = ranges.find((r) => slot >= r.from && slot <= r.to);
    if (!range) throw new Error(`no master serves slot ${slot}: ${JSON.stringify(ranges)}`);
    return range.port;
  }

  return {
    ports,
    url: ports.map((p) => `127.0.0.1:${p}`).join(','),
    dir,
    redisCli,
    slotOf,
    ownerPort,
    /** The port of the master holding `key` (or serving the shard channel `key`). */
    masterOf: (key) => ownerPort(slotOf(key)),
    /**
     * Kills the master on `port` (SIGKILL: its data is gone, its slots stay in its node config)
     * and starts it again; resolves once the cluster is ok again.
     */
    async restart(port) {
      const child = childOf.get(port);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.on('exit', resolve));
        child.kill('SIGKILL');
        await exited;
        running.delete(child);
      }
      spawnNode(port, busPorts.get(port));
      await waitPong(dir, port);
      await waitClusterOk(ports);
    },
    stop,
  };
}

module.exports = { startRedisCluster, slotOf, crc16, redisCli };
