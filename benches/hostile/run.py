#!/usr/bin/env python3
"""Runs fetchpool and curl against the hostile server and compares verdicts.

    benches/hostile/run.py [--fetchpool PATH] [CASE-PREFIX...]

Builds nothing: PATH defaults to target/debug/fetchpool (build it first with
`cargo build`). Makes a throwaway self-signed certificate with `openssl req
-x509` (SAN IP:127.0.0.1) in a temporary directory, starts server.py (which
binds only 127.0.0.1) and stops it by its PID at the end, whatever happens.

For each case of cases.py it runs

    fetchpool --json --sha256 -o DIR --retries 1 -m 5 -j 1 -q --cacert CERT URL
    curl -sS --max-time 5 -o FILE -w '%{http_code}' --cacert CERT URL

(plus the case's flags) and prints one row: the case, the right verdict, what
fetchpool said (ok/status/bytes/sha256 prefix or the error kind), what curl
said (exit code and status, or its error), and a mark:

    ok     fetchpool's verdict is a right one and its bytes are the body's
    DIFF   fetchpool is right, curl says otherwise (the why line explains)
    LIE    fetchpool is wrong: ok when it is not, a sha256 or a saved file that
           is not the body, a wrong error kind, a retried protocol error, a
           saved file after a failure, a run past its deadline
    WRONG  fetchpool refuses a response RFC 9112 says to accept

Then the --names cases (hostile paths under tree and flat: every file must
stay inside DIR and hold the bytes its sha256 names) and the --continue
cases against servers that lie in Content-Range. Exit status 1 when any row
is a LIE or WRONG. A run takes about a minute.
"""

import atexit
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cases  # noqa: E402

CURL_KIND = {
    0: "ok", 1: "protocol", 8: "protocol", 18: "io", 28: "timeout", 35: "tls", 52: "io",
    56: "io", 61: "protocol", 63: "too_large", 92: "protocol",
}


def main():
    args = sys.argv[1:]
    fp = os.path.join(HERE, "..", "..", "target", "debug", "fetchpool")
    if args[:1] == ["--fetchpool"]:
        fp, args = args[1], args[2:]
    fp = os.path.abspath(fp)
    tmp = tempfile.mkdtemp(prefix="hostile-")
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    server = subprocess.Popen([sys.executable, os.path.join(HERE, "server.py"), cert, key],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    atexit.register(lambda: (server.kill(), server.wait()))
    _, plain, tls = server.stdout.readline().decode().split()
    env = Env(fp, cert, tmp, plain, tls)
    lies = 0
    print(f"{'case':28} {'right':16} {'fetchpool':34} {'curl':30} mark")
    for name, c in cases.CASES.items():
        if not args or any(name.startswith(a) for a in args):
            lies += env.row(name, c)
    if not args or any(a.startswith("names") for a in args):
        lies += env.names()
    for name in cases.RESUME:
        if not args or any(name.startswith(a) for a in args):
            lies += env.resume(name)
    print(f"\n{lies} LIE or WRONG row(s)")
    return 1 if lies else 0


class Env:
    def __init__(self, fp, cert, tmp, plain, tls):
        self.fp, self.cert, self.tmp = fp, cert, tmp
        self.plain, self.tls = plain, tls
        self.n = 0

    def url(self, name, tls=False, suffix=""):
        scheme, port = ("https", self.tls) if tls else ("http", self.plain)
        return f"{scheme}://127.0.0.1:{port}/c/{name}{suffix}"

    def fresh(self):
        self.n += 1
        d = os.path.join(self.tmp, f"run{self.n}")
        os.makedirs(d)
        return d

    def fetchpool(self, urls, flags, out=None, retries=1):
        out = out or self.fresh()
        cmd = [self.fp, "--json", "--sha256", "-o", out, "--retries", str(retries), "-m", "5", "-j", "1",
               "-q", "--cacert", self.cert, *flags, *urls]
        t = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, timeout=60)
        wall = time.monotonic() - t
        lines = [json.loads(line) for line in p.stdout.decode().splitlines() if line.strip()]
        lines.sort(key=lambda r: r["seq"])
        return lines, out, wall, p.stderr.decode()

    def curl(self, urls, flags):
        d = self.fresh()
        cmd = ["curl", "-sS", "--max-time", "5", "--cacert", self.cert, "-w", "%{http_code} ", *flags]
        files = []
        for i, u in enumerate(urls):
            f = os.path.join(d, f"f{i}")
            files.append(f)
            cmd += [u, "-o", f]
        p = subprocess.run(cmd, capture_output=True, timeout=60)
        codes = p.stdout.decode().split()
        bodies = [open(f, "rb").read() if os.path.exists(f) else None for f in files]
        return p.returncode, codes, bodies, p.stderr.decode().strip().splitlines()[-1:] or [""]

    def row(self, name, c):
        urls = [self.url(name, c.get("tls", False))]
        if c.get("second"):
            urls.append(self.url("second"))
        results, out, wall, err = self.fetchpool(urls, c.get("flags", []))
        rc, codes, bodies, cerr = self.curl(urls, c.get("curl", []))
        body = c.get("body", b"hello")
        problems = check(results[0] if results else None, c["expect"], body, out, wall)
        if c.get("second") and len(results) > 1:
            second = None if "HEAD" in c.get("flags", []) else b"second\n"
            problems += ["second: " + p for p in check(results[1], "ok", second, None, wall)]
        elif c.get("second"):
            problems.append("no second result")
        fv = verdict(results[0]) if results else "no result: " + err.strip()[:30]
        if c.get("second") and len(results) > 1:
            fv += " +2nd:" + verdict(results[1]).split()[0]
        cv = curl_verdict(rc, codes, bodies, cerr)
        right = c["expect"]
        mark = grade(problems) or ("ok" if agrees(right, fv, cv) else "DIFF")
        print(f"{name:28} {right:16} {fv:34} {cv:30} {mark}")
        for p in problems:
            print(f"{'':28}   !! {p}")
        if mark == "DIFF":
            print(f"{'':28}   why: {c.get('why', '')}; curl: {cerr[0][:90]}")
        return 1 if problems else 0

    def names(self):
        """Hostile paths under --names tree and flat: inside DIR, bytes as hashed."""
        paths = ["/..%2f..%2fescape", "/a/b/%2e%2e/%2e%2e/x", "/a%00b", "/CON", "/.hidden", "/a%5cb",
                 "/" + "x" * 300, "/dir/", "/q?a=/../b", "/%E2%80%AEfdp.exe", "/.fetchpool-meta-x",
                 "/.fetchpool-part-y", "/same", "/same"]
        lies = 0
        for layout in ("tree", "flat"):
            urls = [f"http://127.0.0.1:{self.plain}/c/named{p}" for p in paths]
            results, out, _, err = self.fetchpool(urls, ["--names", layout])
            problems = []
            real = os.path.realpath(out)
            for r in results:
                problems += check(r, "ok", b"hello", None, 0)
                if r.get("saved_to") and not os.path.realpath(r["saved_to"]).startswith(real + os.sep):
                    problems.append(f"outside DIR: {r['saved_to']}")
            saved = {os.path.realpath(r["saved_to"]) for r in results if r.get("saved_to")}
            if len(saved) != len(paths):
                problems.append(f"{len(saved)} distinct files for {len(paths)} entries")
            on_disk = []
            for root, _, files in os.walk(out):
                on_disk += [os.path.realpath(os.path.join(root, f)) for f in files]
            stray = [f for f in on_disk if f not in saved and not os.path.basename(f).startswith(".fetchpool-")]
            if stray:
                problems.append(f"files nobody reported: {stray[:3]}")
            mark = grade(problems) or "ok"
            print(f"{'names-' + layout:28} {'ok x' + str(len(paths)):16} "
                  f"{sum(r['ok'] for r in results):>2} ok, {len(saved)} files{'':20} {'(no curl)':30} {mark}")
            for p in problems:
                print(f"{'':28}   !! {p}")
            lies += bool(problems)
        return lies

    def resume(self, name):
        """A cut download (ETag, 400 of 1024 bytes), its retry meets a lying 206."""
        expect = cases.RESUME_EXPECT[name]
        body = cases.BIG[:100] if name == "resume-206-unasked" else cases.BIG
        results, out, wall, err = self.fetchpool([self.url(name)], [], retries=2)
        r = results[0] if results else None
        problems = check(r, expect, body, out, wall)
        fv = verdict(r) if r else "no result"
        if r and r.get("resumed_from") is not None:
            fv += f" from {r['resumed_from']}"
        # curl -C - on a file holding the first 400 bytes, as a resumed run would.
        d = self.fresh()
        f = os.path.join(d, "f")
        with open(f, "wb") as fh:
            fh.write(cases.BIG[:400])
        p = subprocess.run(["curl", "-sS", "--max-time", "5", "-C", "-", "-o", f, "-w", "%{http_code}",
                            self.url(name)], capture_output=True, timeout=60)
        got = open(f, "rb").read()
        cv = f"rc{p.returncode} {p.stdout.decode()} {len(got)}B " + ("=full" if got == cases.BIG else "!=full")
        mark = grade(problems) or "ok"
        print(f"{name:28} {expect:16} {fv:34} {cv:30} {mark}")
        for prob in problems:
            print(f"{'':28}   !! {prob}")
        return 1 if problems else 0


def grade(problems):
    """LIE when a result misdescribes the body, WRONG when it refuses a valid response."""
    if not problems:
        return None
    return "WRONG" if all(p.startswith("refused: ") for p in problems) else "LIE"


def check(r, expect, body, out, wall):
    """What is wrong with result r, given the right verdicts and body."""
    if r is None:
        return ["no result"]
    problems = []
    kinds = expect.split("|")
    err = r.get("error")
    if r["ok"]:
        if "ok" not in kinds:
            problems.append(f"ok, but the right verdict is {expect}")
        if body is not None and r.get("sha256") != cases.sha(body):
            problems.append(f"sha256 {str(r.get('sha256'))[:12]} is not the body's {cases.sha(body)[:12]}")
        if body is None and (r.get("sha256") or r.get("saved_to")):
            problems.append("a bodiless response was hashed or saved")
    elif err is None:
        if "status" not in kinds:
            problems.append(f"status {r['status']} outside --accept, but the right verdict is {expect}")
    else:
        if err["kind"] not in kinds:
            refused = "refused: " if kinds == ["ok"] else ""
            problems.append(f"{refused}kind {err['kind']} ({err['message'][:60]}), but the right verdict is {expect}")
        if err["kind"] == "protocol" and r["attempts"] > 1:
            problems.append(f"protocol retried: {r['attempts']} attempts")
        if r.get("saved_to"):
            problems.append("a failed result has a saved_to")
    saved = r.get("saved_to")
    if saved:
        if not os.path.exists(saved):
            problems.append("saved_to does not exist")
        else:
            data = open(saved, "rb").read()
            if cases.sha(data) != r.get("sha256") or len(data) != r["bytes"]:
                problems.append("the saved file is not what sha256/bytes name")
    elif not r["ok"] and out:
        for root, _, files in os.walk(out):
            visible = [f for f in files if not f.startswith(".")]
            if visible:
                problems.append(f"a failure left {visible[:2]} under a final name")
    if wall > 12:
        problems.append(f"took {wall:.1f} s with -m 5")
    return problems


def verdict(r):
    if r is None:
        return "-"
    if r.get("error"):
        return f"{r['error']['kind']}"
    sha = (r.get("sha256") or "-")[:8]
    return f"{'ok' if r['ok'] else 'status'} {r['status']} {r['bytes']}B {sha}"


def curl_verdict(rc, codes, bodies, err):
    code = codes[0] if codes else "-"
    if rc == 0:
        b = bodies[0]
        sha = cases.sha(b)[:8] if b is not None else "-"
        size = len(b) if b is not None else 0
        ok = code.isdigit() and 200 <= int(code) <= 399
        return f"{'ok' if ok else 'status'} {code} {size}B {sha}"
    return f"{CURL_KIND.get(rc, 'rc')}(rc{rc}) {code}"


def agrees(right, fv, cv):
    """Whether curl's verdict is the same kind of answer as fetchpool's."""
    return fv.split()[0].split("+")[0] == cv.split()[0].split("(")[0]


if __name__ == "__main__":
    sys.exit(main())
