#!/usr/bin/env python3
"""mock_observe.py - a stand-in for tr_rt_observe's endpoint, for the live
page alone (observe/page.html): GET / serves the page from the source tree,
GET /tree.json and GET /events (a "tick" every --interval seconds) serve a
made-up runtime whose gateways crash and are restarted, whose fraud
supervisor is restarted by the shop, with a stuck call cycle.

    tests/browser/mock_observe.py [--port 0] [--interval 1.0] [--page FILE]

Prints "mock: http://127.0.0.1:PORT/" on stdout once it listens; runs until
killed. Only the standard library.
"""
import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))


class World:
    """The made-up runtime; every call of snapshot() moves it one step."""

    def __init__(self):
        self.lock = threading.Lock()
        self.start = time.monotonic()
        self.next_serial = 10
        self.step = 0
        self.busy = [0.0, 0.0]
        self.idle = [0.0, 0.0]
        self.handled = {}
        self.slots = {"gateway-0": [self.pid(), 0], "gateway-1": [self.pid(), 0],
                      "model": [self.pid(), 0], "fraud": [self.pid(), 0]}
        self.beh = {"gateway": [0, 0.0, 0], "frontend": [0, 0.0, 0], "supervisor": [0, 0.0, 0]}

    def pid(self):
        self.next_serial += 1
        return "<1.0.%d>" % self.next_serial

    def restart(self, slot):
        self.slots[slot][0] = self.pid()
        self.slots[slot][1] += 1

    def count(self, pid, n):
        self.handled[pid] = self.handled.get(pid, 0) + n
        return self.handled[pid]

    def snapshot(self):
        with self.lock:
            self.step += 1
            s = self.step
            if s % 2 == 0:
                self.restart("gateway-%d" % (s // 2 % 2))
            if s % 5 == 0:
                self.restart("model")
            if s % 9 == 0:
                self.restart("fraud")
                self.slots["model"][1] = 0
            for i in range(2):
                b = 0.2 + 0.3 * i + 0.2 * ((s + i) % 3) / 2
                self.busy[i] += b
                self.idle[i] += 1 - b
            for name, n in (("gateway", 900), ("frontend", 1800), ("supervisor", 3)):
                self.beh[name][0] += n
                self.beh[name][1] += n * (0.000004 if name != "supervisor" else 0.00002)
                self.beh[name][2] += n
            g0, g1 = self.slots["gateway-0"], self.slots["gateway-1"]
            fr, mo = self.slots["fraud"], self.slots["model"]

            def node(pid, parent, depth, beh, name="", loop=0, children=0, restarts=0,
                     mailbox=0, rate=0, info="", state="running"):
                return {"pid": pid, "parent": parent, "depth": depth, "behavior": beh,
                        "name": name, "loop": loop, "state": state, "mailbox": mailbox,
                        "handled": self.count(pid, rate), "restarts": restarts,
                        "children": children, "info": info}

            nodes = [
                node("<1.0.1>", "<0.0.0>", 0, "supervisor", children=4,
                     restarts=fr[1], rate=2, info="one_for_one, 4 children"),
                node("<1.0.2>", "<1.0.1>", 1, "inventory", "inventory", rate=1),
                node("<1.0.3>", "<1.0.1>", 1, "supervisor", children=2,
                     restarts=g0[1] + g1[1], rate=3, info="one_for_one, 2 children"),
                node(g0[0], "<1.0.3>", 2, "gateway", "gateway-0", 0, restarts=g0[1], rate=450),
                node(g1[0], "<1.0.3>", 2, "gateway", "gateway-1", 1, restarts=g1[1], rate=450,
                     mailbox=s % 7),
                node(fr[0], "<1.0.1>", 1, "supervisor", children=1, restarts=mo[1], rate=1,
                     info="one_for_one, 1 child"),
                node(mo[0], fr[0], 2, "model", "model", restarts=mo[1]),
                node("<1.0.4>", "<1.0.1>", 1, "frontend", loop=1, rate=1800,
                     info='a "quoted" <b>name</b> & more'),
                node("<1.1.5>", "<1.1.9>", 1, "caller-a", state="exiting"),
            ]
            ret = {
                "time": round(time.monotonic() - self.start, 3),
                "loops": [{"index": i, "busy_seconds": round(self.busy[i], 4),
                           "idle_seconds": round(self.idle[i], 4),
                           "handled": 1000 * s * (i + 1)} for i in range(2)],
                "behaviors": [{"name": k, "actors": 2, "spawned": 2 + s, "exited": s,
                               "handled": v[0], "handler_seconds_sum": v[1],
                               "handler_count": v[2]} for k, v in self.beh.items()],
                "stuck": [
                    {"caller": "<1.0.4>", "callee": g0[0], "waited_ms": 5200, "cycle": False},
                    {"caller": "<1.0.7>", "callee": "<1.0.8>", "waited_ms": 6100, "cycle": True},
                    {"caller": "<1.0.8>", "callee": "<1.0.7>", "waited_ms": 6000, "cycle": True},
                ] if s >= 3 else [],
                "tree": {"total": 12, "shown": len(nodes), "truncated": True, "nodes": nodes},
            }
            return ret


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--page", default=os.path.join(HERE, "..", "..", "observe", "page.html"))
    args = ap.parse_args()
    world = World()
    page = open(args.page, "rb").read()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def body(self, ctype, data):
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/":
                return self.body("text/html; charset=utf-8", page)
            if self.path == "/tree.json":
                snap = world.snapshot()
                out = {"time": snap["time"], "stuck": snap["stuck"], "tree": snap["tree"]}
                return self.body("application/json", json.dumps(out).encode())
            if self.path == "/events":
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    while True:
                        data = json.dumps(world.snapshot())
                        self.wfile.write(b"event: tick\ndata: " + data.encode() + b"\n\n")
                        self.wfile.flush()
                        time.sleep(args.interval)
                except (BrokenPipeError, ConnectionResetError):
                    return
            self.send_error(404)

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    print("mock: http://127.0.0.1:%d/" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
