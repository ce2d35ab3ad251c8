"""The operator console in a real browser (Debian's headless Chromium over the
DevTools protocol): an admin signs in, the overview shows the API's numbers,
an alert published from the console reaches a station board open in another
tab with no reload, a card is blocked and unblocked and recharged, the rail
seat map matches the API; every page passes basic accessibility checks
(labels, names, keyboard reach, visible focus, contrast). Any console error
or failed request fails the test. Screenshots: $TEST_RUN_DIR/console/."""
import json
import os
import shutil
import time

import pytest
import requests

from browser import Browser
from conftest import ROOT

V1 = "/api/v1"
STATION = 7
SHOTS = os.path.join(os.environ.get("TEST_RUN_DIR", os.path.join(ROOT, ".run", "test")), "console")


@pytest.fixture(scope="module", autouse=True)
def _chromium_installed():
    """The console is tested in Debian's chromium, which scripts/bootstrap.sh
    installs with the other test packages: without it these tests fail (a
    skip would pass a suite that never looked at the console)."""
    assert shutil.which("chromium"), "chromium is not installed: run scripts/bootstrap.sh"


# Runs in the page: what a keyboard or screen-reader user would miss.
A11Y_AUDIT = r"""
(() => {
  const problems = [];
  const visible = (e) => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length) &&
                         getComputedStyle(e).visibility !== "hidden";
  const name = (e) => (e.getAttribute("aria-label") || "").trim() ||
    (e.getAttribute("aria-labelledby") || "").split(/\s+/).map((id) => (document.getElementById(id) || {}).textContent || "").join("").trim() ||
    (e.labels && [...e.labels].map((l) => l.textContent).join("").trim()) || (e.textContent || "").trim() ||
    (e.getAttribute("title") || "").trim();
  for (const e of document.querySelectorAll("input, select, textarea")) {
    if (e.type === "hidden" || !visible(e)) continue;
    if (!name(e)) problems.push("no label: " + e.outerHTML.slice(0, 80));
  }
  for (const e of document.querySelectorAll("button, a[href], [role=button]")) {
    if (visible(e) && !name(e)) problems.push("no accessible name: " + e.outerHTML.slice(0, 80));
  }
  for (const e of document.querySelectorAll("[tabindex]")) {
    if (+e.getAttribute("tabindex") > 0) problems.push("positive tabindex: " + e.outerHTML.slice(0, 80));
  }
  if (document.querySelectorAll("main h1").length !== 1) problems.push("main has no single h1");
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  // Contrast of text against the first opaque background behind it (WCAG AA: 4.5, 3 for large text).
  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
  const bg = (e) => {
    for (; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n; (n = walker.nextNode());) {
    const e = n.parentElement;
    if (!n.textContent.trim() || !e || seen.has(e) || !visible(e) || e.closest(".uplot, .skip")) continue;
    seen.add(e);
    const s = getComputedStyle(e);
    if (+s.opacity < 1) continue;
    const fg = rgb(s.color).slice(0, 3);
    const [l1, l2] = [lum(fg), lum(bg(e))].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const large = parseFloat(s.fontSize) >= 24 || (parseFloat(s.fontSize) >= 18.66 && +s.fontWeight >= 700);
    if (ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)}: "${n.textContent.trim().slice(0, 40)}"`);
  }
  return problems;
})()
"""

# The element that has keyboard focus, described, with whether its focus ring shows.
FOCUSED = r"""
(() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const s = getComputedStyle(e);
  const ring = (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== "none";
  return {tag: e.tagName, text: (e.textContent || e.getAttribute("aria-label") || e.name || "").trim().slice(0, 40),
          href: e.getAttribute("href"), ring};
})()
"""


def login(base, email, password):
    r = requests.post(base + V1 + "/auth/login", json={"email": email, "password": password}, timeout=15)
    assert r.status_code == 200, r.text
    return {"Authorization": "Bearer " + r.json()["access_token"]}


@pytest.fixture(scope="module")
def browser():
    os.makedirs(SHOTS, exist_ok=True)
    b = Browser(os.path.join(SHOTS, "chromium.log"))
    yield b
    b.close()


def shot(page, name):
    page.screenshot(os.path.join(SHOTS, name + ".png"))


def sign_in(page, base, email="admin@transitd.local", password="admin-change-me"):
    page.goto(base + "/")
    page.wait("document.querySelector('form.signin input[name=email]')", what="the sign-in form")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.key("Enter", "Enter", 13)  # submitting with the keyboard
    page.wait("!document.getElementById('nav').hidden", what="signing in")


def go(page, hash_, ready, what):
    page.js("location.hash = %s" % json.dumps(hash_))
    page.wait(ready, timeout=15, what=what)
    page.browser.pump(0.3)


def audit(page, where):
    problems = page.js(A11Y_AUDIT)
    assert not problems, "%s: accessibility problems:\n%s" % (where, "\n".join(problems))


def tab_through(page, limit=80):
    """Tabs through the page until focus comes round again; returns what took
    focus, in order, from the skip link on."""
    seen = []
    for _ in range(limit):
        page.tab()
        f = page.js(FOCUSED)
        if f is None:
            continue  # focus left the document (the browser's own stops)
        if seen and f == seen[0]:
            break
        seen.append(f)
    skip = [i for i, f in enumerate(seen) if f["text"] == "Skip to content"]
    return seen[skip[0]:] + seen[:skip[0]] if skip else seen


def no_errors(*pages):
    for p in pages:
        p.browser.pump(0.2)
        assert not p.errors, "%s page: %s" % (p.name, "\n".join(p.errors))


def test_console_as_admin(base, browser, db):
    admin = login(base, "admin@transitd.local", "admin-change-me")
    operator = login(base, "operator@transitd.local", "operator-change-me")
    # Something to count: a fresh card with money and a trip boarded today.
    card = requests.post(base + V1 + "/cards", json={}, headers=operator).json()["card_id"]
    r = requests.post(base + V1 + "/cards/recharge", json={"card_id": card, "amount": 20000}, headers=operator)
    assert r.status_code == 201, r.text
    route = requests.get(base + V1 + "/routes/1").json()
    r = requests.post(base + V1 + "/trips/start", headers=operator, json={
        "card_id": card, "route_id": 1, "boarding_station_id": route["stops"][0]["station_id"]})
    assert r.status_code == 201, r.text

    page = browser.new_page("console")
    # --- sign-in: labelled fields, reachable by keyboard ---------------------
    page.goto(base + "/")
    page.wait("document.querySelector('form.signin')", what="the sign-in form")
    shot(page, "01-sign-in")
    audit(page, "sign-in")
    sign_in(page, base)
    assert page.js("document.getElementById('who-name').textContent").endswith("admin")
    nav = page.js("[...document.querySelectorAll('#nav a')].map(a => a.textContent)")
    assert nav == ["Overview", "Live system", "Station board", "Alerts", "Cards", "Rail"], nav

    # --- overview: the API's numbers ----------------------------------------
    page.wait("document.querySelector('[data-testid=trips-total] [data-value]')", what="the overview")
    time.sleep(1.2)  # the near-cache may hold figures from before the trip for a second
    page.click(".toolbar button")  # Refresh
    page.browser.pump(1)
    page.wait("document.querySelector('.uplot')", what="the trend charts")
    shown = page.js("""Object.fromEntries([...document.querySelectorAll('[data-testid] [data-value]')]
        .map(e => [e.closest('[data-testid]').dataset.testid, Number(e.dataset.value)]))""")
    total = requests.get(base + V1 + "/analytics/trips/total").json()
    daily = requests.get(base + V1 + "/analytics/trips/daily?days=30").json()["days"]
    assert shown["trips-total"] == total["total_trips"] >= 1
    assert shown["trips-today"] == daily[-1]["total_trips"] >= 1
    assert shown["revenue-total"] == requests.get(base + V1 + "/analytics/revenue").json()["total_revenue"]
    assert shown["revenue-today"] == daily[-1]["total_revenue"]
    assert shown["users-active"] == requests.get(base + V1 + "/analytics/users/active").json()["active_users_count"]
    assert shown["users-total"] == requests.get(base + V1 + "/users/count").json()["total_users"]
    rows = page.js("""[...document.querySelectorAll('section[aria-labelledby=loc-title] tbody tr')].map(tr =>
        [tr.cells[0].textContent, Number(tr.cells[1].querySelector('[data-value]').dataset.value)])""")
    api_rows = [[x["locality"], x["total_trips"]] for x in
                requests.get(base + V1 + "/analytics/trips/localities").json()["localities"]]
    assert rows == api_rows
    shot(page, "02-overview")
    audit(page, "overview")

    # --- keyboard: every nav link is reached by Tab, with a visible focus ring --
    focused = tab_through(page)
    assert focused and focused[0]["text"] == "Skip to content", focused[:3]
    links = [f["text"] for f in focused if f["href"] and f["href"].startswith("#/")]
    assert links == nav, focused
    no_ring = [f for f in focused if not f["ring"]]
    assert not no_ring, "focus without a visible ring: %s" % no_ring
    # and a link is followed with Enter
    page.js("document.querySelector('#nav a[href=\"#/rail\"]').focus()")
    page.key("Enter", "Enter", 13)
    page.wait("location.hash.startsWith('#/rail')", what="Enter on a nav link")

    # --- live system ----------------------------------------------------------
    go(page, "#/system", "document.querySelector('[data-testid=health-db] .s-ok')", "the system panel")
    page.wait("document.querySelector('[data-testid=job-queue] [data-value]') && "
              "document.querySelectorAll('main table').length >= 2", timeout=15, what="metrics tables")
    page.wait("document.querySelector('main .uplot')", timeout=25, what="the request-rate chart")
    assert page.js("document.querySelector('[data-testid=health-cache]').textContent").find("healthy") >= 0
    shot(page, "03-system")
    audit(page, "system")

    # --- station board in this tab; the alert is published from another -------
    go(page, "#/board/%d" % STATION, "document.querySelector('.live-state[data-state=live]')", "the live board")
    page.wait("Number((document.querySelector('[data-count]') || {dataset: {}}).dataset.count) > 0",
              what="arrivals on the board")
    page.js("window.__sameDocument = true")
    shot(page, "04-board")
    audit(page, "board")

    other = browser.new_page("alerts")
    sign_in(other, base)
    go(other, "#/alerts/%d" % STATION, "document.querySelector('.live-state[data-state=live]')", "the alerts page")
    audit(other, "alerts")
    message = "Console test: elevator out of service %d" % time.time_ns()
    other.fill("textarea[name=message]", message)
    other.js("document.querySelector('select[name=severity]').value = 'CRITICAL'")
    other.click("form button[type=submit]")
    t0 = time.time()
    alert_id = other.wait("(() => { const m = document.querySelector('form [role=status]')?.textContent.match(/#(\\d+)/);"
                          " return m && Number(m[1]); })()", what="the alert to be published")
    page.wait("document.querySelector('[data-alert-id=\"%d\"]')" % alert_id, timeout=5,
              what="the new alert on the board")
    seen_after = time.time() - t0
    with open(os.path.join(SHOTS, "timings.txt"), "a") as f:
        f.write("alert published in one tab -> shown on the board in another: %.3f s\n" % seen_after)
    assert page.js("window.__sameDocument === true"), "the board reloaded"
    assert message in page.js("document.querySelector('[data-alert-id=\"%d\"]').textContent" % alert_id)
    doc = requests.get(base + V1 + "/stations/%d/alerts" % STATION).json()
    assert alert_id in [a["alert_id"] for a in doc["alerts"]]
    other.wait("document.querySelector('[data-alert-id=\"%d\"]')" % alert_id, what="the alert in the list")
    shot(page, "05-board-with-alert")
    shot(other, "06-alerts")
    # End it from the console: it leaves the board, again with no reload.
    other.click('[data-alert-id="%d"] button' % alert_id)
    page.wait("!document.querySelector('[data-alert-id=\"%d\"]')" % alert_id, timeout=5,
              what="the ended alert to leave the board")
    assert page.js("window.__sameDocument === true")
    assert alert_id not in [a["alert_id"] for a in
                            requests.get(base + V1 + "/stations/%d/alerts" % STATION).json()["alerts"]]
    no_errors(other)
    other.send("Page.close")

    # --- cards: block, unblock, recharge ------------------------------------
    go(page, "#/cards/%d" % card, "document.querySelector('[data-testid=card-status]')", "the card")
    balance = requests.get(base + V1 + "/cards/%d/balance" % card, headers=admin).json()["balance"]
    assert page.js("Number(document.querySelector('[data-card-id] .kpi:nth-child(2) [data-value]').dataset.value)") == balance
    audit(page, "cards")
    shot(page, "07-card")
    page.click('[data-action="block"]')
    page.wait("document.querySelector('[data-testid=card-status]')?.dataset.value === 'blocked'", what="blocked")
    assert requests.get(base + V1 + "/cards/%d" % card, headers=admin).json()["status"] == "blocked"
    assert "blocked" in page.js("document.querySelector('[data-testid=card-status]').textContent")
    shot(page, "08-card-blocked")
    page.click('[data-action="unblock"]')
    page.wait("document.querySelector('[data-testid=card-status]')?.dataset.value === 'active'", what="unblocked")
    assert requests.get(base + V1 + "/cards/%d" % card, headers=admin).json()["status"] == "active"
    page.fill("input[name=amount]", "5000")
    page.click("#recharge-title ~ button[type=submit], form[aria-labelledby=recharge-title] button[type=submit]")
    page.wait("Number(document.querySelector('[data-card-id] .kpi:nth-child(2) [data-value]').dataset.value) === %d"
              % (balance + 5000), what="the recharged balance")
    assert requests.get(base + V1 + "/cards/%d/balance" % card, headers=admin).json()["balance"] == balance + 5000

    # --- rail: runs of tomorrow and a seat map --------------------------------
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 5 * 3600 + 86400))
    runs = requests.get(base + V1 + "/rail/runs", params={"date": tomorrow}).json()["runs"]
    run = runs[0]["run_id"]
    go(page, "#/rail/%s/%d" % (tomorrow, run), "document.querySelector('[data-testid=seat-summary]')", "the seat map")
    seats = requests.get(base + V1 + "/rail/runs/%d/seats" % run).json()["seats"]
    assert page.js("Number(document.querySelector('[data-testid=seat-summary]').dataset.free)") == \
        sum(1 for s in seats if s["status"] == "free")
    assert page.js("document.querySelectorAll('li.seat').length") == len(seats)
    assert page.js("document.querySelectorAll('.runs tbody tr').length") == len(runs)
    shot(page, "09-rail")
    audit(page, "rail")

    # --- sign out: the tokens stop working ------------------------------------
    page.click("#sign-out")
    page.wait("document.querySelector('form.signin')", what="the sign-in form after signing out")
    assert page.js("document.getElementById('nav').hidden")
    no_errors(page)
    assert seen_after < 5


def test_console_as_rider_adapts(base, browser):
    """A rider sees no system panel and no alerts page, and only their cards."""
    page = browser.new_page("rider")
    sign_in(page, base, "rider@transitd.local", "rider-change-me")
    nav = page.js("[...document.querySelectorAll('#nav a')].map(a => a.textContent)")
    assert nav == ["Overview", "Station board", "Cards", "Rail"], nav
    go(page, "#/system", "location.hash === '#/overview'", "the overview instead of the system panel")
    go(page, "#/cards", "document.querySelector('[data-testid=card-status]')", "the rider's first card")
    assert not page.js("document.querySelector('[data-action=unblock], form[aria-labelledby=recharge-title]')")
    shot(page, "10-rider-cards")
    audit(page, "rider cards")
    page.click("#sign-out")
    page.wait("document.querySelector('form.signin')", what="signing out")
    no_errors(page)
    page.send("Page.close")
