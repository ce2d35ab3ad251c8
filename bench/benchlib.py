"""Pieces the Python benchmarks share: private services, processes stopped by
PID, HTTP on loopback, wrk and pgbench runs, and CPU time read from /proc.

Nothing here knows a section or an endpoint of transitd; bench/app.py does.
The PostgreSQL and Redis servers are started by scripts/services.sh, so that
the one place that knows how to run PostgreSQL as root (the `postgres` user,
data relocated when it cannot enter the checkout) stays the shell one.
"""
import http.client as httpclient
import os
import re
import signal
import socket
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LUA = os.path.join(ROOT, "bench", "lua")
HZ = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A benchmark cannot go on; the message says why (printed as one line)."""


def services(script):
    """Runs SCRIPT in bash after sourcing scripts/services.sh; returns stdout.
    Raises BenchError with stderr when it fails."""
    p = subprocess.run(["bash", "-c", "source scripts/services.sh && " + script], cwd=ROOT, text=True,
                       capture_output=True)
    if p.returncode != 0:
        raise BenchError("%s failed: %s" % (script, (p.stderr or p.stdout).strip()[-500:]))
    return p.stdout


def port_busy(port):
    """Whether something listens on 127.0.0.1:PORT."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ---- HTTP ------------------------------------------------------------------

def http(method, url, body=None, token=None, headers=None, timeout=10):
    """One request on a new connection: (status, headers dict with lower-case
    names, body bytes). Connection errors raise OSError."""
    rest = url.split("//", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    conn = httpclient.HTTPConnection(host, int(port or 80), timeout=timeout)
    try:
        h = dict(headers or {})
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        if token:
            h["Authorization"] = "Bearer " + token
        conn.request(method, "/" + path, body, h)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def get_text(url, timeout=3):
    """The body of a GET as text, "" when the server does not answer."""
    try:
        return http("GET", url, timeout=timeout)[2].decode()
    except (OSError, httpclient.HTTPException):
        return ""


def wait_http(url, secs, proc=None):
    """Until URL answers 200 (True), or SECS pass or PROC exits (False)."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            if http("GET", url, timeout=1)[0] == 200:
                return True
        except (OSError, httpclient.HTTPException):
            pass
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def metric_values(text):
    """Prometheus text: {series: value} of the lines without a label set and
    {series{labels}: value} of the others."""
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


# ---- processes ---------------------------------------------------------------

def start(argv, log_path, env=None):
    """Starts a server in its own session (so a Ctrl-C at the terminal reaches
    only this driver, which stops it by PID), output to LOG_PATH."""
    with open(log_path, "w") as log:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def stop(proc, name, secs=15, note=print):
    """TERM, wait SECS, then KILL: only processes this driver started."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(secs)
    except subprocess.TimeoutExpired:
        note("%s (pid %d) did not stop in %d s; killing it" % (name, proc.pid, secs))
        proc.kill()
        proc.wait()


def nginx_conf(directory, port, locations):
    """DIR/nginx.conf from bench/nginx.conf.in: a private nginx (no daemon;
    logs, pid and temp files under DIR) serving LOCATIONS on 127.0.0.1:PORT."""
    with open(os.path.join(ROOT, "bench", "nginx.conf.in")) as f:
        conf = f.read()
    for name, value in (("@USER@", "user root;" if os.getuid() == 0 else ""), ("@DIR@", directory),
                        ("@PORT@", str(port)), ("@LOCATIONS@", locations)):
        conf = conf.replace(name, value)
    with open(os.path.join(directory, "nginx.conf"), "w") as f:
        f.write(conf)


# ---- CPU time ------------------------------------------------------------------

def _stat_fields(pid):
    """/proc/PID/stat after the command name: [state, ppid, ...]; None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(")") + 2:].split()


def proc_ticks(pid, tree=False):
    """CPU ticks of PID; with TREE also its reaped children's and its live
    children's (PostgreSQL's backends, nginx's workers are its children)."""
    f = _stat_fields(pid)
    if f is None:
        return 0
    if not tree:
        return int(f[11]) + int(f[12])
    total = int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    for name in os.listdir("/proc"):
        if name.isdigit():
            k = _stat_fields(int(name))
            if k is not None and k[1] == str(pid):
                total += int(k[11]) + int(k[12])
    return total


def machine_ticks():
    """(busy, total) ticks of the whole machine since boot."""
    with open("/proc/stat") as f:
        for line in f:
            v = line.split()
            if v[0] == "cpu":
                n = [int(x) for x in v[1:9]]
                busy = n[0] + n[1] + n[2] + n[5] + n[6] + n[7]
                return busy, busy + n[3] + n[4]
    return 0, 0


# ---- load tools ----------------------------------------------------------------

def bench_line(text):
    """The last "BENCH k=v ..." line of a tool's output as a dict of strings."""
    lines = re.findall(r"^BENCH (.*)$", text, re.M)
    if not lines:
        return None
    return dict(kv.split("=", 1) for kv in lines[-1].split())


def run_wrk(url, script, conns, seconds, out_path, env, threads=2, latency=True):
    """wrk -s SCRIPT against URL, output to OUT_PATH. Returns (BENCH line of
    the script's done() as a dict, wrk's own CPU seconds). wrk's output is
    also kept whole in OUT_PATH (its --latency percentiles among it)."""
    argv = ["wrk", "-t%d" % threads, "-c%d" % conns, "--timeout", "10s", "-s", script, "-d%ds" % seconds]
    if latency:
        argv.append("--latency")
    argv.append(url)
    with open(out_path, "w") as out:
        p = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            # wait4 gives the CPU time of this child alone, whatever else is reaped meanwhile.
            _, status, usage = os.wait4(p.pid, 0)
        except BaseException:
            p.kill()
            p.wait()
            raise
        p.returncode = os.waitstatus_to_exitcode(status)
    text = open(out_path).read()
    if p.returncode != 0:
        raise BenchError("wrk failed against %s: %s" % (url, "\n".join(text.splitlines()[-3:])))
    return bench_line(text), usage.ru_utime + usage.ru_stime


def run_pgbench(argv, out_path):
    """pgbench ARGV, output to OUT_PATH: (tps rounded as text, average latency
    in ms as pgbench printed it)."""
    with open(out_path, "w") as out:
        rc = subprocess.run(["pgbench", *argv], stdout=out, stderr=subprocess.STDOUT).returncode
    text = open(out_path).read()
    if rc != 0:
        raise BenchError("pgbench failed: %s" % "\n".join(text.splitlines()[-5:]))
    tps = re.search(r"^tps = ([0-9.]+)", text, re.M)
    lat = re.search(r"^latency average = (\S+)", text, re.M)
    return ("%.0f" % float(tps.group(1)) if tps else "0"), (lat.group(1) if lat else "")


def median(values):
    values = sorted(values)
    n = len(values)
    if not n:
        return 0.0
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2
