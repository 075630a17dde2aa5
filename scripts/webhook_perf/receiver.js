// Webhook receiver for scripts/webhook_perf/measure.sh.
// Counts webhook events per second (a real HTTP server; answers 200 at once).
const http = require('node:http');
let events = 0; let requests = 0;
http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    requests += 1;
    try { events += JSON.parse(Buffer.concat(chunks).toString()).events.length; } catch (_) {}
    res.writeHead(200); res.end('ok');
  });
}).listen(Number(process.argv[2]), '127.0.0.1');
setInterval(() => { console.log(JSON.stringify({ t: Date.now(), events, requests })); }, 1000);
