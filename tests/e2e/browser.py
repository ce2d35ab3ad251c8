"""A headless Chromium (Debian's `chromium`) driven through the DevTools
protocol with python3-websocket: enough to open pages, run JavaScript in
them, type, press keys, take screenshots, and record every console error
and failed request."""
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import websocket

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--window-size=1280,900", "--remote-debugging-port=0", "--remote-allow-origins=*"]


class BrowserError(AssertionError):
    pass


class Browser:
    """One Chromium process with a fresh profile; pages are tabs of it."""

    def __init__(self, log_path):
        self.profile = tempfile.mkdtemp(prefix="transitd-chromium-")
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, "--user-data-dir=" + self.profile, "about:blank"],
                                     stdout=self.log, stderr=self.log, start_new_session=True)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + 30
        while not (os.path.exists(port_file) and len(open(port_file).read().split("\n")) >= 2):
            if self.proc.poll() is not None or time.time() > deadline:
                self.close()
                raise BrowserError("chromium did not start; see " + log_path)
            time.sleep(0.05)
        port, path = open(port_file).read().split("\n")[:2]
        self.ws = websocket.create_connection("ws://127.0.0.1:%s%s" % (port, path), timeout=30,
                                             suppress_origin=True)
        self.next_id = 0
        self.pages = {}
        self.pending = []  # events read while waiting for a reply

    # --- protocol -----------------------------------------------------------

    def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.time() + timeout
        while True:
            m = self._read(deadline)
            if m is None:
                raise BrowserError("no answer to %s within %s s" % (method, timeout))
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise BrowserError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self._dispatch(m)

    def _read(self, deadline):
        left = deadline - time.time()
        if left <= 0:
            return None
        self.ws.settimeout(left)
        try:
            return json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None

    def _dispatch(self, m):
        page = self.pages.get(m.get("sessionId"))
        if page:
            page.event(m["method"], m.get("params", {}))

    def pump(self, seconds):
        """Reads events for a while (they are recorded by their pages)."""
        deadline = time.time() + seconds
        while True:
            m = self._read(deadline)
            if m is None:
                return
            self._dispatch(m)

    def new_page(self, name):
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, name, target, session)
        self.pages[session] = page
        for domain in ("Page", "Runtime", "Network", "Log"):
            page.send(domain + ".enable")
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        return page

    def close(self):
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser, name, target, session):
        self.browser, self.name, self.target, self.session = browser, name, target, session
        self.errors = []     # console errors, exceptions, failed requests
        self.requests = {}   # requestId -> url
        self.responses = []  # (status, url)

    def send(self, method, params=None, timeout=30):
        return self.browser.send(method, params, self.session, timeout)

    def event(self, method, p):
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append("console.%s: %s" % (p["type"], " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args", []))))
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            self.errors.append("exception: %s %s" % (d.get("text"), d.get("exception", {}).get("description", "")))
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            e = p["entry"]
            self.errors.append("log (%s): %s %s" % (e.get("source"), e.get("text"), e.get("url", "")))
        elif method == "Network.requestWillBeSent":
            self.requests[p["requestId"]] = p["request"]["url"]
        elif method == "Network.responseReceived":
            status, url = p["response"]["status"], p["response"]["url"]
            self.responses.append((status, url))
            if status >= 400:
                self.errors.append("HTTP %d from %s" % (status, url))
        elif method == "Network.loadingFailed":
            # A stream the page closed itself (EventSource.close, leaving a page) is cancelled, not failed.
            if not p.get("canceled"):
                self.errors.append("request failed (%s): %s" % (p.get("errorText"), self.requests.get(p["requestId"])))

    # --- actions --------------------------------------------------------------

    def goto(self, url):
        self.send("Page.navigate", {"url": url})
        self.wait("document.readyState === 'complete'")

    def js(self, expr, timeout=30):
        """The value of a JavaScript expression (awaited when a promise)."""
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True},
                      timeout=timeout)
        if "exceptionDetails" in r:
            raise BrowserError("%s: %s" % (expr[:80], r["exceptionDetails"].get("exception", {}).get(
                "description", r["exceptionDetails"].get("text"))))
        return r["result"].get("value")

    def wait(self, expr, timeout=10, what=None):
        """Waits until expr is truthy; returns its value."""
        deadline = time.time() + timeout
        while True:
            v = self.js("((v) => v instanceof Node ? true : v)(%s)" % expr)
            if v:
                return v
            if time.time() > deadline:
                raise BrowserError("timed out waiting for %s" % (what or expr))
            self.browser.pump(0.1)

    def click(self, selector):
        found = self.js("(() => { const e = document.querySelector(%s); if (!e) return false; e.click(); return true; })()"
                        % json.dumps(selector))
        if not found:
            raise BrowserError("nothing to click at " + selector)

    def fill(self, selector, text):
        """Focuses a field, clears it and types text as a user would."""
        self.js("(() => { const e = document.querySelector(%s); e.focus(); e.select && e.select(); })()"
                % json.dumps(selector))
        self.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Backspace", "code": "Backspace",
                                             "windowsVirtualKeyCode": 8})
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Backspace", "code": "Backspace",
                                             "windowsVirtualKeyCode": 8})
        self.send("Input.insertText", {"text": text})

    def key(self, key, code=None, vk=0, shift=False):
        params = {"key": key, "code": code or key, "windowsVirtualKeyCode": vk, "modifiers": 8 if shift else 0}
        self.send("Input.dispatchKeyEvent", dict(params, type="rawKeyDown"))
        if key == "Enter":
            self.send("Input.dispatchKeyEvent", dict(params, type="char", text="\r"))
        self.send("Input.dispatchKeyEvent", dict(params, type="keyUp"))

    def tab(self, shift=False):
        self.key("Tab", "Tab", 9, shift)

    def screenshot(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.browser.pump(0.2)
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                    "clip": clip})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
