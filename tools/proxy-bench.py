#!/usr/bin/env python3
"""mod_proxy under load: wickd, lighttpd 1.4.69 (mod_proxy) and nginx (proxy_pass)
side by side, each proxying to the same static backend (a wickd serving a 1 KiB
file, 2 workers), in one run.

Each front proxy opens one backend connection per request (wickd and lighttpd
send `Connection: close`; nginx's default proxy_pass keeps no upstream
connections either); clients use keep-alive. Fronts: wickd with 2 workers,
lighttpd single-process (how it is deployed) and with server.max-worker = 2,
nginx with 2 workers. Rounds are interleaved (round r runs the fronts in an
order rotated by r) so drift of the shared machine hits all alike; the table
gives the median req/s, min-max, and the ratio to lighttpd's median.

Bounded: every wrk run lasts DURATION seconds (hard timeout + 30 s); only
127.0.0.1; every process started here is stopped by its pid (process group).

usage: proxy-bench.py WICKD [--rounds N] [--duration S] [--conns C]
       (WICKD: a release build, target/release/wickd)
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BIND = "127.0.0.1"


def free_port():
    s = socket.socket()
    s.bind((BIND, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_ready(port, proc, path="/index.html", limit=30):
    t = time.time()
    while time.time() - t < limit:
        if proc.poll() is not None:
            return False
        try:
            c = socket.create_connection((BIND, port), timeout=1)
            c.sendall(("GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path).encode())
            head = c.recv(12)
            ok = head.startswith(b"HTTP/1.") and head[9:12] == b"200"
            c.close()
            if ok:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def start(cmd, port, d, name):
    log = open(os.path.join(d, name + ".out"), "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    if not wait_ready(port, proc):
        stop(proc)
        sys.exit("%s did not answer on port %d (see %s)" % (name, port, log.name))
    return proc


def stop(proc):
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def wrk(port, duration, conns):
    out = subprocess.run(
        ["wrk", "-t2", "-c%d" % conns, "-d%ds" % duration,
         "http://%s:%d/index.html" % (BIND, port)],
        capture_output=True, text=True, timeout=duration + 30).stdout
    rps = next((float(l.split()[1]) for l in out.splitlines()
                if l.startswith("Requests/sec")), 0.0)
    bad = next((l for l in out.splitlines() if "Non-2xx" in l or "Socket errors" in l), "")
    return rps, bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("wickd")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--conns", type=int, default=32)
    a = ap.parse_args()
    wickd = os.path.abspath(a.wickd)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    d = tempfile.mkdtemp(prefix="proxy-bench-")
    procs = []
    try:
        www = os.path.join(d, "www")
        os.makedirs(www)
        with open(os.path.join(www, "index.html"), "wb") as f:
            f.write(b"x" * 1024)
        be = free_port()
        conf = write(os.path.join(d, "backend.conf"), "\n".join([
            'server.document-root = "%s"' % www,
            'server.bind = "%s"' % BIND,
            "server.port = %d" % be,
            "server.max-worker = 2",
            "server.max-keep-alive-requests = 65535",
            'server.errorlog = "%s/backend-error.log"' % d,
        ]) + "\n")
        procs.append(start([wickd, "-D", "-f", conf], be, d, "backend"))

        fronts = []

        def lighttpd_like(name, binary, workers):
            port = free_port()
            conf = write(os.path.join(d, name + ".conf"), "\n".join([
                'server.document-root = "%s"' % www,
                'server.bind = "%s"' % BIND,
                "server.port = %d" % port,
                "server.max-worker = %d" % workers,
                "server.max-keep-alive-requests = 65535",
                "server.max-fds = 4096",
                'server.errorlog = "%s/%s-error.log"' % (d, name),
                'server.modules = ("mod_proxy")',
                'proxy.server = ( "" => ( ( "host" => "%s", "port" => %d ) ) )' % (BIND, be),
            ]) + "\n")
            procs.append(start([binary, "-D", "-f", conf], port, d, name))
            fronts.append((name, port))

        lighttpd_like("wickd", wickd, 2)
        lt = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
        if os.path.exists(lt):
            lighttpd_like("lighttpd", lt, 0)
            lighttpd_like("lighttpd-w2", lt, 2)
        ng = shutil.which("nginx") or "/usr/sbin/nginx"
        if os.path.exists(ng):
            port = free_port()
            conf = write(os.path.join(d, "nginx.conf"), """
worker_processes 2;
daemon off;
pid %(d)s/nginx.pid;
error_log %(d)s/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 65535;
  client_body_temp_path %(d)s/nb; proxy_temp_path %(d)s/np;
  fastcgi_temp_path %(d)s/nf; uwsgi_temp_path %(d)s/nu; scgi_temp_path %(d)s/ns;
  server {
    listen %(bind)s:%(port)d;
    location / { proxy_pass http://%(bind)s:%(be)d; }
  }
}
""" % dict(d=d, bind=BIND, port=port, be=be))
            procs.append(start([ng, "-p", d, "-e", os.path.join(d, "nginx-error.log"),
                                "-c", conf], port, d, "nginx"))
            fronts.append(("nginx", port))

        # Warm-up, then interleaved rounds.
        for _, port in fronts:
            wrk(port, 1, a.conns)
        results = {n: [] for n, _ in fronts}
        notes = {}
        for r in range(a.rounds):
            order = fronts[r % len(fronts):] + fronts[:r % len(fronts)]
            for name, port in order:
                rps, bad = wrk(port, a.duration, a.conns)
                results[name].append(rps)
                if bad:
                    notes[name] = bad.strip()
        base = statistics.median(results.get("lighttpd") or [0]) or None
        print("mod_proxy to a static wickd (1 KiB file), wrk -t2 -c%d -d%ds, %d rounds, "
              "load before %s" % (a.conns, a.duration, a.rounds, load))
        print()
        print("| front proxy | req/s (median) | min-max | x lighttpd |")
        print("|---|---|---|---|")
        for name, _ in fronts:
            v = results[name]
            med = statistics.median(v)
            ratio = "%.2f" % (med / base) if base else "-"
            print("| %s | %.0f | %.0f-%.0f | %s |" % (name, med, min(v), max(v), ratio))
        for name, note in notes.items():
            print("note: %s: %s" % (name, note))
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
