#!/usr/bin/python3
"""Open-loop load: POST requests at a constant rate, whatever the server does.

wrk is a closed loop: each connection sends its next request when the last
answer came, so a slow server is sent less and its latency is hidden (by
Little's law, 1,000 connections at 2,000 req/s wait 500 ms each whatever the
server's own latency). Here the send times are fixed in advance, t_i = start
+ i / rate, and each request's latency is measured from its send time: a
request that waits for a free connection (the server fell behind) counts
that wait too, so the figures are what clients arriving at that rate see.

Requests go over up to --connections keep-alive connections (HTTP/1.1 on
asyncio streams, Python's standard library only). The client's own lateness
(send time to the moment a connection wrote the request, when connections
were free) is reported too: if it grows, the client, not the server, was
short of CPU.

  bench/openloop.py --url http://127.0.0.1:8000 --rate 600 --seconds 20 \\
      --token T --bookings RUNS --card-lo 7 --card-hi 120006

prints one line: BENCH rate=... sent=... ok=... p50_ms=... p95_ms=... p99_ms=...
max_ms=... late_p99_ms=... statuses=201:...,409:...
"""
import argparse
import asyncio
import json
import random
import sys
import time


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


class Connection:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, raw):
        if self.writer is None:
            await self.open()
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.writer.close()
            self.writer = None
        return status, body


async def run(args):
    host, _, port = args.url.split("//", 1)[1].partition(":")
    port = int(port.rstrip("/"))
    runs = [int(x) for x in args.bookings.split(",") if x] if args.bookings else []
    rng = random.Random(args.seed)

    def body():
        if runs:
            card = args.card if args.card else rng.randint(args.card_lo, args.card_hi)
            return json.dumps({"run_id": rng.choice(runs), "card_id": card, "seat_count": 1,
                               "class": args.seat_class}).encode()
        return args.body.encode()

    headers = ("POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
               % (args.path, host, port))
    if args.token:
        headers += "Authorization: Bearer %s\r\n" % args.token

    def raw(b):
        return (headers + "Content-Length: %d\r\n\r\n" % len(b)).encode() + b

    queue = asyncio.Queue()
    results = []  # (intended, started, done, status, measured)
    start = time.monotonic() + 0.2
    total = int(args.rate * (args.warmup + args.seconds))
    measured_from = start + args.warmup

    async def producer():
        for i in range(total):
            at = start + i / args.rate
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((at, raw(body())))
        for _ in range(args.connections):
            queue.put_nowait(None)

    async def consumer():
        conn = Connection(host, port)
        while True:
            item = await queue.get()
            if item is None:
                return
            at, req = item
            began = time.monotonic()
            try:
                status, _ = await conn.request(req)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status = 0
                conn = Connection(host, port)
            results.append((at, began, time.monotonic(), status))

    await asyncio.gather(producer(), *(consumer() for _ in range(args.connections)))
    end = start + args.warmup + args.seconds
    window = [r for r in results if r[0] >= measured_from]
    lat = [(r[2] - r[0]) * 1000 for r in window]
    late = [(r[1] - r[0]) * 1000 for r in window]
    statuses = {}
    for r in window:
        statuses[r[3]] = statuses.get(r[3], 0) + 1
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    last_done = max((r[2] for r in window), default=end)
    print("BENCH rate=%.1f seconds=%.1f sent=%d ok=%d ok_per_s=%.1f p50_ms=%.2f p90_ms=%.2f p95_ms=%.2f"
          " p99_ms=%.2f max_ms=%.2f late_p50_ms=%.2f late_p99_ms=%.2f drained_s=%.2f statuses=%s"
          % (args.rate, args.seconds, len(window), ok, ok / args.seconds, percentile(lat, 50), percentile(lat, 90),
             percentile(lat, 95), percentile(lat, 99), max(lat, default=0), percentile(late, 50),
             percentile(late, 99), max(0.0, last_done - end),
             ",".join("%d:%d" % kv for kv in sorted(statuses.items()))))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--path", default="/api/v1/rail/bookings")
    ap.add_argument("--rate", type=float, required=True, help="requests per second")
    ap.add_argument("--seconds", type=float, default=20, help="measured seconds (after --warmup)")
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--connections", type=int, default=256, help="at most this many requests in flight")
    ap.add_argument("--token", default="")
    ap.add_argument("--bookings", default="", help="run ids, comma separated: POST bookings of one seat")
    ap.add_argument("--card", type=int, default=0, help="pay every booking from this card")
    ap.add_argument("--card-lo", type=int, default=0)
    ap.add_argument("--card-hi", type=int, default=0)
    ap.add_argument("--seat-class", default="standard")
    ap.add_argument("--body", default="{}", help="the JSON body, without --bookings")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    if args.rate <= 0 or args.seconds <= 0:
        sys.exit("--rate and --seconds must be positive")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
