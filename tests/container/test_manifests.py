"""The deployment files agree with the binary: every environment variable that
deploy/compose.yaml, deploy/k8s/*.yaml and deploy/Dockerfile give transitd is
one that src/core/config.c reads (and a number is within its bounds),
every port they publish or probe is the one transitd listens on, every probe
path is a GET route of `transitd routes`, and every transitd command they run
is one of `transitd --help`. Needs build/transitd; no container."""
import os
import re
import subprocess

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("TRANSITD_BIN", os.path.join(ROOT, "build", "transitd"))
DEPLOY = os.path.join(ROOT, "deploy")
WILDCARDS = {"0.0.0.0", "::", "[::]"}


def load(*path):
    with open(os.path.join(DEPLOY, *path)) as f:
        return yaml.safe_load(f)


def config_vars():
    """{NAME: (lo, hi) for numbers, None for text} from the settings table
    (src/core/config.c), as `transitd config --markdown` prints it."""
    out = subprocess.run([BIN, "config", "--markdown"], capture_output=True, text=True, check=True).stdout
    found = {}
    for row in out.splitlines()[2:]:
        name, _default, values, meaning = (c.strip() for c in row.strip("|").split(" | ", 3))
        m = re.fullmatch(r"(-?[0-9]+)–(-?[0-9]+)", values)
        bounds = (int(m.group(1)), int(m.group(2))) if m else (0, 1) if values == "0 or 1" else None
        found[name.strip("`")] = bounds
        for older in re.findall(r"\(`([A-Z][A-Z0-9_]*)` is its older name\)", meaning):
            found[older] = bounds
    return found


VARS = config_vars()
DEFAULT_PORT = 8000


def routes():
    out = subprocess.run([BIN, "routes"], capture_output=True, text=True, check=True).stdout
    return {tuple(line.split(None, 1)) for line in out.splitlines() if line.strip()}


def commands():
    """The sub-commands `transitd --help` lists."""
    out = subprocess.run([BIN, "--help"], capture_output=True, text=True, check=True).stdout
    block = out.split("commands:", 1)[1].split("\n\n", 1)[0]
    return {line.split()[0] for line in block.splitlines() if line.strip()}


def compose_value(v):
    """A compose value with ${NAME:-default} resolved to its default; None when it has none."""
    v = str(v)
    m = re.fullmatch(r"\$\{[A-Z0-9_]+(?::?-(.*))?\}", v)
    if m:
        return m.group(1)
    return None if "${" in v else v


def image_env():
    """ENV of the Dockerfile's last stage."""
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages = re.split(r"(?m)^FROM ", text)
    env = {}
    for line in stages[-1].splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", line))
    return env, stages[-1]


def image_cmd():
    """The first word of the Dockerfile's CMD: the transitd command it runs by default."""
    return re.search(r'(?m)^CMD \["([^"]+)"', image_env()[1]).group(1)


def compose_transitd():
    """{service: environment} of the compose services that run the transitd image."""
    out = {}
    for name, svc in load("compose.yaml")["services"].items():
        if str(svc.get("image", "")).startswith("transitd") or "build" in svc:
            env = svc.get("environment") or {}
            if isinstance(env, list):
                env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
            out[name] = (svc, env)
    return out


def k8s_docs():
    docs = []
    for f in sorted(os.listdir(os.path.join(DEPLOY, "k8s"))):
        if f.endswith((".yaml", ".yml")):
            docs += [(f, d) for d in yaml.safe_load_all(open(os.path.join(DEPLOY, "k8s", f))) if d]
    return docs


def k8s_containers():
    for f, d in k8s_docs():
        spec = d.get("spec", {}).get("template", {}).get("spec", {})
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            if c.get("image", "").startswith("transitd"):
                yield f, d, c


def check_var(where, name, value):
    assert name in VARS, "%s: %s is not a transitd variable (transitd config)" % (where, name)
    bounds = VARS[name]
    if bounds and value is not None:
        assert re.fullmatch(r"-?[0-9]+", str(value)), "%s: %s=%r is not an integer" % (where, name, value)
        lo, hi = bounds
        assert (lo is None or int(value) >= lo) and (hi is None or int(value) <= hi), \
            "%s: %s=%s is outside %s..%s" % (where, name, value, lo, hi)


def test_config_vars_were_found():
    # A change of the table's format that this parser no longer understands must fail here, not pass silently.
    for name in ("PORT", "BIND", "DATABASE_URL", "REDIS_URL", "JWT_SECRET", "SHUTDOWN_TIMEOUT", "DB_POOL_SIZE"):
        assert name in VARS, name
    assert VARS["PORT"] == (1, 65535)
    assert VARS["AUTH_FAIL_OPEN"] == (0, 1)
    assert VARS["BIND"] is None


def test_dockerfile():
    env, stage = image_env()
    for name, value in env.items():
        check_var("Dockerfile", name, value)
    assert env.get("BIND") in WILDCARDS, "the image must listen beyond its own loopback"
    exposed = re.findall(r"(?m)^EXPOSE\s+(\d+)", stage)
    assert exposed == [env.get("PORT", str(DEFAULT_PORT))], (exposed, env.get("PORT"))
    paths = re.findall(r"GET (/\S*) HTTP", stage.split("HEALTHCHECK", 1)[1])
    assert paths, "no probe path in the HEALTHCHECK"
    for p in paths:
        assert ("GET", p) in routes(), "HEALTHCHECK probes %s, which is no GET route" % p
    assert image_cmd() in commands()


def test_compose():
    image, _ = image_env()
    services = compose_transitd()
    assert services, "no transitd service in compose.yaml"
    for name, (svc, env) in services.items():
        for var, value in env.items():
            check_var("compose.yaml service %s" % name, var, compose_value(value))
        effective = dict(image, **{k: compose_value(v) for k, v in env.items()})
        port = int(effective.get("PORT") or DEFAULT_PORT)
        for spec in svc.get("ports", []):
            target = int(str(spec).split(":")[-1].split("/")[0])
            assert target == port, "compose %s publishes %s but transitd listens on %d" % (name, spec, port)
            assert effective.get("BIND") in WILDCARDS, "compose %s publishes a port but BIND=%s" % (
                name, effective.get("BIND"))
        run = svc.get("entrypoint") or []
        run = run if isinstance(run, list) else [run]
        cmds = re.findall(r"\btransitd\s+(\S+)", " ".join(run + list(svc.get("command") or [])))
        for c in cmds:
            assert c in commands(), "compose %s runs 'transitd %s'" % (name, c)


def secret_keys():
    return {(d["metadata"]["name"], k) for _, d in k8s_docs() if d.get("kind") == "Secret"
            for k in list(d.get("stringData", {})) + list(d.get("data", {}))}


def test_k8s_secret_names_are_variables():
    keys = secret_keys()
    assert keys
    for _, key in keys:
        check_var("secret.example.yaml", key, None)


def test_k8s_containers():
    image, _ = image_env()
    found = list(k8s_containers())
    assert found, "no transitd container in deploy/k8s"
    secrets = secret_keys()
    for f, doc, c in found:
        where = "%s container %s" % (f, c["name"])
        env = {}
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert (ref["name"], ref["key"]) in secrets, "%s: secret %s has no key %s" % (
                    where, ref["name"], ref["key"])
            check_var(where, e["name"], e.get("value"))
            env[e["name"]] = e.get("value")
        for src in c.get("envFrom", []):
            name = src.get("secretRef", {}).get("name")
            assert name is None or any(s == name for s, _ in secrets), where
        args = c.get("args") or c.get("command") or [image_cmd()]
        assert args[0] in commands(), "%s runs 'transitd %s'" % (where, args[0])

        effective = dict(image, **{k: v for k, v in env.items() if v is not None})
        port = int(effective.get("PORT") or DEFAULT_PORT)
        named = {}
        for p in c.get("ports", []):
            assert p["containerPort"] == port, "%s: containerPort %s, PORT %d" % (where, p["containerPort"], port)
            named[p.get("name")] = p["containerPort"]
        if c.get("ports"):
            assert effective.get("BIND") in WILDCARDS, "%s: BIND=%s" % (where, effective.get("BIND"))
        for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = c.get(kind, {}).get("httpGet")
            if not probe:
                continue
            assert ("GET", probe["path"]) in routes(), "%s: %s path %s is no GET route" % (
                where, kind, probe["path"])
            p = probe["port"]
            assert named.get(p, p) == port, "%s: %s port %s" % (where, kind, p)


def test_k8s_service_targets_the_pods():
    docs = k8s_docs()
    pods = [(d["spec"]["template"]["metadata"]["labels"], c) for f, d, c in k8s_containers()
            if d.get("kind") == "Deployment"]
    services = [d for _, d in docs if d.get("kind") == "Service"]
    assert pods and services
    for svc in services:
        sel = svc["spec"]["selector"]
        matched = [c for labels, c in pods if all(labels.get(k) == v for k, v in sel.items())]
        assert matched, "Service %s selects no transitd pod" % svc["metadata"]["name"]
        for sp in svc["spec"]["ports"]:
            t = sp.get("targetPort", sp["port"])
            for c in matched:
                ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
                assert t in ports or t in ports.values(), "Service port %s targets %s" % (sp["port"], t)
    for d in (d for _, d in docs if d.get("kind") == "PodDisruptionBudget"):
        sel = d["spec"]["selector"]["matchLabels"]
        assert any(all(labels.get(k) == v for k, v in sel.items()) for labels, _ in pods), \
            "PodDisruptionBudget %s selects no transitd pod" % d["metadata"]["name"]


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
