#!/usr/bin/env python3
"""A login flood's effect on the other clients of wickd (issue 18).

Starts `wickd` (the binary given) on 127.0.0.1 with a public 1 KiB file and the
same file under a Basic-protected path (htpasswd, bcrypt at cost 10), then runs
wrk (bounded: -d seconds) against the public file while N scripted clients send
wrong passwords to the protected path in a loop (bounded in time and count):
none, the same wrong password, or ever new ones. Also: the protected file with
good credentials (after the first login) against the same file unprotected.
Prints one table line per run: req/s and latency p50/p99 of wrk, the workers'
CPU time per wrk request in microseconds (flood included: steadier than req/s on
a shared machine), wrk's non-2xx count, and what the flooders got. Every process it starts is stopped by its PID.

    tools/auth-flood-bench.py --wickd target/release/wickd [--delay on|off]
"""

import argparse
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CONF = """
server.document-root = "{root}/www"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{root}/error.log"
server.max-worker = {workers}
server.max-keep-alive-requests = 65535
server.modules = ("mod_auth", "mod_authn_file")
mimetype.assign = (".txt" => "text/plain")
auth.backend = "htpasswd"
auth.backend.htpasswd.userfile = "{root}/htpasswd"
auth.require = ( "/p/" => ( "method" => "basic", "realm" => "R", "require" => "valid-user" ) )
{flags}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(args, root, delay):
    port = free_port()
    flags = "" if delay == "on" else 'server.feature-flags = ( "auth.delay-invalid-creds" => "disable" )'
    conf = os.path.join(root, "wickd.conf")
    with open(conf, "w") as f:
        f.write(CONF.format(root=root, port=port, workers=args.workers, flags=flags))
    p = subprocess.Popen([args.wickd, "-D", "-f", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return p, port
        except OSError:
            time.sleep(0.05)
    p.kill()
    sys.exit("wickd did not start")


def request(port, path, cred):
    """One request on its own connection, read to the close: the status."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    h = base64.b64encode(cred.encode()).decode()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {h}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    return int(data[9:12]) if len(data) >= 12 else 0


def flooder(port, i, mode, stop, tally):
    n = 0
    while not stop.is_set() and n < 100000:
        pw = "wrong" if mode == "same" else f"wrong-{i}-{n}"
        try:
            st = request(port, "/p/x.txt", f"u:{pw}")
        except OSError:
            st = -1
        with tally["lock"]:
            tally[st] = tally.get(st, 0) + 1
        n += 1


def wrk(args, port, path, header=None):
    cmd = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    if header:
        cmd += ["-H", header]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, lat.get("50", "?"), lat.get("99", "?"), int(errors.group(1)) if errors else 0, total


def workers_cpu(master):
    """CPU seconds (user + system) the master's children (the workers) used."""
    ticks = 0
    try:
        kids = open(f"/proc/{master}/task/{master}/children").read().split()
    except OSError:
        return 0.0
    for k in kids:
        try:
            f = open(f"/proc/{k}/stat").read().rsplit(")", 1)[1].split()
            ticks += int(f[11]) + int(f[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def run(args, label, mode, path="/pub.txt", header=None):
    root = tempfile.mkdtemp(prefix="authflood-")
    try:
        os.makedirs(os.path.join(root, "www", "p"))
        body = (b"0123456789abcdef" * 64)
        for rel in ("www/pub.txt", "www/p/x.txt"):
            with open(os.path.join(root, rel), "wb") as f:
                f.write(body)
        line = subprocess.run(["htpasswd", "-nbB", "-C", "10", "u", "pw"], capture_output=True, text=True).stdout.strip()
        with open(os.path.join(root, "htpasswd"), "w") as f:
            f.write(line + "\n")
        os.chmod(root, 0o755)
        p, port = start(args, root, args.delay)
        try:
            assert request(port, "/p/x.txt", "u:pw") == 200
            stop = threading.Event()
            tally = {"lock": threading.Lock()}
            threads = []
            if mode != "none":
                for i in range(args.flooders):
                    t = threading.Thread(target=flooder, args=(port, i, mode, stop, tally), daemon=True)
                    t.start()
                    threads.append(t)
                time.sleep(1)
            cpu0 = workers_cpu(p.pid)
            rps, p50, p99, bad, total = wrk(args, port, path, header)
            cpu = (workers_cpu(p.pid) - cpu0) * 1e6 / max(total, 1)
            stop.set()
            for t in threads:
                t.join(timeout=15)
            got = ", ".join(f"{k}: {v}" for k, v in sorted((k, v) for k, v in tally.items() if k != "lock"))
            print(f"| {label} | {rps:,.0f} | {p50} | {p99} | {cpu:.2f} | {bad} | {got or '-'} |", flush=True)
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wickd", required=True)
    ap.add_argument("--name", default="wickd")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--flooders", type=int, default=8)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--delay", choices=["on", "off"], default="on", help="auth.delay-invalid-creds")
    ap.add_argument("--only", default="none,same,distinct,auth", help="runs to do")
    args = ap.parse_args()
    only = args.only.split(",")
    n = args.flooders
    for mode in ("none", "same", "distinct"):
        if mode in only:
            run(args, f"{args.name} delay={args.delay}: public file, flood {mode if mode != 'none' else 'none'}"
                + (f" x{n}" if mode != "none" else ""), mode)
    if "auth" in only:
        cred = "Authorization: Basic " + base64.b64encode(b"u:pw").decode()
        run(args, f"{args.name}: protected file, good login (cached)", "none", "/p/x.txt", cred)
        run(args, f"{args.name}: same file unprotected", "none", "/pub.txt", cred)


if __name__ == "__main__":
    main()
