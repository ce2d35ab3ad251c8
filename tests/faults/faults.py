"""Faults under load (issue 14): `make test-faults`, also run by .ci/run.

Concurrent clients send keyed recharges, tap-ins (with their tap-outs) and
rail bookings, each retrying with the same Idempotency-Key until it gets a
final answer (2xx or 4xx; a 503, a refused or reset connection, or 409
idempotency-in-progress means "try again"). Meanwhile, one at a time:
SIGKILL transitd and start it again, restart PostgreSQL, restart Redis,
pause Redis (SIGSTOP) for 5 s, fill the job queue.

Afterwards, from the database:
- every attempt got an answer (2xx, 4xx or 503) or a refused/reset
  connection while transitd was down; none hung (no timeout) and no 5xx
  other than 503;
- every key has exactly one effect: an operation answered 2xx has its row
  (none lost) and no card has more rows than operations answered 2xx (none
  duplicated);
- ledger = balance on every card; no seat is held by two active bookings;
- the server recovers without intervention (recovery time: from the end of
  the fault, that is the killed process started again, the dependency back
  up, or Redis resumed, to the first keyed write answered 2xx).

Prints the table the issue asks for and writes it to FAULTS_REPORT
(build/faults/report.md by default). Environment: DATABASE_URL, REDIS_URL,
TEST_PG_DIR, TEST_PG_PORT, TEST_REDIS_DIR, TEST_REDIS_PORT, TRANSITD_BIN,
FAULTS_CLIENTS (12), FAULTS_PHASE_S (8).
"""
import atexit
import collections
import datetime
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import psycopg2
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("TRANSITD_BIN", os.path.join(ROOT, "build", "transitd"))
V1 = "/api/v1"
CLIENTS = int(os.environ.get("FAULTS_CLIENTS", "12"))
PHASE_S = float(os.environ.get("FAULTS_PHASE_S", "8"))
ATTEMPT_TIMEOUT_S = 15      # an attempt without an answer in this long is a hang
OPERATION_DEADLINE_S = 120  # an operation still without a final answer then fails the suite
ROUTE = 17                  # an active trunk route of the demo network


def log(msg):
    print("[faults %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def services(action, kind):
    d = os.environ["TEST_PG_DIR"] if kind == "pg" else os.environ["TEST_REDIS_DIR"]
    port = os.environ["TEST_PG_PORT"] if kind == "pg" else os.environ["TEST_REDIS_PORT"]
    args = "%s %s" % (d, port) if action == "start" else d
    subprocess.run(["bash", "-c", "source scripts/services.sh && %s_%s %s" % (kind, action, args)],
                   cwd=ROOT, check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Transitd:
    """The server under test: one process, restarted on the same port."""

    def __init__(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.env = dict(os.environ, PORT=str(self.port), LOG_LEVEL="warn", WORKERS="8", JOB_QUEUE_SIZE="64",
                        RATE_LIMIT_PER_MINUTE="0", LOGIN_RATE_PER_ADDRESS="100000",
                        LOGIN_RATE_PER_EMAIL="100000", LOGIN_SLOWDOWN_AFTER="100000",
                        REGISTER_RATE_PER_ADDRESS="100000", SHUTDOWN_TIMEOUT="10")
        self.log = open(os.path.join(os.environ["FAULTS_DIR"], "transitd.log"), "a")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([BIN, "serve"], cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            assert self.proc.poll() is None, "transitd exited with %s" % self.proc.returncode
            try:
                if requests.get(self.url + "/livez", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("transitd did not start")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode if self.proc else 0


class Stats:
    """Attempts per phase, by class of answer."""

    def __init__(self):
        self.lock = threading.Lock()
        self.phase = "warm-up"
        self.by_phase = collections.defaultdict(collections.Counter)

    def count(self, what):
        with self.lock:
            self.by_phase[self.phase][what] += 1

    def set_phase(self, name):
        with self.lock:
            self.phase = name

    def current(self):
        with self.lock:
            return self.phase


STATS = Stats()
FAILURES = []


def attempt_class(r):
    if 200 <= r.status_code < 300:
        return "2xx"
    if r.status_code == 503:
        return "503"
    if 400 <= r.status_code < 500:
        return "4xx"
    return "5xx"


def keyed(session, server, method, path, body, headers):
    """One operation: the same Idempotency-Key until a final answer.
    Returns (phase it started in, final response)."""
    key = uuid.uuid4().hex
    phase = STATS.current()
    deadline = time.time() + OPERATION_DEADLINE_S
    h = dict(headers, **{"Idempotency-Key": key})
    while True:
        if time.time() > deadline:
            FAILURES.append("%s %s %r: no final answer in %d s" % (method, path, body, OPERATION_DEADLINE_S))
            return phase, None
        try:
            r = session.request(method, server.url + path, json=body, headers=h, timeout=ATTEMPT_TIMEOUT_S)
        except requests.Timeout:
            STATS.count("hang")
            FAILURES.append("%s %s: no answer within %d s" % (method, path, ATTEMPT_TIMEOUT_S))
            continue
        except requests.ConnectionError:
            STATS.count("refused")  # transitd down (killed, restarting)
            time.sleep(0.05)
            continue
        cls = attempt_class(r)
        STATS.count(cls)
        if cls == "5xx":
            FAILURES.append("%s %s: %d %s" % (method, path, r.status_code, r.text[:200]))
            time.sleep(0.1)
            continue
        retry = cls == "503" or (r.status_code == 409 and "idempotency-in-progress" in r.text)
        if retry:
            time.sleep(random.uniform(0.02, 0.2))
            continue
        return phase, r


class Ledger:
    """What the clients were told, to compare with the database."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ok = collections.defaultdict(list)  # kind -> [(phase, card_id, effect id)]

    def add(self, kind, phase, card, effect):
        with self.lock:
            self.ok[kind].append((phase, card, effect))


LEDGER = Ledger()


def client(n, server, tokens, cards, stations, runs, stop):
    """Loops over keyed operations on cards of its own."""
    s = requests.Session()
    rnd = random.Random(n)
    op_h = {"Authorization": "Bearer " + tokens["operator"]}
    admin_h = {"Authorization": "Bearer " + tokens["admin"]}
    first, last = stations[0], stations[-1]
    while not stop.is_set():
        card = rnd.choice(cards)
        pick = rnd.random()
        if pick < 0.4:
            phase, r = keyed(s, server, "POST", V1 + "/cards/recharge", {"card_id": card, "amount": 1000}, op_h)
            if r is not None and r.status_code == 201:
                LEDGER.add("recharge", phase, card, r.json()["recharge_id"])
            elif r is not None:
                FAILURES.append("recharge of card %d: %d %s" % (card, r.status_code, r.text[:200]))
        elif pick < 0.75:
            phase, r = keyed(s, server, "POST", V1 + "/trips/start",
                             {"card_id": card, "route_id": ROUTE, "boarding_station_id": first}, op_h)
            if r is None:
                continue
            if r.status_code != 201:
                FAILURES.append("tap-in of card %d: %d %s" % (card, r.status_code, r.text[:200]))
                continue
            trip = r.json()["trip_id"]
            LEDGER.add("trip", phase, card, trip)
            phase, r = keyed(s, server, "POST", V1 + "/trips/end", {"trip_id": trip, "disembarking_station_id": last},
                             op_h)
            if r is None or r.status_code != 200:
                FAILURES.append("tap-out of trip %d: %s" % (trip, r and (r.status_code, r.text[:200])))
        else:
            run = rnd.choice(runs)
            phase, r = keyed(s, server, "POST", V1 + "/rail/bookings",
                             {"run_id": run, "seat_count": 1, "class": "standard", "card_id": card}, admin_h)
            if r is not None and r.status_code == 201:
                LEDGER.add("booking", phase, card, r.json()["booking_id"])
            elif r is not None and r.status_code != 409:  # a full run is a fair answer
                FAILURES.append("booking on run %d: %d %s" % (run, r.status_code, r.text[:200]))
    # a card of this client may be left with an open trip: every tap-in has its tap-out above


def login(server, email, password):
    deadline = time.time() + 30
    while True:
        r = requests.post(server.url + V1 + "/auth/login", json={"email": email, "password": password}, timeout=15)
        if r.status_code == 200:
            return r.json()["access_token"]
        assert time.time() < deadline, r.text
        time.sleep(0.2)


def probe_recovery(server, tokens, card, since):
    """Seconds from `since` until a keyed recharge is answered 2xx."""
    s = requests.Session()
    h = {"Authorization": "Bearer " + tokens["operator"], "Idempotency-Key": uuid.uuid4().hex}
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            r = s.post(server.url + V1 + "/cards/recharge", json={"card_id": card, "amount": 1000}, headers=h,
                       timeout=5)
            if r.status_code == 201:
                LEDGER.add("recharge", STATS.current(), card, r.json()["recharge_id"])
                return time.time() - since
        except requests.RequestException:
            pass
        time.sleep(0.05)
    FAILURES.append("no recovery within 60 s")
    return float("nan")


def flood(server, seconds, burst=256):
    """Fills the job queue: bursts of connections that each send one read
    reaching a worker (uncached, varied) at the same instant, more than the
    workers and the bounded queue hold together, so that the queue overflows
    however fast this machine's workers are."""
    stop = time.time() + seconds
    answered = collections.Counter()
    while time.time() < stop:
        socks = []
        for _ in range(burst):
            try:
                socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=ATTEMPT_TIMEOUT_S))
            except OSError:
                answered["error"] += 1
        for s in socks:  # all connected first: the requests then arrive together
            path = V1 + "/stations?limit=%d&cursor=%d" % (random.randint(1, 100), random.randint(1, 10 ** 9))
            s.sendall(("GET %s HTTP/1.1\r\nHost: faults\r\nConnection: close\r\n\r\n" % path).encode())
        for s in socks:
            try:
                head = b""
                while b"\r\n" not in head:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                status = head.split(b" ", 2)[1] if head.startswith(b"HTTP/1.1 ") else b""
                answered[int(status) if status.isdigit() else "error"] += 1
            except OSError:
                answered["error"] += 1
            finally:
                s.close()
    return answered


def main():
    os.makedirs(os.environ["FAULTS_DIR"], exist_ok=True)
    db = psycopg2.connect(os.environ["DATABASE_URL"])
    db.autocommit = True
    cur = db.cursor()
    server = Transitd()
    # whatever happens to the suite, the server it started does not outlive it
    atexit.register(lambda: server.proc and server.proc.poll() is None and server.proc.kill())
    server.start()
    tokens = {"operator": login(server, "operator@transitd.local", "operator-change-me"),
              "admin": login(server, "admin@transitd.local", "admin-change-me")}
    op_h = {"Authorization": "Bearer " + tokens["operator"]}
    # cards of the suite's own, funded so that fares and seats are always paid:
    # a run spends about 2.3 M COP a card (every seat of 20 runs, ~400 trips)
    cards = []
    for _ in range(CLIENTS * 2 + 1):
        r = requests.post(server.url + V1 + "/cards", json={}, headers=op_h)
        assert r.status_code == 201, r.text
        cards.append(r.json()["card_id"])
        for _ in range(12):
            assert requests.post(server.url + V1 + "/cards/recharge", json={"card_id": cards[-1], "amount": 500000},
                                 headers=op_h).status_code == 201
    probe_card = cards[0]
    cur.execute("SELECT station_id FROM route_stops WHERE route_id = %s ORDER BY stop_sequence", (ROUTE,))
    stations = [row[0] for row in cur.fetchall()]
    cur.execute("SELECT run_id FROM rail_runs WHERE train_id = 1 AND departure_time > now() + interval '1 day'"
                " ORDER BY departure_time LIMIT 20")
    runs = [row[0] for row in cur.fetchall()]
    assert stations and runs
    baseline = {}
    for table in ("recharges", "trips", "rail_bookings"):
        cur.execute("SELECT count(*) FROM %s WHERE card_id = ANY(%%s)" % table, (cards,))
        baseline[table] = cur.fetchone()[0]

    stop = threading.Event()
    # each client has cards of its own: a card's tap-in and tap-out are one client's
    mine = cards[1:]
    workers = [threading.Thread(target=client, args=(n, server, tokens, mine[n::CLIENTS], stations, runs, stop))
               for n in range(CLIENTS)]
    for t in workers:
        t.start()
    windows = []  # (phase, start, end, recovery)

    def phase(name, inject):
        STATS.set_phase(name)
        t0 = time.time()
        time.sleep(PHASE_S / 4)
        log("%s: injecting" % name)
        fault_end = inject()
        recovery = probe_recovery(server, tokens, probe_card, fault_end)
        log("%s: recovered in %.2f s" % (name, recovery))
        time.sleep(max(0.0, PHASE_S - (time.time() - t0)))
        windows.append((name, t0, time.time(), recovery))

    def kill_transitd():
        server.kill()
        restarted = time.time()  # recovery counts transitd's own start-up
        server.start()
        return restarted

    def restart_pg():
        services("stop", "pg")
        services("start", "pg")
        return time.time()

    def restart_redis():
        services("stop", "redis")
        services("start", "redis")
        return time.time()

    def pause_redis():
        with open(os.path.join(os.environ["TEST_REDIS_DIR"], "redis.pid")) as f:
            pid = int(f.read())
        os.kill(pid, signal.SIGSTOP)
        time.sleep(5)
        os.kill(pid, signal.SIGCONT)
        return time.time()

    def fill_queue():
        # The stations table locked for 2 s stands for a slow database: the
        # workers wait on it, and the burst must overflow the bounded queue
        # (503 at once) rather than wait without bound. Without the lock the
        # workers of a fast machine drain any burst one client can send.
        locker = psycopg2.connect(os.environ["DATABASE_URL"])
        locker.cursor().execute("LOCK TABLE stations IN ACCESS EXCLUSIVE MODE")
        release = threading.Timer(2.0, locker.rollback)
        release.start()
        answered = flood(server, 4)
        release.join()
        locker.close()
        log("flood answers: %s" % dict(answered))
        if not answered.get(503):
            FAILURES.append("the flood never filled the job queue (no 503): %r" % dict(answered))
        bad = {k: v for k, v in answered.items() if k not in (200, 503)}
        if bad:
            FAILURES.append("flood answers other than 200/503: %r" % bad)
        return time.time()

    STATS.set_phase("warm-up")
    time.sleep(PHASE_S / 2)
    phase("SIGKILL transitd, restart", kill_transitd)
    phase("restart PostgreSQL", restart_pg)
    phase("restart Redis", restart_redis)
    phase("pause Redis 5 s (SIGSTOP)", pause_redis)
    phase("fill the job queue", fill_queue)
    STATS.set_phase("drain")
    stop.set()
    for t in workers:
        t.join(OPERATION_DEADLINE_S + 30)
        if t.is_alive():
            FAILURES.append("a client never finished its operation")

    # --- the database's word (a new connection: the first one saw the restart) -
    db.close()
    db = psycopg2.connect(os.environ["DATABASE_URL"])
    db.autocommit = True
    cur = db.cursor()
    lost = collections.Counter()
    dup = collections.Counter()
    effect_sql = {"recharge": ("recharges", "recharge_id"), "trip": ("trips", "trip_id"),
                  "booking": ("rail_bookings", "booking_id")}
    per_card = collections.defaultdict(collections.Counter)
    for kind, rows in LEDGER.ok.items():
        table, col = effect_sql[kind]
        for ph, card, effect in rows:
            per_card[kind][card] += 1
            cur.execute("SELECT card_id FROM %s WHERE %s = %%s" % (table, col), (effect,))
            got = cur.fetchall()
            if got != [(card,)]:
                lost[ph] += 1
                FAILURES.append("%s %s answered 2xx is not in the database as card %d's: %r" % (kind, effect, card, got))
    for kind, (table, col) in effect_sql.items():
        cur.execute("SELECT card_id, count(*) FROM %s WHERE card_id = ANY(%%s) GROUP BY card_id" % table, (cards,))
        counts = dict(cur.fetchall())
        total = sum(counts.values()) - baseline[{"recharge": "recharges", "trip": "trips",
                                                   "booking": "rail_bookings"}[kind]]
        told = sum(per_card[kind].values())
        if total != told:
            # attribute the extra rows to the phase they were written in
            dup["(all)"] += total - told
            FAILURES.append("%s: %d rows in the database, %d operations answered 2xx" % (kind, total, told))
    cur.execute("SELECT card_id, balance, (SELECT coalesce(sum(amount), 0) FROM card_ledger l"
                " WHERE l.card_id = c.card_id) FROM cards c WHERE balance <> (SELECT coalesce(sum(amount), 0)"
                " FROM card_ledger l WHERE l.card_id = c.card_id)")
    for row in cur.fetchall():
        FAILURES.append("card %d: balance %d, ledger %d" % row)
    cur.execute("SELECT seat_id, count(*) FROM rail_booking_seats WHERE active GROUP BY seat_id HAVING count(*) > 1")
    for row in cur.fetchall():
        FAILURES.append("seat %d sold %d times" % row)
    cur.execute("SELECT count(*) FROM trips WHERE card_id = ANY(%s) AND disembarking_time IS NULL", (cards,))
    open_trips = cur.fetchone()[0]
    if open_trips:
        FAILURES.append("%d trips left open (a tap-out lost)" % open_trips)

    # --- the table ------------------------------------------------------------
    head = "| fault | requests | 2xx | 4xx | 503 | refused | hung | other 5xx | lost effects | duplicated effects | recovery |"
    lines = [head, "|" + "---|" * 11]
    names = ["warm-up"] + [w[0] for w in windows] + ["drain"]
    recov = {w[0]: w[3] for w in windows}
    for name in names:
        c = STATS.by_phase.get(name, collections.Counter())
        total = sum(c.values())
        rec = ("%.2f s" % recov[name]) if name in recov else "—"
        lines.append("| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s |" % (
            name, total, c["2xx"], c["4xx"], c["503"], c["refused"], c["hang"], c["5xx"], lost[name],
            dup.get(name, 0), rec))
    all_c = collections.Counter()
    for c in STATS.by_phase.values():
        all_c.update(c)
    lines.append("| **all** | %d | %d | %d | %d | %d | %d | %d | %d | %d | |" % (
        sum(all_c.values()), all_c["2xx"], all_c["4xx"], all_c["503"], all_c["refused"], all_c["hang"],
        all_c["5xx"], sum(lost.values()), sum(dup.values())))
    effects = ", ".join("%d %ss" % (len(v), k) for k, v in sorted(LEDGER.ok.items()))
    summary = ("%s — %d clients, %.0f s per fault; operations answered 2xx: %s; every card's ledger equals its"
               " balance; no seat sold twice." % (datetime.date.today().isoformat(), CLIENTS, PHASE_S, effects))
    table = "\n".join(lines)
    print()
    print(table)
    print()
    print(summary)
    report = os.environ.get("FAULTS_REPORT", os.path.join(ROOT, "build", "faults", "report.md"))
    os.makedirs(os.path.dirname(report), exist_ok=True)
    with open(report, "w") as f:
        f.write(table + "\n\n" + summary + "\n")
    code = server.stop()
    if code != 0:
        FAILURES.append("transitd exited with %s after the suite" % code)
    if FAILURES:
        print("\nFAILED (%d):" % len(FAILURES))
        for f in FAILURES[:40]:
            print("  " + f)
        print("faults: 0 passed, 1 failed")
        return 1
    print("faults: 1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
