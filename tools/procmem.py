"""Process trees and their memory from /proc, for the tools' measurements
(h2-idle-mem.py, tls-idle-mem.py, vhost-bench.py import it: Python puts a
script's own directory on sys.path)."""
import os


def children(pid):
    """Direct children of `pid`."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if ppid == pid:
            out.append(int(p))
    return out


def tree(pid):
    """`pid` and all its descendants."""
    out = [pid]
    for c in children(pid):
        out.extend(tree(c))
    return out


def rollup_kib(pids, field):
    """Sum of one smaps_rollup field ("Pss:", "Anonymous:") over `pids`, KiB."""
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith(field):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def pss_kib(pid):
    """Proportional set size of `pid` and its descendants, KiB."""
    return rollup_kib(tree(pid), "Pss:")


def anon_kib(pids):
    """Anonymous memory of `pids`, KiB."""
    return rollup_kib(pids, "Anonymous:")
