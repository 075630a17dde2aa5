// Redis memory per occupied channel with occupancy webhooks on: N channels, one subscriber each.
const { RawPusher } = require('../tests/compat/lib/rawws');
const { execSync } = require('node:child_process');
const port = Number(process.argv[2]); const redisPort = process.argv[3]; const n = Number(process.argv[4]);
const used = () => Number(/used_memory:(\d+)/.exec(execSync(`redis-cli -p ${redisPort} INFO memory`).toString())[1]);
(async () => {
  const before = used();
  const raws = [];
  for (let c = 0; c < n / 50; c += 1) {
    const raw = new RawPusher(port, `c${c}`);
    await raw.open('/app/k?protocol=7&client=js&version=8');
    for (let i = 0; i < 50; i += 1) raw.send({ event: 'pusher:subscribe', data: { channel: `room-${c}-${i}` } });
    raws.push(raw);
  }
  await new Promise((r) => setTimeout(r, 4000));
  const after = used();
  const keys = execSync(`redis-cli -p ${redisPort} DBSIZE`).toString().trim();
  console.log(JSON.stringify({ channels: n, bytes_per_channel: (after - before) / n, keys }));
  for (const r of raws) r.destroy();
  process.exit(0);
})();
