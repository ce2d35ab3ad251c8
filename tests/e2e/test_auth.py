"""Users and tokens: register, login, refresh rotation and reuse detection,
logout and revocation (across instances, across restarts, with Redis down),
forged tokens, login brute-force limits and the per-client budget."""
import base64
import hashlib
import hmac
import json
import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import (DEMO_ACCOUNTS, assert_problem, bearer, db_scalar, login, poll, redis_cli, run_cli,
                      services)

V1 = "/api/v1"
ME = V1 + "/users/me"


# ----------------------------------------------------------------- helpers

def unique_email(tag="user"):
    return "%s.%s@example.test" % (tag, uuid.uuid4().hex[:12])


def register(base, email=None, password="correct-horse-battery", first="Test", last="User"):
    email = email or unique_email()
    r = requests.post(base + V1 + "/auth/register",
                      json={"email": email, "password": password, "first_name": first, "last_name": last})
    assert r.status_code == 201, r.text
    return email, password, r.json()["user_id"]


def new_login(base):
    """A fresh account and one login of it: (pair, email, password, user_id)."""
    email, password, uid = register(base)
    return login(base, email, password), email, password, uid


def b64u(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64u_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(token):
    h, p, s = token.split(".")
    return json.loads(b64u_decode(h)), json.loads(b64u_decode(p)), s


def secret():
    return os.environ["JWT_SECRET"]


def forge(header, payload, key=None, digest=hashlib.sha256):
    """A JWT with this header and payload, HMAC-signed with key (the server's
    secret unless told); key=b"" with digest=None leaves the signature empty."""
    h = b64u(json.dumps(header, separators=(",", ":")).encode())
    p = b64u(json.dumps(payload, separators=(",", ":")).encode())
    if digest is None:
        return "%s.%s." % (h, p)
    k = (secret() if key is None else key).encode()
    sig = hmac.new(k, ("%s.%s" % (h, p)).encode(), digest).digest()
    return "%s.%s.%s" % (h, p, b64u(sig))


def auth_ready(url, headers, timeout=10):
    """A server just started may answer 503 until it has loaded the revocation
    list from Redis (failing closed); waits that out and returns the answer."""
    poll(lambda: requests.get(url + ME, headers=headers, timeout=5).status_code != 503, timeout)
    return requests.get(url + ME, headers=headers)


def assert_401_bearer(r):
    assert_problem(r, 401, "unauthorized")
    assert "bearer" in r.headers.get("WWW-Authenticate", "").lower(), r.headers


def problem_core(r):
    """The problem body without its per-request members."""
    body = r.json()
    return {k: v for k, v in body.items() if k not in ("request_id", "instance")}


def wait_for_fresh_window(need_s):
    """Rate-limit windows are whole wall-clock minutes: start a test that needs
    need_s seconds inside one window early enough in it."""
    left = 60 - time.time() % 60
    if left < need_s:
        time.sleep(left + 0.3)


def ratelimit_remaining(r, policy):
    m = re.search(r'"%s";r=(\d+);t=(\d+)' % re.escape(policy), r.headers.get("RateLimit", ""))
    assert m, r.headers
    return int(m.group(1))


HS256 = {"alg": "HS256", "typ": "JWT"}


# ------------------------------------------------------------------ register

def test_register_201_shape(base):
    email = "New.Rider.%s@Example.TEST" % uuid.uuid4().hex[:10]
    r = requests.post(base + V1 + "/auth/register", json={
        "email": email, "password": "0123456789", "first_name": "Nueva", "last_name": "Pasajera"})
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert isinstance(body["user_id"], int) and body["user_id"] > 0
    assert body["email"] == email.lower()
    assert body["role"] == "rider"
    assert not any("password" in k for k in body), body
    # Exactly 10 characters is enough, and the account can log in (any case).
    pair = login(base, email.upper(), "0123456789")
    me = requests.get(base + ME, headers=bearer(pair["access_token"]))
    assert me.status_code == 200, me.text
    m = me.json()
    assert m["user_id"] == body["user_id"]
    assert m["email"] == email.lower()
    assert (m["first_name"], m["last_name"], m["role"], m["cards"]) == ("Nueva", "Pasajera", "rider", [])


def test_register_password_stored_as_argon2id(base, db):
    email, _, uid = register(base)
    h = db_scalar(db, "SELECT password_hash FROM users WHERE user_id = %s", uid)
    assert h.startswith("$argon2id$"), h


def test_register_duplicate_email_any_case_409(base):
    email, _, _ = register(base)
    for variant in (email, email.upper(), email.capitalize()):
        r = requests.post(base + V1 + "/auth/register", json={
            "email": variant, "password": "another-password", "first_name": "X", "last_name": "Y"})
        assert_problem(r, 409, "conflict")


def test_register_duplicate_demo_account_409(base):
    r = requests.post(base + V1 + "/auth/register", json={
        "email": "ADMIN@transitd.local", "password": "i-want-to-be-admin", "first_name": "X", "last_name": "Y"})
    assert_problem(r, 409, "conflict")


@pytest.mark.parametrize("password", ["", "short", "123456789"])
def test_register_short_password_422(base, password):
    r = requests.post(base + V1 + "/auth/register", json={
        "email": unique_email(), "password": password, "first_name": "A", "last_name": "B"})
    assert_problem(r, 422, "validation", field="password")


@pytest.mark.parametrize("email", ["", "plainaddress", "a@b", "@example.com", "a@@example.com", "a@b@example.com",
                                   "a b@example.com", "user@", "x" * 250 + "@example.com"])
def test_register_bad_email_422(base, email):
    r = requests.post(base + V1 + "/auth/register", json={
        "email": email, "password": "long-enough-password", "first_name": "A", "last_name": "B"})
    assert_problem(r, 422, "validation", field="email")


@pytest.mark.parametrize("missing", ["email", "password", "first_name", "last_name"])
def test_register_missing_field_422(base, missing):
    body = {"email": unique_email(), "password": "long-enough-password", "first_name": "A", "last_name": "B"}
    del body[missing]
    assert_problem(requests.post(base + V1 + "/auth/register", json=body), 422, "validation", field=missing)


@pytest.mark.parametrize("field,value", [("email", 12345), ("password", 1234567890123), ("first_name", ["A"]),
                                         ("last_name", {"x": 1}), ("email", True), ("password", None)])
def test_register_wrong_type_422(base, field, value):
    body = {"email": unique_email(), "password": "long-enough-password", "first_name": "A", "last_name": "B"}
    body[field] = value
    assert_problem(requests.post(base + V1 + "/auth/register", json=body), 422, "validation", field=field)


def test_register_malformed_and_non_json(base):
    r = requests.post(base + V1 + "/auth/register", data="{not json",
                      headers={"Content-Type": "application/json"})
    assert_problem(r, 400)
    r = requests.post(base + V1 + "/auth/register", data="email=a@b.co&password=xxxxxxxxxxxx",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(r, 415, "unsupported-media-type")


def test_register_sql_in_strings_is_data(base, db):
    before = db_scalar(db, "SELECT count(*) FROM users")
    first = "Robert'); DROP TABLE users;--"
    last = "' OR '1'='1"
    email = "o'brien+%s@example.test" % uuid.uuid4().hex[:8]
    password = "pw' OR 1=1; --"
    _, _, uid = register(base, email=email, password=password, first=first, last=last)
    assert db_scalar(db, "SELECT count(*) FROM users") == before + 1
    pair = login(base, email, password)
    me = requests.get(base + ME, headers=bearer(pair["access_token"])).json()
    assert (me["user_id"], me["email"], me["first_name"], me["last_name"]) == (uid, email, first, last)
    # The injection-shaped password is not a master key for other accounts.
    r = requests.post(base + V1 + "/auth/login", json={"email": "admin@transitd.local", "password": "' OR '1'='1"})
    assert_problem(r, 401, "unauthorized")


# --------------------------------------------------------------------- login

def test_login_200_shape_and_claims(base):
    email, password, uid = register(base)
    r = requests.post(base + V1 + "/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert "no-store" in r.headers.get("Cache-Control", ""), r.headers
    body = r.json()
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert isinstance(body["refresh_token"], str) and len(body["refresh_token"]) >= 32
    assert body["refresh_token"].count(".") == 0, "the refresh token is opaque, not a JWT"
    header, claims, _ = jwt_parts(body["access_token"])
    assert header["alg"] == "HS256"
    for claim in ("sub", "role", "iat", "exp", "jti", "fam"):
        assert claim in claims, claims
    assert claims["sub"] == str(uid)
    assert claims["role"] == "rider"
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert abs(claims["iat"] - time.time()) < 60
    # Two logins: two families, two token ids.
    other = login(base, email, password)
    _, claims2, _ = jwt_parts(other["access_token"])
    assert claims2["jti"] != claims["jti"] and claims2["fam"] != claims["fam"]
    assert other["refresh_token"] != body["refresh_token"]


def test_login_refresh_token_stored_hashed(base):
    pair, _, _, _ = new_login(base)
    rt = pair["refresh_token"]
    assert redis_cli("KEYS", "*%s*" % rt) == "", "refresh token stored in clear in a key name"
    in_values = redis_cli("EVAL", "local n = 0 for _, k in ipairs(redis.call('KEYS', '*')) do "
                          "if redis.call('TYPE', k).ok == 'string' and "
                          "string.find(redis.call('GET', k), ARGV[1], 1, true) then n = n + 1 end end return n",
                          "0", rt)
    assert in_values == "0", "refresh token stored in clear in a value"
    digests = {hashlib.blake2b(rt.encode(), digest_size=32).hexdigest(), hashlib.sha256(rt.encode()).hexdigest()}
    keys = redis_cli("--scan", "--pattern", "*rt:*").split()
    assert any(k.rsplit(":", 1)[-1] in digests for k in keys), "no key named by the refresh token's hash"


def test_login_wrong_password_and_unknown_email_same_401(base):
    email, _, _ = register(base)
    wrong = requests.post(base + V1 + "/auth/login", json={"email": email, "password": "not-the-password"})
    unknown = requests.post(base + V1 + "/auth/login",
                            json={"email": unique_email("nobody"), "password": "not-the-password"})
    not_email = requests.post(base + V1 + "/auth/login", json={"email": "no-at-sign", "password": "whatever-pw"})
    for r in (wrong, unknown):
        assert_problem(r, 401, "unauthorized")
    assert problem_core(wrong) == problem_core(unknown)
    assert wrong.headers["Content-Type"] == unknown.headers["Content-Type"]
    assert not_email.status_code in (401, 422), not_email.text
    if not_email.status_code == 401:
        assert problem_core(not_email) == problem_core(wrong)


def test_login_email_case_insensitive(base):
    email, password, uid = register(base)
    pair = login(base, email.upper(), password)
    assert jwt_parts(pair["access_token"])[1]["sub"] == str(uid)


@pytest.mark.parametrize("body,field", [({"password": "x" * 12}, "email"), ({"email": "a@example.test"}, "password"),
                                        ({"email": 1, "password": "x" * 12}, "email"),
                                        ({"email": "a@example.test", "password": 12}, "password")])
def test_login_validation_422(base, body, field):
    assert_problem(requests.post(base + V1 + "/auth/login", json=body), 422, "validation", field=field)


def test_users_me_with_token(base, rider):
    r = requests.get(base + ME, headers=rider)
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["email"] == DEMO_ACCOUNTS["rider"][0]
    assert me["role"] == "rider"
    assert {1, 2} <= set(me["cards"])
    assert 3 not in me["cards"]
    for key in ("user_id", "first_name", "last_name"):
        assert key in me
    assert not any("password" in k for k in me)


def test_users_me_roles(base, admin, operator):
    assert requests.get(base + ME, headers=admin).json()["role"] == "admin"
    assert requests.get(base + ME, headers=operator).json()["role"] == "operator"


# ------------------------------------------------------------------- refresh

def refresh(base, token):
    return requests.post(base + V1 + "/auth/refresh", json={"refresh_token": token})


def test_refresh_rotates_and_reuse_revokes_family(base):
    first, _, _, uid = new_login(base)
    r = refresh(base, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["token_type"] == "bearer" and second["expires_in"] > 0
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    c1, c2 = jwt_parts(first["access_token"])[1], jwt_parts(second["access_token"])[1]
    assert c2["fam"] == c1["fam"], "a rotation stays in the login family"
    assert c2["jti"] != c1["jti"] and c2["sub"] == str(uid)
    assert requests.get(base + ME, headers=bearer(second["access_token"])).status_code == 200
    # The new refresh token rotates once more.
    r = refresh(base, second["refresh_token"])
    assert r.status_code == 200, r.text
    third = r.json()
    assert requests.get(base + ME, headers=bearer(third["access_token"])).status_code == 200

    # Replaying a rotated token: 401, and every token of the login dies.
    assert_problem(refresh(base, first["refresh_token"]), 401, "unauthorized")
    for access in (second["access_token"], third["access_token"], first["access_token"]):
        assert_401_bearer(requests.get(base + ME, headers=bearer(access)))
    assert_problem(refresh(base, third["refresh_token"]), 401, "unauthorized")


def test_refresh_reuse_leaves_other_logins_alone(base):
    a, email, password, _ = new_login(base)
    b = login(base, email, password)
    assert refresh(base, a["refresh_token"]).status_code == 200
    assert refresh(base, a["refresh_token"]).status_code == 401
    assert requests.get(base + ME, headers=bearer(b["access_token"])).status_code == 200
    assert refresh(base, b["refresh_token"]).status_code == 200


@pytest.mark.parametrize("token", ["garbage", "x" * 43, "a.b.c"])
def test_refresh_unknown_token_401(base, token):
    assert_problem(refresh(base, token), 401, "unauthorized")


def test_refresh_with_access_token_401(base):
    pair, _, _, _ = new_login(base)
    r = refresh(base, pair["access_token"])
    assert r.status_code in (401, 422), r.text  # longer than any refresh token: 422 naming it is fine
    assert_problem(r, r.status_code)


def test_refresh_validation(base):
    assert_problem(requests.post(base + V1 + "/auth/refresh", json={}), 422, "validation", field="refresh_token")
    assert_problem(requests.post(base + V1 + "/auth/refresh", json={"refresh_token": 5}), 422, "validation",
                   field="refresh_token")


def test_role_change_ends_the_users_logins(base, admin):
    """Issue 14: every token was issued for the old role, so a change of role
    ends the user's logins (it used to let the refresh token mint the new role)."""
    pair, email, password, uid = new_login(base)
    try:
        r = requests.patch(base + V1 + "/users/%d" % uid, json={"role": "operator"}, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["role"] == "operator"
        assert_401_bearer(requests.get(base + ME, headers=bearer(pair["access_token"])))
        assert refresh(base, pair["refresh_token"]).status_code == 401
        new = login(base, email, password)
        assert jwt_parts(new["access_token"])[1]["role"] == "operator"
        assert requests.get(base + ME, headers=bearer(new["access_token"])).json()["role"] == "operator"
        # The same role again changes nothing and ends nothing.
        r = requests.patch(base + V1 + "/users/%d" % uid, json={"role": "operator"}, headers=admin)
        assert r.status_code == 200, r.text
        assert requests.get(base + ME, headers=bearer(new["access_token"])).status_code == 200
        assert refresh(base, new["refresh_token"]).status_code == 200
    finally:
        requests.patch(base + V1 + "/users/%d" % uid, json={"role": "rider"}, headers=admin)


def test_concurrent_refresh_exactly_one_wins(base):
    pair, _, _, _ = new_login(base)
    n = 100
    barrier = threading.Barrier(n)

    def one(_):
        s = requests.Session()
        barrier.wait(timeout=30)
        try:
            return s.post(base + V1 + "/auth/refresh", json={"refresh_token": pair["refresh_token"]},
                          timeout=30).status_code
        finally:
            s.close()

    with ThreadPoolExecutor(n) as pool:
        statuses = list(pool.map(one, range(n)))
    assert statuses.count(200) == 1, sorted(statuses)
    assert statuses.count(401) == n - 1, sorted(statuses)


# -------------------------------------------------------------------- logout

def test_logout_revokes_access_and_refresh(base):
    pair, email, password, _ = new_login(base)
    other = login(base, email, password)
    h = bearer(pair["access_token"])
    assert requests.get(base + ME, headers=h).status_code == 200
    r = requests.post(base + V1 + "/auth/logout", headers=h)
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_401_bearer(requests.get(base + ME, headers=h))
    assert_401_bearer(requests.post(base + V1 + "/auth/logout", headers=h))
    assert_problem(refresh(base, pair["refresh_token"]), 401, "unauthorized")
    # Another login of the same user is a different family: untouched.
    assert requests.get(base + ME, headers=bearer(other["access_token"])).status_code == 200
    assert refresh(base, other["refresh_token"]).status_code == 200


def test_logout_after_refresh_kills_the_rotated_pair(base):
    pair, _, _, _ = new_login(base)
    new = refresh(base, pair["refresh_token"]).json()
    assert requests.post(base + V1 + "/auth/logout", headers=bearer(new["access_token"])).status_code == 204
    assert_401_bearer(requests.get(base + ME, headers=bearer(new["access_token"])))
    assert_401_bearer(requests.get(base + ME, headers=bearer(pair["access_token"])))
    assert refresh(base, new["refresh_token"]).status_code == 401


def test_logout_requires_token(base):
    assert_401_bearer(requests.post(base + V1 + "/auth/logout"))


def test_logout_mirrored_on_other_instance(base, spawn):
    other = spawn()
    pair, _, _, _ = new_login(base)
    h = bearer(pair["access_token"])
    assert auth_ready(other.url, h).status_code == 200
    assert requests.post(base + V1 + "/auth/logout", headers=h).status_code == 204
    assert poll(lambda: requests.get(other.url + ME, headers=h, timeout=5).status_code == 401, 3), \
        "the other instance still accepts a logged-out token"
    assert_401_bearer(requests.get(other.url + ME, headers=h))


def test_revocation_survives_restart(base, spawn):
    a = spawn()
    pair, email, password, _ = new_login(a.url)
    h = bearer(pair["access_token"])
    assert auth_ready(a.url, h).status_code == 200
    assert requests.post(a.url + V1 + "/auth/logout", headers=h).status_code == 204
    assert a.stop() == 0, a.logs()
    b = spawn()
    # B never heard the logout: it must learn it from Redis before it answers.
    assert_401_bearer(auth_ready(b.url, h))
    assert refresh(b.url, pair["refresh_token"]).status_code == 401
    fresh = login(b.url, email, password)
    assert requests.get(b.url + ME, headers=bearer(fresh["access_token"])).status_code == 200


def test_revocations_outlive_a_redis_restart(base, spawn):
    """Redis keeps no snapshot: restarted, it is empty. The instances give it
    back the revocations they hold, so one started afterwards, which learns
    them only from Redis, still refuses a logged-out token."""
    pair, _, _, _ = new_login(base)
    h = bearer(pair["access_token"])
    jti = jwt_parts(pair["access_token"])[1]["jti"]
    assert requests.post(base + V1 + "/auth/logout", headers=h).status_code == 204
    try:
        services("stop", "redis")
    finally:
        services("start", "redis")
        restored = poll(lambda: redis_cli("ZSCORE", "transitd:revoked", "j:" + jti), 40)
        stable = redis_work_recovered(base, timeout=40)
    assert restored, "no instance gave the restarted Redis its revocations back"
    assert stable, "session look-ups still fail after Redis came back"
    fresh = spawn()
    assert_401_bearer(auth_ready(fresh.url, h))


def test_cache_clear_keeps_sessions_and_revocations(base, admin, spawn):
    """POST /cache/clear empties caches, not logins, revocations or limits."""
    kept, _, _, _ = new_login(base)
    gone, _, _, _ = new_login(base)
    assert requests.post(base + V1 + "/auth/logout", headers=bearer(gone["access_token"])).status_code == 204
    r = requests.post(base + V1 + "/cache/clear", headers=admin)
    assert r.status_code == 204, r.text
    fresh = spawn()  # knows the revocation only from Redis
    assert_401_bearer(auth_ready(fresh.url, bearer(gone["access_token"])))
    assert refresh(base, gone["refresh_token"]).status_code == 401
    r = refresh(fresh.url, kept["refresh_token"])
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------ forgeries

@pytest.fixture(scope="module")
def victim(base):
    """A rider's real token and claims, for forging variants of it."""
    pair, _, _, uid = new_login(base)
    header, claims, sig = jwt_parts(pair["access_token"])
    return {"token": pair["access_token"], "header": header, "claims": claims, "sig": sig, "uid": uid}


def test_forging_helper_is_sound(base, victim):
    """Re-signing the genuine claims with the real secret is accepted: the 401s
    below are about what was changed, not about a broken forger."""
    token = forge(HS256, victim["claims"])
    r = requests.get(base + ME, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == victim["uid"]


def forgeries(victim):
    c = victim["claims"]
    now = int(time.time())
    h, p, sig = victim["token"].split(".")
    admin_claims = dict(c, role="admin")
    out = {
        "alg-none": forge({"alg": "none", "typ": "JWT"}, c, digest=None),
        "alg-None": forge({"alg": "None", "typ": "JWT"}, c, digest=None),
        "alg-none-with-sig": forge({"alg": "none", "typ": "JWT"}, c),
        "alg-missing": forge({"typ": "JWT"}, c),
        "alg-hs256-lowercase": forge({"alg": "hs256", "typ": "JWT"}, c),
        "alg-HS512-right-secret": forge({"alg": "HS512", "typ": "JWT"}, c, digest=hashlib.sha512),
        "alg-HS384-right-secret": forge({"alg": "HS384", "typ": "JWT"}, c, digest=hashlib.sha384),
        "alg-RS256-header": forge({"alg": "RS256", "typ": "JWT"}, c),
        "alg-duplicate-key": "%s.%s.%s" % (b64u(b'{"alg":"none","alg":"HS256"}'), p, sig),
        "bad-signature": "%s.%s.%s" % (h, p, sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]),
        "no-signature": "%s.%s." % (h, p),
        "signature-of-other-token": "%s.%s.%s" % (h, b64u(json.dumps(dict(c, jti="x" * 43)).encode()), sig),
        "expired": forge(HS256, dict(c, iat=now - 3600, exp=now - 10)),
        "exp-string": forge(HS256, dict(c, exp=str(now + 600))),
        "role-unknown": forge(HS256, dict(c, role="superuser")),
        "sub-not-a-number": forge(HS256, dict(c, sub="3 OR 1=1")),
        "sub-zero": forge(HS256, dict(c, sub="0")),
        "escalation-unsigned": "%s.%s.%s" % (h, b64u(json.dumps(admin_claims).encode()), sig),
        "escalation-wrong-secret": forge(HS256, admin_claims, key="not-the-secret-" + "x" * 32),
        "escalation-empty-secret": forge(HS256, admin_claims, key=""),
        "garbage": "garbage",
        "two-parts": "%s.%s" % (h, p),
        "four-parts": "%s.%s.%s.%s" % (h, p, sig, sig),
        "header-not-json": "%s.%s.%s" % (b64u(b"not json"), p, sig),
        "huge": "a" * 4000,
    }
    for claim in ("sub", "role", "iat", "exp", "jti", "fam"):
        out["missing-" + claim] = forge(HS256, {k: v for k, v in c.items() if k != claim})
    for claim in ("sub", "role", "jti", "fam"):
        out["empty-" + claim] = forge(HS256, dict(c, **{claim: ""}))
    return out


FORGERY_NAMES = ["alg-none", "alg-None", "alg-none-with-sig", "alg-missing", "alg-hs256-lowercase",
                 "alg-HS512-right-secret", "alg-HS384-right-secret", "alg-RS256-header", "alg-duplicate-key",
                 "bad-signature", "no-signature", "signature-of-other-token", "expired", "exp-string",
                 "role-unknown", "sub-not-a-number", "sub-zero", "escalation-unsigned", "escalation-wrong-secret",
                 "escalation-empty-secret", "garbage", "two-parts", "four-parts", "header-not-json", "huge",
                 "missing-sub", "missing-role", "missing-iat", "missing-exp", "missing-jti", "missing-fam",
                 "empty-sub", "empty-role", "empty-jti", "empty-fam"]


def test_forgery_list_complete(victim):
    assert sorted(FORGERY_NAMES) == sorted(forgeries(victim))


@pytest.mark.parametrize("name", FORGERY_NAMES)
def test_forged_token_401(base, victim, name):
    token = forgeries(victim)[name]
    # An admin-only route: an escalation that worked would answer 200, a
    # token accepted as a rider 403; only 401 is right.
    r = requests.get(base + V1 + "/users", headers=bearer(token))
    assert_401_bearer(r)
    assert_401_bearer(requests.get(base + ME, headers=bearer(token)))


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "Bearer  ", "Basic xyz", "Basic YWRtaW46YWRtaW4=",
                                   "bearer", "Token abc", "abc", "Bearer abc def"])
def test_bad_authorization_header_401(base, value):
    assert_401_bearer(requests.get(base + ME, headers={"Authorization": value}))


def test_missing_authorization_401(base):
    r = requests.get(base + ME)
    assert_401_bearer(r)


def test_bearer_scheme_case_insensitive(base, rider):
    token = rider["Authorization"].split(" ", 1)[1]
    assert requests.get(base + ME, headers={"Authorization": "bearer " + token}).status_code == 200


def test_valid_token_wrong_role_403(base, rider, operator):
    for h in (rider, operator):
        r = requests.get(base + V1 + "/users", headers=h)
        assert_problem(r, 403, "forbidden")
        assert "WWW-Authenticate" not in r.headers


def test_expired_real_token(database, spawn):
    s = spawn(ACCESS_TOKEN_TTL=10)
    pair, _, _, _ = new_login(s.url)
    assert pair["expires_in"] == 10
    h = bearer(pair["access_token"])
    assert auth_ready(s.url, h).status_code == 200
    exp = jwt_parts(pair["access_token"])[1]["exp"]
    time.sleep(max(0, exp - time.time()) + 1.1)
    assert_401_bearer(requests.get(s.url + ME, headers=h))
    # The refresh token outlives it.
    r = refresh(s.url, pair["refresh_token"])
    assert r.status_code == 200, r.text
    assert requests.get(s.url + ME, headers=bearer(r.json()["access_token"])).status_code == 200


def test_token_signed_with_other_secret_rejected_by_server(base, spawn):
    """A server with another JWT_SECRET refuses this one's tokens (and vice versa)."""
    s = spawn(JWT_SECRET="another-secret-" + base64.b64encode(os.urandom(36)).decode())
    pair, _, _, _ = new_login(base)
    assert_401_bearer(auth_ready(s.url, bearer(pair["access_token"])))


# ---------------------------------------------------------------- rate limits

def test_login_brute_force_per_email(base, spawn):
    prefix = "rl-%s:" % uuid.uuid4().hex[:8]
    s = spawn(LOGIN_RATE_PER_EMAIL=10, LOGIN_RATE_PER_ADDRESS=30, CACHE_PREFIX=prefix)
    email, password, _ = register(base)
    other_email, other_password, _ = register(base)
    wait_for_fresh_window(20)
    variants = [email, email.upper(), email.capitalize()]
    for i in range(10):
        r = requests.post(s.url + V1 + "/auth/login", json={"email": variants[i % 3], "password": "wrong-%d" % i})
        assert_problem(r, 401, "unauthorized")
    r = requests.post(s.url + V1 + "/auth/login", json={"email": email, "password": "wrong-again"})
    assert_problem(r, 429, "rate-limited")
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= 61, r.headers
    assert "login-email" in r.headers["RateLimit-Policy"] and "q=10" in r.headers["RateLimit-Policy"], r.headers
    assert ratelimit_remaining(r, "login-email") == 0
    # The right password does not get through either while the limit holds.
    r = requests.post(s.url + V1 + "/auth/login", json={"email": email.upper(), "password": password})
    assert_problem(r, 429, "rate-limited")
    # Another account from the same address still logs in (13 < 30 per address).
    r = requests.post(s.url + V1 + "/auth/login", json={"email": other_email, "password": other_password})
    assert r.status_code == 200, r.text


def test_login_brute_force_per_address(base, spawn):
    prefix = "rl-%s:" % uuid.uuid4().hex[:8]
    s = spawn(LOGIN_RATE_PER_EMAIL=10, LOGIN_RATE_PER_ADDRESS=30, CACHE_PREFIX=prefix)
    email, password, _ = register(base)
    wait_for_fresh_window(20)

    def one(i):
        return requests.post(s.url + V1 + "/auth/login",
                             json={"email": "spray-%d-%s@example.test" % (i, prefix[3:-1]), "password": "Summer2024!"},
                             timeout=30)

    with ThreadPoolExecutor(8) as pool:
        rs = list(pool.map(one, range(30)))
    assert [r.status_code for r in rs] == [401] * 30, [r.status_code for r in rs]
    r = requests.post(s.url + V1 + "/auth/login", json={"email": email, "password": password})
    assert_problem(r, 429, "rate-limited")
    assert "login-address" in r.headers["RateLimit-Policy"] and "q=30" in r.headers["RateLimit-Policy"], r.headers
    assert "RateLimit" in r.headers and int(r.headers["Retry-After"]) >= 1
    # Other routes from the address are not affected by the login limit.
    assert requests.post(s.url + V1 + "/auth/register", json={
        "email": unique_email(), "password": "long-enough-pw", "first_name": "A", "last_name": "B"}).status_code == 201


def test_per_client_budget(base, spawn):
    prefix = "rl-%s:" % uuid.uuid4().hex[:8]
    s = spawn(RATE_LIMIT_PER_MINUTE=20, CACHE_PREFIX=prefix)
    pair, _, _, _ = new_login(base)
    other, _, _, _ = new_login(base)
    h = bearer(pair["access_token"])
    assert auth_ready(s.url, bearer(other["access_token"])).status_code == 200  # spends the other user's budget
    wait_for_fresh_window(8)
    rs = [requests.get(s.url + ME, headers=h) for _ in range(25)]
    statuses = [r.status_code for r in rs]
    assert statuses == [200] * 20 + [429] * 5, statuses
    remaining = [ratelimit_remaining(r, "default") for r in rs[:20]]
    assert remaining == list(range(19, -1, -1)), remaining
    assert "q=20" in rs[0].headers["RateLimit-Policy"], rs[0].headers
    for r in rs[20:]:
        assert_problem(r, 429, "rate-limited")
        assert 1 <= int(r.headers["Retry-After"]) <= 61
        assert "RateLimit-Policy" in r.headers and "RateLimit" in r.headers
    # Answers from the I/O thread are not counted; another client has its own budget.
    assert requests.get(s.url + "/health").status_code == 200
    assert requests.get(s.url + "/livez").status_code == 200
    assert requests.get(s.url + ME, headers=bearer(other["access_token"])).status_code == 200


# ----------------------------------------------------------- Redis down, admin

def test_redis_down_auth_fails_closed(base):
    """Without Redis the revocation list cannot be checked: a protected route
    answers 503 (not 401: the token is not known to be bad), public reads go on."""
    pair, _, _, _ = new_login(base)
    h = bearer(pair["access_token"])
    assert requests.get(base + ME, headers=h).status_code == 200
    try:
        services("stop", "redis")
        poll(lambda: requests.get(base + ME, headers=h, timeout=10).status_code != 200, 10)
        down = requests.get(base + ME, headers=h, timeout=10)
        pub = requests.get(base + V1 + "/localities", timeout=10)
        routes = requests.get(base + V1 + "/routes", timeout=10)
    finally:
        services("start", "redis")
        t0 = time.time()
        recovered = poll(lambda: requests.get(base + ME, headers=h, timeout=10).status_code == 200, 40)
        # Every worker must have its Redis connection back before later tests
        # log in: rounds of concurrent session look-ups until three in a row pass.
        stable = redis_work_recovered(base, timeout=40)
        recovery_s = time.time() - t0
    assert_problem(down, 503, "unavailable")
    assert "Retry-After" in down.headers
    assert pub.status_code == 200, pub.text
    assert routes.status_code == 200, routes.text
    assert recovered, "the protected route did not recover within 40 s after Redis came back"
    assert stable, "session look-ups still fail %.0f s after Redis came back" % recovery_s


def redis_work_recovered(base, timeout, rounds=3, width=64):
    def one(_):
        try:
            return requests.post(base + V1 + "/auth/refresh", json={"refresh_token": "unknown"},
                                 timeout=10).status_code
        except requests.RequestException:
            return None

    deadline = time.time() + timeout
    clean = 0
    with ThreadPoolExecutor(32) as pool:
        while clean < rounds and time.time() < deadline:
            statuses = list(pool.map(one, range(width)))
            clean = clean + 1 if all(st == 401 for st in statuses) else 0
            if not clean:
                time.sleep(0.2)
    return clean >= rounds


def test_admin_from_environment(base):
    email = unique_email("chief")
    password = "chief-admin-password"
    out = run_cli("migrate", env={"ADMIN_EMAIL": email, "ADMIN_PASSWORD": password})
    assert out.returncode == 0, out.stderr
    pair = login(base, email, password)
    assert jwt_parts(pair["access_token"])[1]["role"] == "admin"
    h = bearer(pair["access_token"])
    assert requests.get(base + ME, headers=h).json()["role"] == "admin"
    r = requests.get(base + V1 + "/users", headers=h)
    assert r.status_code == 200, r.text
    assert any(u["email"] == email.lower() for u in paged_users(base, h))


def paged_users(base, h):
    cursor = None
    while True:
        params = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        body = requests.get(base + V1 + "/users", headers=h, params=params).json()
        yield from body["users"]
        cursor = body.get("next_cursor")
        if not cursor:
            return


def test_admin_from_environment_mixed_case_email(base):
    """ADMIN_EMAIL is an address like any other: its case does not matter
    (register and login lower-case it; users.email must be lower case)."""
    email = "Chief.%s@Example.TEST" % uuid.uuid4().hex[:10]
    out = run_cli("migrate", env={"ADMIN_EMAIL": email, "ADMIN_PASSWORD": "chief-admin-password"}, check=False)
    assert out.returncode == 0, out.stderr
    pair = login(base, email, "chief-admin-password")
    assert jwt_parts(pair["access_token"])[1]["role"] == "admin"


def test_admin_from_environment_short_password_refused(database):
    out = run_cli("migrate", env={"ADMIN_EMAIL": unique_email("weak"), "ADMIN_PASSWORD": "short"}, check=False)
    assert out.returncode != 0
    assert "ADMIN_PASSWORD" in out.stderr


@pytest.mark.parametrize("email", ["chief", "chief@localhost", "chief admin@transitd.test"])
def test_admin_from_environment_not_an_address_refused(db, email):
    """An ADMIN_EMAIL nobody could log in with (login takes only addresses)
    is refused, not made into an account."""
    out = run_cli("migrate", env={"ADMIN_EMAIL": email, "ADMIN_PASSWORD": "chief-admin-password"}, check=False)
    assert out.returncode != 0
    assert "not an email address" in out.stderr, out.stderr
    assert db_scalar(db, "SELECT count(*) FROM users WHERE email = %s", email.lower()) == 0
