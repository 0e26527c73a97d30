#!/usr/bin/env python3
"""Memory per idle connection, HTTP/2 (h2c prior knowledge) against HTTP/1.1
(issue 16: an idle h2 connection holds no more than an idle HTTP/1.1 one plus
its HPACK tables).

Opens N cleartext connections to 127.0.0.1:PORT, makes one request on each
(MODE h1: a keep-alive GET; h2: preface, SETTINGS, one GET stream read to its
END_STREAM), then sums the PSS of the server's processes (the pid given and its
descendants, /proc/PID/smaps_rollup) before and while they are held, and prints
KiB per connection. Bounded: N connections, then everything is closed.

usage: h2-idle-mem.py PID PORT MODE [N] [PATH]
"""
import os
import socket
import struct
import sys
import time

from procmem import pss_kib, tree






def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(name_index, value):
    # Literal without indexing, indexed name, raw string (RFC 7541 6.2.2).
    return bytes([name_index]) + bytes([len(value)]) + value


def h2_request(s, path, port):
    block = b"\x82\x86" + literal(4, path.encode()) + literal(1, b"127.0.0.1:%d" % port)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 5, 1, block))
    buf = b""
    deadline = time.time() + 5
    while time.time() < deadline:
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            kind, flags, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            if kind == 4 and not flags & 1:
                s.sendall(frame(4, 1, 0, b""))
            if sid == 1 and kind in (0, 1) and flags & 1:
                return True
            buf = buf[9 + n:]
        d = s.recv(65536)
        if not d:
            return False
        buf += d
    return False


def h1_request(s, path):
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return False
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        d = s.recv(65536)
        if not d:
            return False
        body += d
    return True


def main():
    pid, port, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    path = sys.argv[5] if len(sys.argv) > 5 else "/index.html"
    time.sleep(0.5)
    before = pss_kib(pid)
    conns = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            ok = h2_request(s, path, port) if mode == "h2" else h1_request(s, path)
            if not ok:
                print("request failed", file=sys.stderr)
                return 1
            conns.append(s)
        time.sleep(1.0)
        held = pss_kib(pid)
        print("%s: %d idle connections: %.2f KiB each (PSS %d -> %d KiB)"
              % (mode, n, (held - before) / n, before, held))
    finally:
        for s in conns:
            s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
