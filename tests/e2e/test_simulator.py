"""`transitd simulate`: each step takes away the arrivals whose time has
come, keeps every route's next hour predicted, and invalidates the arrivals
of the stations it changed, so that the API and the live streams show them."""
import os
import signal
import subprocess
import threading
import time

import requests

from conftest import BIN, ROOT, db_rows, db_scalar, run_cli
from test_live import Stream, port_of

V1 = "/api/v1"
STATION = 12


def step():
    r = run_cli("simulate", "--once")
    assert r.stdout.startswith("simulate: ") and "arrivals passed" in r.stdout, r.stdout + r.stderr
    return r


def test_a_step_reaches_the_api_and_a_live_stream(base, db):
    s = Stream(port_of(base), station=STATION)
    try:
        first = [s.event(), s.event()]
        assert any(ev[1] == "arrivals" for ev in first)
        before = requests.get(base + V1 + "/stations/%d/arrivals" % STATION).json()["arrivals"]
        assert before
        # Take the station's predictions away behind the server's back (no
        # invalidation): only the simulator's step can bring them back.
        with db.cursor() as cur:
            cur.execute("DELETE FROM arrivals WHERE station_id = %s", (STATION,))
        while s.event(0.5):  # the stream's own re-send of its first board
            pass
        t0 = time.time()
        step()
        ev = s.until(lambda e: e[1] == "arrivals" and e[2]["arrivals"], timeout=3)
        assert ev, "no arrivals event after the step"
        assert time.time() - t0 < 3
        after = requests.get(base + V1 + "/stations/%d/arrivals" % STATION).json()
        assert after["arrivals"], "the cached arrivals were not invalidated"
        ids = {a["vehicle_id"] for a in after["arrivals"]}
        assert ev[2]["arrivals"][0]["estimated_arrival_time"] == after["arrivals"][0]["estimated_arrival_time"]
        assert ids and None not in ids
    finally:
        s.close()


def test_arrivals_pass_and_the_hour_stays_predicted(base, db):
    # One arrival due in a second; after it has passed, a step takes it away.
    arrival = db_scalar(db, "UPDATE arrivals SET estimated_arrival_time = now() + interval '1 second'"
                            " WHERE arrival_id = (SELECT min(arrival_id) FROM arrivals WHERE station_id = %s)"
                            " RETURNING arrival_id", STATION)
    time.sleep(1.5)
    step()
    assert db_scalar(db, "SELECT count(*) FROM arrivals WHERE arrival_id = %s", arrival) == 0
    assert db_scalar(db, "SELECT count(*) FROM arrivals WHERE estimated_arrival_time < now() - interval '5 seconds'") == 0
    # Every active route keeps a prediction at every active stop it serves.
    missing = db_rows(db, """
        SELECT rs.route_id, rs.station_id FROM route_stops rs
        JOIN routes r ON r.route_id = rs.route_id AND r.is_active
        JOIN stations s ON s.station_id = rs.station_id AND s.is_active
        WHERE NOT EXISTS (SELECT 1 FROM arrivals a WHERE a.route_id = rs.route_id AND a.station_id = rs.station_id
                          AND a.estimated_arrival_time BETWEEN now() AND now() + interval '60 minutes')""")
    assert not missing, missing[:5]
    # and never a stop predicted twice at one time by the same route
    assert db_scalar(db, """SELECT count(*) FROM (SELECT 1 FROM arrivals GROUP BY route_id, station_id,
                            estimated_arrival_time HAVING count(*) > 1) d""") == 0


def runs_of(seqs):
    """Splits a vehicle's stops (in time order) into runs along the route."""
    runs = [[seqs[0]]]
    for q in seqs[1:]:
        if q > runs[-1][-1]:
            runs[-1].append(q)
        else:
            runs.append([q])
    return runs


def test_each_vehicle_moves_along_its_route(db):
    """In time order, a vehicle calls at the (open) stops of its route in order; only
    its first run may have begun before now, every later one starts at the
    first stop (one vehicle is never on two runs at once)."""
    step()
    rows = db_rows(db, """
        WITH stop AS (SELECT rs.route_id, rs.station_id,
                             row_number() OVER (PARTITION BY rs.route_id ORDER BY rs.stop_sequence) AS n
                      FROM route_stops rs JOIN stations s ON s.station_id = rs.station_id AND s.is_active)
        SELECT a.route_id, a.vehicle_id, array_agg(stop.n ORDER BY a.estimated_arrival_time)
        FROM arrivals a JOIN stop USING (route_id, station_id)
        WHERE a.vehicle_id IS NOT NULL
        GROUP BY 1, 2""")
    active = db_scalar(db, """SELECT count(DISTINCT v.route_id) FROM vehicles v JOIN routes r USING (route_id)
                              WHERE v.is_active AND r.is_active""")
    assert len({r[0] for r in rows}) == active
    for route, vehicle, seqs in rows:
        runs = runs_of(seqs)
        assert all(r[0] == 1 for r in runs[1:]), (route, vehicle, seqs)


def test_the_loop_steps_and_stops_on_sigterm(database):
    env = dict(os.environ, SIMULATE_INTERVAL_MS="200", LOG_LEVEL="debug")
    p = subprocess.Popen([BIN, "simulate"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    # three steps, however slow the machine; then SIGTERM ends it cleanly
    killer = threading.Timer(60, p.kill)
    killer.start()
    seen = []
    for line in p.stdout:
        seen.append(line)
        if sum("arrivals passed" in l for l in seen) >= 3:
            break
    killer.cancel()
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=10)
    out = "".join(seen) + out
    assert p.returncode == 0, out
    assert out.count("arrivals passed") >= 3, out


def test_bad_arguments(database):
    assert run_cli("simulate", "--twice", check=False).returncode == 2
    assert run_cli("simulate", env={"SIMULATE_INTERVAL_MS": "5"}, check=False).returncode == 2
