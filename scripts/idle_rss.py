#!/usr/bin/env python3
"""Quick idle-memory probe: opens N Pusher connections to a running server, subscribes each to a
public channel, then reports the server's RSS growth per connection and the kernel's TCP memory.

Usage: scripts/idle_rss.py --pid PID --port PORT [--connections 10000] [--key app-key]
Standard library only (asyncio streams, hand-made masked frames). The full harness is
ringcast-loadtest (a later issue); this is the quick measurement issue 2 asks for.
"""
import argparse, asyncio, base64, json, os, time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def tcp_mem_pages():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                parts = line.split()
                return int(parts[parts.index("mem") + 1])
    return 0


def masked_text(payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def open_one(port, key, channel, sem):
    async with sem:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        ws_key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /app/{key}?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {ws_key}\r\n"
                      f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        await reader.readuntil(b"\r\n\r\n")
        sub = json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}).encode()
        writer.write(masked_text(sub))
        seen = b""
        while b"subscription_succeeded" not in seen:
            seen += await reader.read(4096)
        return reader, writer


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--key", default="app-key")
    ap.add_argument("--channels", type=int, default=100, help="spread over this many channels")
    args = ap.parse_args()
    time.sleep(0.5)
    rss0, tcp0 = rss_kib(args.pid), tcp_mem_pages()
    sem = asyncio.Semaphore(500)
    start = time.time()
    conns = await asyncio.gather(*[
        open_one(args.port, args.key, f"idle-{i % args.channels}", sem) for i in range(args.connections)
    ])
    connect_s = time.time() - start
    await asyncio.sleep(2)
    rss1, tcp1 = rss_kib(args.pid), tcp_mem_pages()
    n = len(conns)
    print(json.dumps({
        "connections": n,
        "connect_seconds": round(connect_s, 2),
        "server_rss_kib_before": rss0,
        "server_rss_kib_after": rss1,
        "server_rss_bytes_per_connection": round((rss1 - rss0) * 1024 / n),
        "kernel_tcp_buffer_bytes_per_connection": round((tcp1 - tcp0) * 4096 / n),
    }))
    for _, w in conns:
        w.close()


asyncio.run(main())
