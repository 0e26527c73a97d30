#!/usr/bin/env python3
"""Memory per idle TLS keep-alive connection of a running server (issue 15).

Opens N TLS connections to 127.0.0.1:PORT, sends one request on each and reads
the answer, then sums the PSS of the server's processes (the pid given and its
descendants, /proc/PID/smaps_rollup) before and while they are held idle, and
prints KiB per connection. Bounded: N connections, then everything is closed.

usage: tls-idle-mem.py PID PORT [N] [PATH]
"""
import os
import socket
import ssl
import sys
import time

from procmem import pss_kib, tree






def main():
    pid, port = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    path = sys.argv[4] if len(sys.argv) > 4 else "/index.html"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    before = pss_kib(pid)
    conns = []
    deadline = time.time() + 120
    for _ in range(n):
        if time.time() > deadline:
            break
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        conns.append(s)
    time.sleep(1)
    held = pss_kib(pid)
    print("connections %d  PSS before %d KiB  held %d KiB  per connection %.1f KiB"
          % (len(conns), before, held, (held - before) / max(1, len(conns))))
    for s in conns:
        s.close()


if __name__ == "__main__":
    main()
