#!/usr/bin/python3
"""Asynchronous commands against synchronous ones (`make bench-async`).

On private services (PostgreSQL, Redis, a RabbitMQ node) it measures, with
wrk and the recharge of bench/lua/recharge.lua on 1,000 cards:

  1. synchronous recharges at 256 connections: req/s and p99;
  2. the same with Prefer: respond-async: 202/s and their p50/p99 (the
     instance's consumers apply them meanwhile, on the same cores);
  3. a burst of BENCH_ASYNC_BURST (100,000) commands queued by an instance
     that does not consume, then the time an instance with ASYNC_CONSUMERS
     consumers takes to apply them all: the sustained apply rate, beside the
     synchronous throughput of 1.

Afterwards it checks in SQL: every operation of the runs succeeded, one
recharge each, and every card's balance equals its ledger. Everything it
starts lives under .run/bench-async and is stopped on exit.

  BENCH_DURATION (8) seconds per wrk run, BENCH_ASYNC_BURST (100000),
  ASYNC_CONSUMERS (4), BENCH_ASYNC_PORT_BASE (27500)
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
RUN = os.path.join(ROOT, ".run", "bench-async")
BASE = int(os.environ.get("BENCH_ASYNC_PORT_BASE", "27500"))
PG, REDIS, RABBIT = BASE, BASE + 1, BASE + 2          # RabbitMQ also takes +3 and +4
APP, PUBLISHER, CONSUMER = BASE + 10, BASE + 11, BASE + 12
DURATION = int(os.environ.get("BENCH_DURATION", "8"))
BURST = int(os.environ.get("BENCH_ASYNC_BURST", "100000"))
CONSUMERS = os.environ.get("ASYNC_CONSUMERS", "4")
CARDS = 1000
AMOUNT = 1000
started = []


def sh(script, **kw):
    return subprocess.run(["bash", "-c", "source scripts/services.sh && " + script], cwd=ROOT, check=True,
                          text=True, capture_output=True, **kw).stdout


def psql(sql):
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(PG), "-U", "transitd", "-d", "transitd", "-qtAX",
                           "-c", sql], check=True, capture_output=True, text=True).stdout.strip()


def http(method, port, path, body=None, token=None, timeout=10):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def serve(port, **env):
    e = dict(os.environ, **ENV, PORT=str(port), **{k: str(v) for k, v in env.items()})
    log = open(os.path.join(RUN, "transitd-%d.log" % port), "w")
    p = subprocess.Popen([os.path.join(ROOT, "build", "transitd"), "serve"], cwd=ROOT, env=e, stdout=log,
                         stderr=log)
    started.append(p)
    for _ in range(300):
        try:
            if urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=1).status == 200:
                return p
        except OSError:
            time.sleep(0.1)
    sys.exit("transitd on %d did not become ready" % port)


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()


def wrk(port, conns, seconds, until=None, **env):
    """A wrk run; with until, it is interrupted once until() is true."""
    e = dict(os.environ, BENCH_CARD_LO=str(LO), BENCH_CARD_HI=str(HI), BENCH_AMOUNT=str(AMOUNT),
             BENCH_TOKEN=TOKEN, **env)
    p = subprocess.Popen(["wrk", "-t2", "-c%d" % conns, "-d%ds" % seconds, "--timeout", "10s", "--latency",
                          "-s", os.path.join(ROOT, "bench", "lua", "recharge.lua"),
                          "http://127.0.0.1:%d/" % port], env=e, stdout=subprocess.PIPE, text=True)
    if until:
        while p.poll() is None and not until():
            time.sleep(0.2)
        p.send_signal(signal.SIGINT)  # wrk stops and reports
    out = p.communicate()[0]
    m = re.search(r"^BENCH (.*)$", out, re.M)
    if not m:
        sys.exit("wrk gave no BENCH line:\n" + out)
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def pending_after(marker):
    return int(psql("SELECT count(*) FROM operations WHERE operation_id > %d AND status = 'pending'" % marker))


def main():
    global ENV, TOKEN, LO, HI
    subprocess.run(["bash", "scripts/bootstrap.sh", "--bench"], cwd=ROOT, check=True)
    subprocess.run(["make", "-s", "all"], cwd=ROOT, check=True)
    sh("pg_wipe %s/pg; redis_stop %s/redis; rabbitmq_stop %s/rabbitmq %d" % (RUN, RUN, RUN, RABBIT))
    shutil.rmtree(RUN, ignore_errors=True)
    os.makedirs(RUN)
    sh("pg_start %s/pg %d && redis_start %s/redis %d && rabbitmq_start %s/rabbitmq %d"
       % (RUN, PG, RUN, REDIS, RUN, RABBIT))
    amqp = sh("rabbitmq_url %s/rabbitmq %d" % (RUN, RABBIT)).strip()
    ENV = {"DATABASE_URL": "postgresql://transitd@127.0.0.1:%d/transitd" % PG,
           "REDIS_URL": "redis://127.0.0.1:%d" % REDIS, "AMQP_URL": amqp,
           "JWT_SECRET": os.urandom(24).hex(), "PAYMENT_WEBHOOK_SECRET": os.urandom(24).hex(),
           "LOG_LEVEL": "warn", "RATE_LIMIT_PER_MINUTE": "0", "ACCESS_TOKEN_TTL": "86400",
           "MAX_CONNECTIONS_PER_CLIENT": "0"}
    env = dict(os.environ, **ENV)
    for cmd in (["migrate"], ["seed", "--demo"]):
        subprocess.run([os.path.join(ROOT, "build", "transitd"), *cmd], cwd=ROOT, env=env, check=True,
                       capture_output=True)
    app = serve(APP, ASYNC_CONSUMERS=CONSUMERS)
    TOKEN = http("POST", APP, "/api/v1/auth/login",
                 {"email": "operator@transitd.local", "password": "operator-change-me"})["access_token"]
    ids = [http("POST", APP, "/api/v1/cards", {}, TOKEN)["card_id"] for _ in range(CARDS)]
    LO, HI = min(ids), max(ids)
    assert HI - LO + 1 == CARDS, "the cards are not one range of ids"
    rows = []

    wrk(APP, 256, 2)
    sync = wrk(APP, 256, DURATION)
    rows.append(("POST /cards/recharge, synchronous, c=256", sync["ok_per_s"], sync["p50_ms"], sync["p99_ms"],
                 "201 %d, 4xx %d, 5xx %d" % (sync["ok"], sync["s4xx"], sync["s5xx"])))
    marker = int(psql("SELECT coalesce(max(operation_id), 0) FROM operations"))
    sync_recharges = int(psql("SELECT count(*) FROM recharges WHERE card_id BETWEEN %d AND %d" % (LO, HI)))
    wrk(APP, 256, 2, BENCH_PREFER="respond-async")
    accepted = wrk(APP, 256, DURATION, BENCH_PREFER="respond-async")
    rows.append(("POST /cards/recharge, respond-async, c=256", accepted["ok_per_s"], accepted["p50_ms"],
                 accepted["p99_ms"], "202 %d, 4xx %d, 5xx %d" % (accepted["ok"], accepted["s4xx"], accepted["s5xx"])))
    t0 = time.time()
    while pending_after(marker) and time.time() - t0 < 600:
        time.sleep(0.2)
    catch_up = time.time() - t0

    # The burst: queued by an instance that does not consume, then drained.
    stop(app)
    queue = "bench.burst"
    publisher = serve(PUBLISHER, ASYNC_CONSUMERS=0, AMQP_QUEUE=queue)
    burst_marker = int(psql("SELECT coalesce(max(operation_id), 0) FROM operations"))
    t0 = time.time()
    fill = wrk(PUBLISHER, 256, 3600, BENCH_PREFER="respond-async",
               until=lambda: int(psql("SELECT count(*) FROM operations WHERE operation_id > %d" % burst_marker))
               >= BURST)
    rows.append(("respond-async, c=256, no consumer running", fill["ok_per_s"], fill["p50_ms"], fill["p99_ms"],
                 "202 %d, 4xx %d, 5xx %d" % (fill["ok"], fill["s4xx"], fill["s5xx"])))
    fill_s = time.time() - t0
    stop(publisher)
    queued = int(psql("SELECT count(*) FROM operations WHERE operation_id > %d AND status = 'pending'"
                      % burst_marker))
    t0 = time.time()
    consumer = serve(CONSUMER, ASYNC_CONSUMERS=CONSUMERS, AMQP_QUEUE=queue)
    while pending_after(burst_marker) and time.time() - t0 < 1800:
        time.sleep(0.5)
    drain_s = time.time() - t0
    stop(consumer)

    failed = int(psql("SELECT count(*) FROM operations WHERE operation_id > %d AND status <> 'succeeded'" % marker))
    ops = int(psql("SELECT count(*) FROM operations WHERE operation_id > %d" % marker))
    recharges = int(psql("SELECT count(*) FROM recharges WHERE card_id BETWEEN %d AND %d" % (LO, HI)))
    bad = int(psql("SELECT count(*) FROM cards c WHERE balance <> (SELECT coalesce(sum(amount), 0) FROM "
                   "card_ledger l WHERE l.card_id = c.card_id)"))
    print("transitd async bench  %s  %d cores  wrk -t2 -d%ds; ASYNC_CONSUMERS=%s" %
          (time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), os.cpu_count(), DURATION, CONSUMERS))
    print("load average before the end: %s" % open("/proc/loadavg").read().split()[:3])
    print()
    print("%-44s %9s %8s %8s  %s" % ("request", "ok/s", "p50 ms", "p99 ms", "answers"))
    for r in rows:
        print("%-44s %9.0f %8.2f %8.2f  %s" % r)
    print()
    print("the accepted commands of run 2 were all applied %.1f s after it ended" % catch_up)
    print("burst: %d commands queued (202) in %.1f s by a publishing-only instance (%.0f/s)" %
          (queued, fill_s, queued / fill_s))
    print("       drained by %s consumers in %.1f s: %.0f applied/s, %.2fx the synchronous throughput of run 1" %
          (CONSUMERS, drain_s, queued / drain_s, queued / drain_s / sync["ok_per_s"]))
    print("checks: operations of the runs %d, not succeeded %d; recharges on the bench cards %d, expected %d "
          "(%d synchronous + one per operation); cards whose balance <> sum(ledger): %d" %
          (ops, failed, recharges, sync_recharges + ops, sync_recharges, bad))


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in started:
            stop(p)
        try:
            sh("redis_stop %s/redis; rabbitmq_stop %s/rabbitmq %d; pg_stop %s/pg" % (RUN, RUN, RABBIT, RUN))
        except subprocess.CalledProcessError:
            pass
