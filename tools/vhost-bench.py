#!/usr/bin/env python3
"""Shared hosting at scale (issue 20): N `$HTTP["host"] == "siteI.example"` blocks,
each with its own document root, served by wickd and lighttpd side by side.

For each N: time `-tt`, write the config, start the server (2 workers), time
until a worker answers a request (workers ready), drive wrk (1 KiB file,
keep-alive, 64 connections, Host = the last site), and read the workers'
anonymous memory (smaps_rollup). Then, under a second wrk run, rewrite the config
with N+1 sites and send SIGUSR1: the time until the new site is served, and wrk's
errors and non-2xx answers over the reload (lighttpd too, where it starts).
Bounded: each wrk run lasts DURATION seconds; every server is stopped by its pid.

usage: vhost-bench.py WICKD [N ...]     (default N: 0 2000 20000 100000)
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from procmem import anon_kib, children as tree

PORT_WICKD, PORT_LIGHTTPD = 18490, 18491
DURATION = 4






def wait_port(port, proc, limit=120):
    t = time.time()
    while time.time() - t < limit:
        if proc.poll() is not None:
            return None
        try:
            # Ready when a worker answers, not when the master's socket accepts.
            c = socket.create_connection(("127.0.0.1", port), timeout=1)
            c.sendall(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
            if c.recv(12).startswith(b"HTTP/1."):
                c.close()
                return time.time() - t
            c.close()
        except OSError:
            pass
        time.sleep(0.02)
    return None


def site_answers(port, host):
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=1)
        c.sendall(("GET /index.html HTTP/1.0\r\nHost: %s\r\n\r\n" % host).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            b = c.recv(4096)
            if not b:
                break
            head += b
        c.close()
        return b"Server: %s\r\n" % host.encode() in head
    except OSError:
        return False


def reload_under_load(proc, conf_dir, n, port):
    """SIGUSR1 to N+1 sites under wrk: (seconds until the new site answers, wrk errors)."""
    host = "site%d.example" % (n - 1) if n else "localhost"
    wrk = subprocess.Popen(["wrk", "-t2", "-c64", "-d%ds" % DURATION, "-H", "Host: " + host,
                            "http://127.0.0.1:%d/index.html" % port],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(1)
    write_conf(conf_dir, n + 1, port, "server.max-worker")
    t = time.time()
    proc.send_signal(signal.SIGUSR1)
    took = None
    while time.time() - t < 60:
        if site_answers(port, "site%d.example" % n):
            took = time.time() - t
            break
        time.sleep(0.01)
    out = wrk.communicate(timeout=DURATION + 60)[0]
    errs = [l.strip() for l in out.splitlines() if "Socket errors" in l or "Non-2xx" in l]
    return took, "; ".join(errs) or "none"


def write_conf(d, n, port, workers_key):
    www = os.path.join(d, "www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "index.html"), "wb") as f:
        f.write(b"x" * 1024)
    lines = [
        'server.document-root = "%s"' % www,
        "server.port = %d" % port,
        'server.bind = "127.0.0.1"',
        "%s = 2" % workers_key,
        'index-file.names = ("index.html")',
        "server.max-keep-alive-requests = 65535",
    ]
    # Each site names itself in the Server header (sent anyway, so the sites
    # cost no work per request that no sites do not): the reload is observable.
    for i in range(n):
        lines.append('$HTTP["host"] == "site%d.example" { server.document-root = "%s" '
                     'server.tag = "site%d.example" }' % (i, www, i))
    p = os.path.join(d, "c.conf")
    with open(p, "w") as f:
        f.write("\n".join(lines) + "\n")
    return p


def run(name, cmd, port, n, base):
    d = tempfile.mkdtemp(prefix="vhost-%s-" % name)
    conf = write_conf(d, n, port, "server.max-worker")
    t = time.time()
    check = subprocess.run([c.replace("{conf}", conf) for c in cmd if c != "-D"] + ["-tt"],
                           capture_output=True, timeout=300)
    tt = "%.2f s" % (time.time() - t) if check.returncode == 0 else "fails"
    proc = subprocess.Popen([c.replace("{conf}", conf) for c in cmd],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    started = wait_port(port, proc)
    if started is None:
        err = proc.stderr.read().decode(errors="replace")[-200:] if proc.poll() is not None else "no answer"
        proc.kill()
        shutil.rmtree(d, ignore_errors=True)
        print("| %s | %d | %s | does not start: %s | | | | |" % (name, n, tt, err.strip().replace("\n", " ")))
        return
    host = "site%d.example" % (n - 1) if n else "localhost"
    out = subprocess.run(["wrk", "-t2", "-c64", "-d%ds" % DURATION, "-H", "Host: " + host,
                          "http://127.0.0.1:%d/index.html" % port],
                         capture_output=True, text=True, timeout=DURATION + 30).stdout
    rps = next((l.split()[1] for l in out.splitlines() if l.startswith("Requests/sec")), "?")
    workers = [p for p in tree(proc.pid)] or [proc.pid]
    mem = anon_kib(workers) // max(1, len(workers))
    master = anon_kib([proc.pid])
    ratio = ""
    if base.get(name) and rps != "?":
        ratio = " (x%.2f)" % (float(rps) / base[name])
    elif n == 0 and rps != "?":
        base[name] = float(rps)
    took, errs = reload_under_load(proc, d, n, port)
    master_after = anon_kib([proc.pid])
    reload_s = "%.2f s" % took if took is not None else "not served"
    print("| %s | %d | %s | %.2f s | %s%s | %d KiB | %d KiB | %s, %d KiB after | %s |"
          % (name, n, tt, started, rps, ratio, mem, master, reload_s, master_after, errs))
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(d, ignore_errors=True)


def main():
    wickd = sys.argv[1]
    ns = [int(a) for a in sys.argv[2:]] or [0, 2000, 20000, 100000]
    base = {}
    print("| server | sites | -tt | start | req/s (x of 0 sites) | anon per worker | master anon "
          "| reload to N+1 under wrk | wrk errors over the reload |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in ns:
        run("wickd", [wickd, "-D", "-f", "{conf}"], PORT_WICKD, n, base)
        if shutil.which("lighttpd"):
            run("lighttpd", ["lighttpd", "-D", "-f", "{conf}"], PORT_LIGHTTPD, n, base)


if __name__ == "__main__":
    main()
