#!/usr/bin/env python3
"""live_page.py - the observability endpoint's live page in a real browser.

    live_page.py --example PATH [--out DIR] [--save-screenshot FILE]
    live_page.py --mock [--out DIR]

--example: starts PATH (examples/supervision) with `--observe 127.0.0.1:0
--run-for 60` and reads the bound address from its stderr ("observe:
http://ADDR/"). --mock: serves observe/page.html with tests/browser/
mock_observe.py instead (the page alone, without the library).

Then it drives Debian's headless chromium through chromedriver (W3C
WebDriver, plain HTTP with urllib): opens http://ADDR/ and waits, with a
deadline, until the page shows what the runtime has: the status says
"connected", supervisors and their children are rows (data-behavior), and
the supervisors' restart total grew while it watched (#restarts-total's
data-history). It writes the DOM (live_page.html) and a 1280x900
screenshot (live_page.png) into --out, and the screenshot also to
--save-screenshot when TROUPE_SAVE_SCREENSHOT=1 (how docs/observability-
live.png is made).

Why WebDriver rather than `chromium --dump-dom --virtual-time-budget`: an
event stream is a request that never finishes, and chromium's virtual time
does not advance while one is open, so --dump-dom would return only when
the server went away. WebDriver lets the test wait for a DOM condition.

Exit codes: 0 passed, 1 failed, 77 skipped (no chromium or chromedriver:
ctest's SKIP_RETURN_CODE). Every child (the example, chromium, chromedriver)
is started here, in its own process group, with a parent-death signal: it
is killed on every way out, even when this script is killed (chromium's
helpers end with it); the whole run is bounded by --deadline seconds.
"""
import argparse
import base64
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77
children = []  # Popen objects, each the leader of its own process group


def log(msg):
    print("live_page: " + msg, flush=True)


def fail(msg):
    log("FAIL: " + msg)
    sys.exit(1)


def die_with_parent():
    """preexec_fn: SIGKILL this child when the test dies (Linux prctl)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def spawn(argv, **kw):
    p = subprocess.Popen(argv, start_new_session=True, preexec_fn=die_with_parent, **kw)
    children.append(p)
    return p


def kill_all():
    for p in reversed(children):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    end = time.monotonic() + 3
    for p in reversed(children):
        try:
            p.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        # chromium's helpers share its group: kill what is left
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass


def read_line(path, pattern, deadline, proc):
    """Waits until a line of the file at path matches pattern; its group 1."""
    rx = re.compile(pattern)
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            for line in f:
                m = rx.search(line)
                if m:
                    return m.group(1)
        if proc.poll() is not None:
            with open(path, errors="replace") as f:
                tail = f.read()[-2000:]
            fail("%s exited (%s) before printing its address:\n%s" % (proc.args[0], proc.returncode, tail))
        time.sleep(0.05)
    fail("no line matching %r in %s in time" % (pattern, path))


class WebDriver:
    """The few W3C WebDriver commands used here, over urllib."""

    def __init__(self, base):
        self.base = base
        self.session = None

    def call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise RuntimeError("webdriver %s %s: %s %s" % (method, path, e.code, e.read()[:500]))

    def attach(self, debugger):
        """A session on a chromium already running (started by this test)."""
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": {"debuggerAddress": debugger}}}}
        v = self.call("POST", "/session", caps, timeout=60)
        self.session = v["sessionId"]

    def s(self, path):
        return "/session/%s%s" % (self.session, path)

    def quit(self):
        if self.session:
            try:
                self.call("DELETE", self.s(""), timeout=10)
            except Exception:
                pass
            self.session = None


# What the test reads from the page, in one script run in the browser.
PROBE = """
var rows = Array.prototype.map.call(document.querySelectorAll('#tree tr[data-pid]'), function (r) {
  return [r.getAttribute('data-pid'), r.getAttribute('data-behavior'), r.getAttribute('data-restarts'),
          r.getAttribute('data-name') || ''];
});
var t = document.getElementById('restarts-total'), s = document.getElementById('status');
return {status: s ? s.textContent : null, rows: rows,
        history: t ? t.getAttribute('data-history') : '', loops: document.querySelectorAll('#loops .loop').length,
        hot: document.querySelectorAll('#hot tr[data-behavior]').length,
        summary: (document.getElementById('summary') || {}).textContent || '',
        stuck: document.querySelectorAll('#stuck li').length,
        cycles: document.querySelectorAll('#stuck li[data-cycle="true"]').length,
        markup: document.querySelectorAll('#tree b').length};
"""


def grew(history):
    vals = [int(v) for v in history.split(",") if v.strip().lstrip("-").isdigit()]
    return any(b > a for a, b in zip(vals, vals[1:])), vals


def check(v, mock):
    """None when the page shows what it should, else what is still missing."""
    if not v or "connected" not in (v.get("status") or ""):
        return "status is %r, not connected" % (v or {}).get("status")
    behaviors = [r[1] for r in v["rows"]]
    need = {"supervisor": 3, "gateway": 2, "model": 1, "frontend": 1, "inventory": 1}
    for b, n in need.items():
        if behaviors.count(b) < n:
            return "%d %s rows, want %d (rows: %s)" % (behaviors.count(b), b, n, behaviors)
    ok, vals = grew(v.get("history") or "")
    if not ok:
        return "restarts total did not grow yet: %s" % vals
    if v.get("loops", 0) < 1:
        return "no loop utilisation drawn yet"
    if v.get("hot", 0) < 1:
        return "no behaviour in the hottest table"
    if mock:  # what only the mock has: a truncated tree, stuck calls, markup in a name
        if "showing 9 of 12" not in v.get("summary", ""):
            return "the summary does not say the tree is truncated: %r" % v.get("summary")
        if v.get("stuck") != 2 or v.get("cycles") != 1:
            return "stuck calls: %s chains, %s cycles; want 2 and 1" % (v.get("stuck"), v.get("cycles"))
        if v.get("markup"):
            return "an actor's info was parsed as HTML"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--example")
    ap.add_argument("--mock", action="store_true")
    ap.add_argument("--out", default=".")
    ap.add_argument("--save-screenshot")
    ap.add_argument("--deadline", type=float, default=90, help="seconds for the whole run")
    ap.add_argument("--watch", type=float, default=4,
                    help="seconds to keep watching after the checks pass (for the screenshot)")
    args = ap.parse_args()
    if not args.example and not args.mock:
        ap.error("--example PATH or --mock")
    start = time.monotonic()
    deadline = start + args.deadline

    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not chromium or not driver:
        log("SKIP: no chromium or chromedriver (Debian: apt-get install chromium chromium-driver)")
        return SKIP

    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="live_page.")
    # A signal (ctest's timeout, ^C) is an exit like the others: children killed.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    wd = None
    try:
        # 1. the server
        if args.mock:
            out = os.path.join(tmp, "mock.out")
            with open(out, "w") as f:
                p = spawn([sys.executable, os.path.join(HERE, "mock_observe.py"), "--port", "0"],
                          stdout=f, stderr=subprocess.STDOUT)
            addr = read_line(out, r"^mock: (http://\S+/)", time.monotonic() + 15, p)
        else:
            err = os.path.join(tmp, "example.err")
            with open(err, "w") as f, open(os.path.join(tmp, "example.out"), "w") as o:
                p = spawn([args.example, "--observe", "127.0.0.1:0", "--run-for", str(int(args.deadline))],
                          stdout=o, stderr=f)
            addr = read_line(err, r"observe: (http://\S+/)", time.monotonic() + 15, p)
        log("server at %s (%.1f s)" % (addr, time.monotonic() - start))

        # 2. a headless chromium, started here rather than by chromedriver so
        #    that it is this test's child: killed with it whatever happens
        #    (chromedriver's chromium outlives a chromedriver that is killed),
        #    and chromedriver attached to it through its DevTools port
        profile = os.path.join(tmp, "profile")
        clog = os.path.join(tmp, "chromium.log")
        with open(clog, "w") as f:
            c = spawn([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                       "--no-first-run", "--window-size=1280,900", "--remote-debugging-port=0",
                       "--user-data-dir=" + profile, "about:blank"], stdout=f, stderr=subprocess.STDOUT)
        active = os.path.join(profile, "DevToolsActivePort")
        while not os.path.exists(active) or os.path.getsize(active) == 0:
            if c.poll() is not None or time.monotonic() > start + 30:
                with open(clog, errors="replace") as f:
                    fail("chromium did not start (%s):\n%s" % (c.returncode, f.read()[-2000:]))
            time.sleep(0.05)
        with open(active) as f:
            debugger = "127.0.0.1:" + f.read().split()[0]
        dlog = os.path.join(tmp, "chromedriver.log")
        with open(dlog, "w") as f:
            d = spawn([driver, "--port=0"], stdout=f, stderr=subprocess.STDOUT)
        port = read_line(dlog, r"started successfully on port (\d+)", time.monotonic() + 20, d)
        wd = WebDriver("http://127.0.0.1:%s" % port)
        wd.attach(debugger)
        wd.call("POST", wd.s("/url"), {"url": addr}, timeout=30)
        log("page open (%.1f s)" % (time.monotonic() - start))

        # 3. wait for the page to show the tree and a restart total that grows
        missing, v = "nothing read yet", None
        while time.monotonic() < deadline - 10:
            v = wd.call("POST", wd.s("/execute/sync"), {"script": PROBE, "args": []}, timeout=10)
            missing = check(v, args.mock)
            if missing is None:
                break
            time.sleep(0.5)
        dom = wd.call("GET", wd.s("/source"), timeout=10) or ""
        with open(os.path.join(args.out, "live_page.html"), "w") as f:
            f.write(dom)
        if missing is not None:
            fail("the page did not get there in time: %s (DOM in %s)" %
                 (missing, os.path.join(args.out, "live_page.html")))
        sups = sum(1 for r in v["rows"] if r[1] == "supervisor")
        log("ok (%.1f s): %s; %d actor rows, %d supervisors; restart totals %s" %
            (time.monotonic() - start, v["status"], len(v["rows"]), sups, v["history"]))

        # 4. a few more ticks, so the sparklines have a history (more for the
        #    picture in the docs), then the screenshot
        save = args.save_screenshot and os.environ.get("TROUPE_SAVE_SCREENSHOT") == "1"
        watch = max(args.watch, 30) if save else args.watch
        time.sleep(max(0, min(watch, deadline - 5 - time.monotonic())))
        png = base64.b64decode(wd.call("GET", wd.s("/screenshot"), timeout=20))
        shot = os.path.join(args.out, "live_page.png")
        with open(shot, "wb") as f:
            f.write(png)
        log("screenshot: %s (%d bytes)" % (shot, len(png)))
        if save:
            shutil.copyfile(shot, args.save_screenshot)
            log("screenshot saved to %s" % args.save_screenshot)
        return 0
    except (RuntimeError, OSError, ValueError, KeyError, TypeError) as e:
        fail("%s: %s" % (type(e).__name__, e))
    finally:
        if wd:
            wd.quit()
        kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
