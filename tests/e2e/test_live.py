"""Live station boards: GET /api/v1/stations/{id}/live as Server-Sent Events.
Events arrive in order, a change reaches the stream (on this and on another
instance) without a reconnect, a reconnect with Last-Event-ID resumes, streams
are bounded, and SIGTERM ends them cleanly."""
import json
import signal
import socket
import time

import requests

from conftest import admin_headers

V1 = "/api/v1"
STATION = 7


class Stream:
    """One SSE connection read with a plain socket."""

    def __init__(self, port, station=STATION, last_event_id=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        extra = "Last-Event-ID: %s\r\n" % last_event_id if last_event_id else ""
        self.sock.sendall(("GET %s/stations/%d/live HTTP/1.1\r\nHost: e2e\r\nAccept: text/event-stream\r\n%s\r\n"
                           % (V1, station, extra)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill(10)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def event(self, timeout=5):
        """The next event as (id, name, data), skipping comments; None at timeout."""
        deadline = time.time() + timeout
        while True:
            while b"\n\n" not in self.buf:
                left = deadline - time.time()
                if left <= 0:
                    return None
                try:
                    self._fill(left)
                except socket.timeout:
                    return None
            block, _, self.buf = self.buf.partition(b"\n\n")
            fields = {}
            for line in block.decode().split("\n"):
                if line.startswith(":") or not line:
                    continue
                k, _, v = line.partition(": ")
                fields[k] = v
            if "event" in fields:
                return int(fields["id"]), fields["event"], json.loads(fields["data"])

    def until(self, pred, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            ev = self.event(deadline - time.time())
            if ev and pred(ev):
                return ev
        return None

    def close(self):
        self.sock.close()


def port_of(url):
    return int(url.rsplit(":", 1)[1])


def create_alert(base, message, station=STATION):
    r = requests.post(base + V1 + "/alerts", headers=admin_headers(base), timeout=10,
                      json={"message": message, "severity": "WARNING", "station_id": station})
    assert r.status_code == 201, r.text
    return r.json()["alert_id"]


def has_alert(alert_id):
    return lambda ev: ev[1] == "alerts" and alert_id in [a["alert_id"] for a in ev[2]["alerts"]]


def test_stream_starts_with_the_board_and_events_are_in_order(base):
    s = Stream(port_of(base))
    try:
        assert s.status == 200
        assert s.headers["content-type"] == "text/event-stream"
        assert "content-length" not in s.headers
        first = [s.event(), s.event()]
        assert {name for _, name, _ in first} == {"arrivals", "alerts"}
        assert all(doc["station_id"] == STATION for _, _, doc in first)
        ids = [i for i, _, _ in first]
        for _ in range(2):
            ev = s.event(2)
            if ev:
                ids.append(ev[0])
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
    finally:
        s.close()


def test_a_new_alert_reaches_the_stream(base):
    s = Stream(port_of(base))
    try:
        s.event(), s.event()
        alert = create_alert(base, "live: a new alert")
        # pushed by the invalidation, not by the 10 s re-send: well before it
        assert s.until(has_alert(alert), timeout=8), "the alert did not reach the stream"
    finally:
        s.close()


def test_a_change_on_another_instance_reaches_the_stream(spawn, base):
    other = spawn()
    s = Stream(other.port)
    try:
        s.event(), s.event()
        alert = create_alert(base, "live: written on the first instance")
        assert s.until(has_alert(alert), timeout=8), "the alert did not cross instances"
    finally:
        s.close()


def test_reconnect_with_last_event_id_resumes(base):
    s = Stream(port_of(base))
    last = max(s.event()[0], s.event()[0])
    s.close()
    alert = create_alert(base, "live: while the client was away")
    s = Stream(port_of(base), last_event_id=last)
    try:
        got = s.until(has_alert(alert), timeout=3)
        assert got and got[0] > last
    finally:
        s.close()


def test_unknown_station_is_404(base):
    r = requests.get(base + V1 + "/stations/999999/live", timeout=5)
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("application/problem+json")


def test_streams_are_bounded_per_client_and_per_instance(spawn):
    s = spawn(STREAMS_PER_CLIENT=2, STREAMS_MAX=3)
    held = [Stream(s.port), Stream(s.port)]
    try:
        third = Stream(s.port)
        assert third.status == 429
        assert third.headers["content-type"].startswith("application/problem+json")
        third.close()
        held[0].close()
        time.sleep(0.3)
        held[0] = Stream(s.port)  # a slot came back
        assert held[0].status == 200
    finally:
        for h in held:
            h.close()
    # the instance bound (here reached from one address once the others close)
    t = spawn(STREAMS_PER_CLIENT=10, STREAMS_MAX=1)
    one = Stream(t.port)
    try:
        assert one.status == 200
        two = Stream(t.port)
        assert two.status == 503
        two.close()
    finally:
        one.close()


def test_sigterm_ends_streams_cleanly(spawn):
    s = spawn()
    st = Stream(s.port)
    st.event(), st.event()
    s.proc.send_signal(signal.SIGTERM)
    ended = False
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            st._fill(1)
        except EOFError:
            ended = True
            break
        except socket.timeout:
            continue
    st.close()
    assert ended, "the stream was not closed on SIGTERM"
    assert s.proc.wait(timeout=10) == 0


def test_an_alert_that_ends_at_its_time_leaves_the_stream(base):
    """No write announces that an alert has ended by its end_timestamp: the
    board reads the alerts again at that time."""
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
    r = requests.post(base + V1 + "/alerts", headers=admin_headers(base), timeout=10,
                      json={"message": "live: ends by itself", "severity": "INFO", "station_id": STATION,
                            "end_timestamp": end})
    assert r.status_code == 201, r.text
    alert = r.json()["alert_id"]
    s = Stream(port_of(base))
    try:
        assert s.until(has_alert(alert), timeout=3), "the alert is not on the board"
        gone = s.until(lambda ev: ev[1] == "alerts" and alert not in [a["alert_id"] for a in ev[2]["alerts"]],
                       timeout=6)
        assert gone, "the ended alert stayed on the board"
    finally:
        s.close()
