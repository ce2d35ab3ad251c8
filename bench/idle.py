#!/usr/bin/python3
"""Holds N idle keep-alive connections to a server while timing requests on
fresh connections, as a crowd of parked clients would.

    idle.py URL N [PROBES] [PID]

Opens N connections, sends one GET on each and reads its answer (so each is
an established, kept-alive connection), then sends PROBES requests, each on
a new connection, one after another, and prints one line:

    held=N probes=... p50_ms=... p99_ms=... max_ms=... errors=... rss_kb=...

rss_kb is the server's resident set (PID given) while the N are held.
"""
import resource
import socket
import sys
import time
from urllib.parse import urlparse


def main():
    url = urlparse(sys.argv[1])
    n = int(sys.argv[2])
    probes = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    pid = sys.argv[4] if len(sys.argv) > 4 else None
    host, port, path = url.hostname, url.port or 80, url.path or "/"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    req = ("GET %s HTTP/1.1\r\nHost: bench\r\n\r\n" % path).encode()

    held, errors = [], 0
    for _ in range(n):
        try:
            s = socket.create_connection((host, port), timeout=10)
            s.sendall(req)
            held.append(s)
        except OSError:
            errors += 1
    alive = 0
    for s in held:
        try:
            data = s.recv(65536)
            alive += data.startswith(b"HTTP/1.1 200")
        except OSError:
            errors += 1

    rss = "-"
    if pid:
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = line.split()[1]

    times = []
    for _ in range(probes):
        t0 = time.perf_counter()
        try:
            with socket.create_connection((host, port), timeout=10) as s:
                s.sendall(req.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            if not data.startswith(b"HTTP/1.1 200"):
                errors += 1
        except OSError:
            errors += 1
        times.append((time.perf_counter() - t0) * 1000)

    # the held connections are still open and served
    still = 0
    for s in held[:: max(1, len(held) // 100)]:
        try:
            s.sendall(req)
            still += s.recv(65536).startswith(b"HTTP/1.1 200")
        except OSError:
            pass
    for s in held:
        s.close()
    times.sort()
    pct = lambda p: times[min(len(times) - 1, int(len(times) * p))]
    print("held=%d probes=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f errors=%d rss_kb=%s still_served=%d/%d" %
          (alive, probes, pct(0.5), pct(0.99), times[-1], errors, rss, still, len(held[:: max(1, len(held) // 100)])))


if __name__ == "__main__":
    main()
