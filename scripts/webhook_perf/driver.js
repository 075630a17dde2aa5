// Client-event driver for scripts/webhook_perf/measure.sh.
// Sends client events on a private channel at RATE/s for SECONDS from one raw connection.
const crypto = require('node:crypto');
const { RawPusher } = require('../../tests/compat/lib/rawws');
const [port, rate, seconds] = process.argv.slice(2).map(Number);
(async () => {
  const raw = new RawPusher(port, 'driver');
  await raw.open('/app/k?protocol=7&client=js&version=8');
  const sig = crypto.createHmac('sha256', 's').update(`${raw.socketId}:private-perf`).digest('hex');
  raw.send({ event: 'pusher:subscribe', data: { channel: 'private-perf', auth: `k:${sig}` } });
  await raw.event('pusher_internal:subscription_succeeded', 5000, 'private-perf');
  const perTick = Math.max(1, Math.round(rate / 100));
  let sent = 0; const end = Date.now() + seconds * 1000;
  const timer = setInterval(() => {
    if (Date.now() >= end) { clearInterval(timer); console.log(JSON.stringify({ sent })); setTimeout(() => process.exit(0), 500); return; }
    for (let i = 0; i < perTick; i += 1) { raw.send({ event: 'client-x', channel: 'private-perf', data: { i: sent } }); sent += 1; }
  }, 10);
})();
