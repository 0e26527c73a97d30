#!/usr/bin/env python3
# usage: tools/reload-bench.py SERVER_BINARY|lighttpd WORKERS INTERVAL_SECONDS
# Failed requests and keep-alive connections closed under a client during 20 graceful
# restarts (SIGUSR1), for one server command. Bounded: 20 reloads, fixed interval.
import os, signal, socket, subprocess, sys, threading, time, tempfile

server, workers, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
d = tempfile.mkdtemp(prefix="rb-")
os.makedirs(f"{d}/www")
body = b"<html>reload bench page</html>\n" * 30
open(f"{d}/www/index.html", "wb").write(body)
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
conf = f"""server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{d}/www"
server.errorlog = "{d}/error.log"
server.max-worker = {workers}
server.modules = ("mod_indexfile", "mod_staticfile")
index-file.names = ("index.html",)
"""
open(f"{d}/x.conf", "w").write(conf)
if server == "lighttpd":
    cmd = ["setsid", "/usr/sbin/lighttpd", "-D", "-f", f"{d}/x.conf"]
else:
    cmd = [server, "-D", "-f", f"{d}/x.conf"]
p = subprocess.Popen(cmd)
for _ in range(200):
    try:
        socket.create_connection(("127.0.0.1", port)).close(); break
    except OSError: time.sleep(0.02)
time.sleep(0.5)
pid = p.pid
stop = threading.Event()
lock = threading.Lock()
st = dict(ok=0, failed=0, ka_closed=0, errors=[])
REQ = b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n"
REQC = b"GET /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"

def note(k, e=None):
    with lock:
        st[k] += 1
        if e and len(st["errors"]) < 10: st["errors"].append(e)

def read_resp(f):
    line = f.readline()
    if not line: return None
    n, close = 0, False
    while True:
        h = f.readline()
        if not h: raise IOError("eof in head")
        if h in (b"\r\n", b"\n"): break
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length": n = int(v)
        if k.strip().lower() == b"connection" and v.strip().lower() == b"close": close = True
    b = f.read(n)
    if len(b) != n: raise IOError("short body")
    return line.split()[1], close

def newconn():
    while not stop.is_set():
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            c.sendall(REQC)
            f = c.makefile("rb")
            r = read_resp(f); c.close()
            if r and r[0] == b"200": note("ok")
            else: note("failed", "new: no response")
        except Exception as e: note("failed", f"new: {e}")

def keepalive():
    c = f = None; used = False
    while not stop.is_set():
        try:
            if c is None:
                c = socket.create_connection(("127.0.0.1", port), timeout=10); f = c.makefile("rb"); used = False
            c.sendall(REQ)
            r = read_resp(f)
            if r is None:
                # closed without answering a request sent on a reused connection
                if used: note("ka_closed")
                else: note("failed", "ka: closed on first request")
                c.close(); c = None; continue
            note("ok"); used = True
            if r[1]: c.close(); c = None
        except (ConnectionResetError, BrokenPipeError) as e:
            if used: note("ka_closed")
            else: note("failed", f"ka: {e}")
            c = None
        except Exception as e:
            note("failed", f"ka: {e}"); c = None

ts = [threading.Thread(target=t) for t in (newconn, newconn, keepalive, keepalive)]
for t in ts: t.start()
time.sleep(0.5)
for i in range(20):
    os.kill(pid, signal.SIGUSR1)
    time.sleep(interval)
time.sleep(1)
stop.set()
for t in ts: t.join()
alive = p.poll() is None
os.kill(pid, signal.SIGTERM)
try: p.wait(10)
except Exception: p.kill()
print(f"{server}: ok={st['ok']} failed={st['failed']} keepalive_closed_unanswered={st['ka_closed']} alive_after={alive} errors={st['errors'][:5]}")
