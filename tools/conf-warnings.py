#!/usr/bin/env python3
"""What wickd says about each configuration of the shared corpus (issue 14).

Runs `wickd -tt` (or -p) over ../shared/compat/lighttpd-confs in the throw-away
namespaces conf_accept.py makes (root), keeps every line it prints on stderr,
and counts the files per thing warned about: a key not acted on, a module wickd
does not have, an unknown key, a deprecated name, a dropped list element, a file
start-up would fail on. The most common are the next work list.

usage: sudo tools/conf-warnings.py ../shared/compat [-tt|-p] [--bin WICKD] [--lines OUT.json]
(WICKD: target/release/wickd unless given)
"""
import collections, importlib.util, json, os, re, sys, tempfile

def load_conf_accept(compat):
    spec = importlib.util.spec_from_file_location("conf_accept", os.path.join(compat, "conf_accept.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # Report every stderr line, not only the first error.
    tail = 'print(json.dumps({"rc": p.returncode,'
    assert tail in mod.INNER, "conf_accept.py changed: its last line is not where it was"
    mod.INNER = mod.INNER.replace(tail, 'print(json.dumps({"lines": lines, "rc": p.returncode,')
    return mod

# (pattern, label): the first that matches names the line.
KINDS = [
    (r": ([\w.-]+) \([\w_]+\) is accepted but not acted on", "ignored key {}"),
    (r"server\.modules: (mod_\w+)(?: \(lighttpd loads it implicitly\))? is not built into wickd", "module not built: {}"),
    (r"unknown config-key: ([\w.-]+) \(ignored\); (mod_\w+) is not in server.modules", "key of a module not loaded: {}"),
    (r"unknown config-key: ([\w.-]+)", "unknown key: {}"),
    (r"DEPRECATED: ([\w.-]+) replaced with", "deprecated name: {}"),
    (r"DEPRECATED: do not set server options in conditionals, variable: ([\w.-]+)", "server option in a condition: {}"),
    (r"(\w+\.server) \"bin-path\"", "{} bin-path (not started)"),
    (r": (auth\.backend\.\w+\.userfile) .*: cannot be read", "user file unreadable (logins fail): {}"),
    (r"include-conf-enabled.pl is deprecated", "Debian helper include-conf-enabled.pl (shimmed)"),
    (r"server.feature-flags \"([^\"]+)\"", "feature flag not acted on: {}"),
    (r"([\w.-]+) in a condition is not acted on", "per-request key read globally only: {}"),
    (r"missing ',' before", "list element dropped (missing ',')"),
    (r"'(if|elif|elsif|elseif|else if)'", "later lighttpd keyword: {}"),
    (r": ([\w.-]+) .*: cannot be written: .*start-up will fail", "start will fail writing: {}"),
    (r": ([\w.-]+) .*no such (?:file or )?directory; requests for it get 404", "does not exist (404): {}"),
    (r"Warning: please add \"(mod_\w+)\"", "lighttpd: please add {}"),
    (r"mod_compress\" is DEPRECATED", "deprecated module: mod_compress"),
    (r"([\w.-]+) must be in global scope", "socket key outside $SERVER[\"socket\"]: {}"),
    (r"should be listed in server.modules before", "module order"),
]

def label(line):
    for pat, fmt in KINDS:
        m = re.search(pat, line)
        if m:
            return fmt.format(*m.groups()) if m.groups() else fmt
    return None

def main():
    args = sys.argv[1:]
    out = None
    if "--lines" in args:
        i = args.index("--lines"); out = args[i + 1]; del args[i:i + 2]
    wickd = os.path.abspath(os.path.join(os.path.dirname(__file__), "../target/release/wickd"))
    if "--bin" in args:
        i = args.index("--bin"); wickd = os.path.abspath(args[i + 1]); del args[i:i + 2]
    compat = args[0]
    mode = args[1] if len(args) > 1 else "-tt"
    ca = load_conf_accept(compat)
    corpus = os.path.join(compat, "lighttpd-confs")
    rows = list(ca.csv.DictReader(open(os.path.join(corpus, "INDEX.tsv")), delimiter="\t"))
    files = collections.Counter()
    other = collections.Counter()
    per_file = {}
    for row in rows:
        if not os.path.exists(os.path.join(corpus, row["file"])):
            continue
        spec = ca.spec_for(row, corpus, wickd, mode)
        with tempfile.TemporaryDirectory(prefix="confwarn.") as scratch:
            spec["scratch"] = scratch
            p = ca.subprocess.run(["unshare", "-m", "-n", "-p", "-f", "--mount-proc", sys.executable, "-c",
                                   ca.INNER, json.dumps(spec)], capture_output=True, text=True, timeout=60)
        try:
            r = json.loads(p.stdout.strip().splitlines()[-1])
        except Exception:
            r = {"rc": -2, "lines": [(p.stderr or p.stdout)[-300:]]}
        lines = r.get("lines", [])
        per_file[row["file"]] = {"rc": r["rc"], "lines": lines}
        seen = set()
        for l in lines:
            k = label(l)
            if k is None:
                if re.search("warning|deprecated", l, re.I):
                    other[re.sub(r"^\S+:\d+(:\d+)?: ", "", l.split("WARNING: ", 1)[-1])[:90]] += 1
                continue
            seen.add(k)
        files.update(seen)
    if out:
        json.dump(per_file, open(out, "w"), indent=1)
    warned = sum(1 for v in per_file.values() if v["lines"])
    print(f"{len(per_file)} files, {warned} with something said ({mode})")
    print("| files | warned about |\n|---:|---|")
    for k, n in files.most_common():
        print(f"| {n} | {k} |")
    if other:
        print("\nunclassified warning lines:")
        for k, n in other.most_common(20):
            print(f"  {n:3}  {k}")

if __name__ == "__main__":
    main()
