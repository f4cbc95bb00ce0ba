#!/usr/bin/env python3
"""benches/auto.py: `-j auto` against a sweep of fixed `-j`, on hosts of known shape.

Starts its own HTTP/1.1 servers on 127.0.0.1 (a child process: Python stdlib asyncio,
keep-alive, thousands of connections), each of a known shape:

- **cap**: serves at most CAP_SLOTS (16) requests at once, CAP_MS (50 ms) each; it
  accepts every connection and queues the requests past 16 in arrival order, so it
  delivers at most 16 / 50 ms = 320 answers/s whatever the client does;
- **lat**: answers every request after LAT_MS (200 ms), any number at once;
- **rate**: a token bucket of RATE/s (50, burst RATE) that answers 429 with
  `Retry-After: 1` past it (every answer after RATE_MS, 10 ms);
- **fast**: answers at once (for the pushback check below).

Every 20 ms the server samples how many requests each host has in flight (received and
not yet answered, queued ones included), so a run can be drawn as in-flight over time.

Profiles (PROFILES):

- cap, lat, rate: a list of URLs of that host alone;
- mix: cap and lat URLs interleaved in one list (one cap, then two lat);
- fast: nginx (a Debian package, installed when missing), 1 KiB bodies, 20,000 URLs,
  `-j auto` against the default `-j`;
- pushback: 200 URLs of the fast host, with and without one URL first that answers 429
  once (`Retry-After: 0`), at `-j 8` and `-j auto`.

For cap, lat, rate and mix, each round runs every fixed `-j` of the sweep (the oracle:
the best of them) and `-j auto`, in an order rotated each round (A B C, B C A, ...);
RUNS rounds; medians. From fetchpool's `--json` output: throughput (entries / wall
time), failures (results not ok, and missing results), and per host the p50 of
`elapsed_ms`. From the server: the most requests in flight per host. `-j auto` is
detected with one trial run; a binary without it gets the fixed sweep only, and the
report says so.

Writes benches/results/auto.md (the report), auto.svg (in-flight over time per host,
`-j auto` against the best fixed `-j`) and auto-raw.tsv (one line per run).

    benches/auto.py                          # builds target/release/fetchpool first
    FETCHPOOL=path benches/auto.py           # an existing binary, no build
    RUNS=1 PROFILES="cap lat" JS="16 64" benches/auto.py

Environment knobs:
    RUNS=3              rounds (runs per point); at least 3 for medians worth reading
    PROFILES="cap lat rate mix fast pushback"
    JS="..."            the fixed -j of every sweep (default: per profile, below)
    JS_CAP="8 16 32 64 256"  JS_LAT="256 512 1024"  JS_RATE="4 16 64"
    JS_MIX="64 128 256 512"  the defaults, bounded so the whole run is about 5 minutes
    CAP_URLS=1000 LAT_URLS=20000 RATE_URLS=250 MIX_CAP_URLS=1000 MIX_LAT_URLS=2000
    FAST_URLS=20000 PUSHBACK_URLS=200 PUSHBACK_J=8
    RUN_TIMEOUT=60      seconds before one run is killed (it then counts as failed)
    BUDGET=720          seconds; past it, no further rounds start (the report says so)
    BUILD=1             cargo build --release --locked first (unless FETCHPOOL is set)
    INSTALL=1           install nginx with apt-get when missing; 0: skip the fast profile
    OUT=benches/results  where the report, plot and raw data go

Every request goes to 127.0.0.1. Every process started here (the server, nginx, each
fetchpool run) is stopped by its PID.
"""

import asyncio
import collections
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def env_int(name, default):
    value = os.environ.get(name, str(default))
    if not re.fullmatch(r"[0-9]+", value) or int(value) < 1:
        sys.exit(f"auto.py: {name} must be a positive integer, not {value!r}")
    return int(value)


def env_float(name, default):
    value = os.environ.get(name, str(default))
    try:
        return float(value)
    except ValueError:
        sys.exit(f"auto.py: {name} must be a number, not {value!r}")


CAP_SLOTS = env_int("CAP_SLOTS", 16)
CAP_MS = env_float("CAP_MS", 50)
LAT_MS = env_float("LAT_MS", 200)
RATE = env_float("RATE", 50)
RATE_MS = env_float("RATE_MS", 10)
SAMPLE_MS = 20

# --------------------------------------------------------------------------- the servers
# They run in a child process (`auto.py --serve`), so the driver's own work (parsing
# NDJSON between runs) never delays an answer.

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests"}
BODY = b"ok\n"


class Host:
    """One listening port of a known shape, and what it saw since the last reset."""

    def __init__(self, name, kind, loop):
        self.name, self.kind, self.loop = name, kind, loop
        self.inflight = 0  # received, not yet answered (queued ones included)
        self.in_service = 0  # cap: being served (at most CAP_SLOTS)
        self.queue = collections.deque()  # cap: waiting for a slot, in arrival order
        self.tokens, self.token_at = RATE, time.monotonic()
        self.reset()

    def reset(self):
        self.peak = self.inflight  # the most in flight since the last sample
        self.max_inflight = self.inflight
        self.requests = 0
        self.statuses = collections.Counter()
        self.first_at = self.last_at = None
        self.once_answered = False
        self.tokens, self.token_at = RATE, time.monotonic()

    def take_token(self):
        now = time.monotonic()
        self.tokens = min(RATE, self.tokens + (now - self.token_at) * RATE)
        self.token_at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def handle(self, conn, target, close):
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
        self.requests += 1
        self.inflight += 1
        self.peak = max(self.peak, self.inflight)
        self.max_inflight = max(self.max_inflight, self.inflight)
        if self.kind == "lat":
            self.loop.call_later(LAT_MS / 1000, self.finish, conn, 200, close, "")
        elif self.kind == "cap":
            self.queue.append((conn, close))
            self.start_queued()
        elif self.kind == "rate":
            if self.take_token():
                status, extra = 200, ""
            else:
                status, extra = 429, "Retry-After: 1\r\n"
            self.loop.call_later(RATE_MS / 1000, self.finish, conn, status, close, extra)
        elif target.startswith(b"/once429") and not self.once_answered:
            self.once_answered = True
            self.finish(conn, 429, close, "Retry-After: 0\r\n")
        else:
            self.finish(conn, 200, close, "")

    def start_queued(self, freed_at=None):
        """Start queued requests on free slots.

        A slot freed by a request that ended at `freed_at` starts the next one then,
        not when the event loop got round to it (at most 10 ms earlier than now), so
        the loop's own lateness does not lower the capacity below 16 per 50 ms.
        """
        now = self.loop.time()
        while self.in_service < CAP_SLOTS and self.queue:
            conn, close = self.queue.popleft()
            start = now if freed_at is None else max(freed_at, now - 0.01)
            freed_at = None
            end = start + CAP_MS / 1000
            self.in_service += 1
            self.loop.call_at(end, self.cap_done, conn, close, end)

    def cap_done(self, conn, close, end):
        self.in_service -= 1
        self.finish(conn, 200, close, "")
        self.start_queued(end)

    def finish(self, conn, status, close, extra):
        self.inflight -= 1
        self.statuses[status] += 1
        self.last_at = time.monotonic()
        conn.respond(status, extra, BODY, close)

    def stats(self):
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "max_inflight": self.max_inflight,
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


class Conn(asyncio.Protocol):
    """HTTP/1.1 on one connection: requests answered one at a time, in order."""

    def __init__(self, handler):
        self.handler = handler
        self.buf = bytearray()
        self.pending = collections.deque()
        self.busy = self.closed = False
        self.tr = None

    def connection_made(self, transport):
        self.tr = transport

    def connection_lost(self, exc):
        self.closed = True

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    self.fail()
                return self.next()
            lines = bytes(self.buf[:end]).split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) != 3:
                return self.fail()
            length, close = 0, parts[2] == b"HTTP/1.0"
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == b"content-length" and value.isdigit():
                    length = int(value)
                elif name == b"connection":
                    close = b"close" in value or (close and b"keep-alive" not in value)
            if len(self.buf) < end + 4 + length:
                return self.next()
            del self.buf[: end + 4 + length]
            self.pending.append((parts[1], close))

    def next(self):
        if self.busy or self.closed or not self.pending:
            return
        self.busy = True
        target, close = self.pending.popleft()
        self.handler(self, target, close)

    def fail(self):
        self.respond(400, "", b"bad request\n", True)

    def respond(self, status, extra, body, close):
        self.busy = False
        if self.closed:
            return
        head = (
            f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}"
            f"{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
        )
        self.tr.write(head.encode() + body)
        if close:
            self.closed = True
            self.tr.close()
        else:
            self.next()


class Sampler:
    """In flight per host every SAMPLE_MS; also how late each sample was (loop lag)."""

    def __init__(self, hosts, loop):
        self.hosts, self.loop = hosts, loop
        self.due = time.monotonic()
        self.reset()

    def reset(self):
        self.samples = []  # [monotonic, [in flight per host], [peak per host]]
        self.lag_max = 0.0
        self.cpu_at = time.process_time()

    def tick(self):
        now = time.monotonic()
        self.lag_max = max(self.lag_max, now - self.due)
        if len(self.samples) < 200_000:
            self.samples.append(
                [round(now, 4), [h.inflight for h in self.hosts], [h.peak for h in self.hosts]]
            )
        for h in self.hosts:
            h.peak = h.inflight
        self.due = now + SAMPLE_MS / 1000
        self.loop.call_later(SAMPLE_MS / 1000, self.tick)


async def serve():
    loop = asyncio.get_running_loop()
    hosts = [Host(name, name, loop) for name in ("cap", "lat", "rate", "fast")]
    sampler = Sampler(hosts, loop)
    ports = {}
    for host in hosts:
        srv = await loop.create_server(
            lambda h=host: Conn(h.handle), "127.0.0.1", 0, backlog=4096, reuse_address=True
        )
        ports[host.name] = srv.sockets[0].getsockname()[1]

    def control(conn, target, close):
        if target == b"/reset":
            for h in hosts:
                h.reset()
            sampler.reset()
            body = b"{}"
        elif target == b"/stats":
            body = json.dumps(
                {
                    "hosts": {h.name: h.stats() for h in hosts},
                    "names": [h.name for h in hosts],
                    "samples": sampler.samples,
                    "lag_max_ms": round(sampler.lag_max * 1000, 1),
                    "cpu_s": round(time.process_time() - sampler.cpu_at, 3),
                }
            ).encode()
        else:
            conn.respond(404, "", b"", True)
            return
        conn.respond(200, "Content-Type: application/json\r\n", body, True)

    ctl = await loop.create_server(lambda: Conn(control), "127.0.0.1", 0)
    ports["control"] = ctl.sockets[0].getsockname()[1]
    sampler.tick()
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()


def serve_main():
    raise_nofile()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        asyncio.run(serve())
    except (KeyboardInterrupt, SystemExit):
        pass


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


# --------------------------------------------------------------------------- the driver


def log(msg):
    print(f"[auto {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def stop_pid(proc, grace=5.0):
    """TERM, wait, then KILL: one process, by its PID."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


class Servers:
    """The child process running the hosts above."""

    def __init__(self, tmp):
        self.err = open(os.path.join(tmp, "server.err"), "w")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve"],
            stdout=subprocess.PIPE,
            stderr=self.err,
            stdin=subprocess.DEVNULL,
        )
        line = self.proc.stdout.readline()
        if not line:
            sys.exit("auto.py: the server process did not start (see its stderr)")
        self.ports = json.loads(line)
        self.by_port = {p: n for n, p in self.ports.items()}

    def url(self, host, path):
        return f"http://127.0.0.1:{self.ports[host]}{path}"

    def ctl(self, what):
        with urllib.request.urlopen(self.url("control", "/" + what), timeout=30) as resp:
            return json.loads(resp.read())

    def stop(self):
        stop_pid(self.proc)
        self.err.close()


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class Bench:
    def __init__(self, fp, tmp, servers):
        self.fp, self.tmp, self.servers = fp, tmp, servers
        self.run_timeout = env_float("RUN_TIMEOUT", 60)
        self.raw = []  # one dict per run

    def write_list(self, name, urls):
        path = os.path.join(self.tmp, name + ".txt")
        with open(path, "w") as out:
            out.write("\n".join(urls) + "\n")
        return path

    def fetch(self, args, listing, count, port_names, sample=True):
        """One fetchpool run; what it and the server saw."""
        if sample:
            self.servers.ctl("reset")
        out_path = os.path.join(self.tmp, "out.ndjson")
        err_path = os.path.join(self.tmp, "run.err")
        summary_path = os.path.join(self.tmp, "summary.json")
        if os.path.exists(summary_path):
            os.remove(summary_path)
        cmd = [self.fp, "--json", "--no-progress", "--summary-json", summary_path]
        cmd += args + ["-i", listing]
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            start = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            try:
                rc = proc.wait(self.run_timeout)
            except subprocess.TimeoutExpired:
                rc = "timeout"
            finally:
                stop_pid(proc, 2)
            wall = time.monotonic() - start
        run = {"wall": wall, "rc": rc, "count": count, "start": start}
        elapsed = collections.defaultdict(list)
        ok = results = 0
        with open(out_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                results += 1
                ok += bool(r.get("ok"))
                port = urllib.parse.urlsplit(r.get("url", "")).port
                elapsed[port_names.get(port, "?")].append(r.get("elapsed_ms"))
        run["results"] = results
        run["failures"] = count - ok
        run["p50"] = {h: median(v) for h, v in elapsed.items()}
        if os.path.exists(summary_path) and os.path.getsize(summary_path):
            with open(summary_path) as f:
                try:
                    run["summary"] = json.load(f)
                except ValueError:
                    run["summary"] = None
        run["conc"] = host_concurrency(run.get("summary"), port_names)
        if rc not in (0, 1):
            with open(err_path, errors="replace") as f:
                run["stderr"] = f.read()[-300:]
        if sample:
            stats = self.servers.ctl("stats")
            run["server"] = stats
        return run

    def supports_auto(self):
        listing = self.write_list("trial", [self.servers.url("fast", "/trial")])
        run = self.fetch(["-j", "auto"], listing, 1, {}, sample=False)
        return run["rc"] == 0 and run["failures"] == 0, run


def host_concurrency(summary, port_names):
    """Per host, the concurrency `-j auto` settled at and the most it reached, as the
    summary JSON gives them (a list of objects with `host` and `settled`): {name: (s, m)}."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            if "host" in node and isinstance(node.get("settled"), (int, float)):
                most = next((v for k, v in node.items() if k != "settled"
                             and isinstance(v, (int, float)) and re.search("max|most|peak", k)),
                            None)
                port = str(node["host"]).rsplit(":", 1)[-1]
                name = port_names.get(int(port), node["host"]) if port.isdigit() else node["host"]
                found[name] = (node["settled"], most)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(summary)
    return found


# ------------------------------------------------------------------- profiles with a sweep


def sweep_js(profile, default):
    value = os.environ.get("JS_" + profile.upper(), os.environ.get("JS", default))
    js = value.split()
    if not js or not all(re.fullmatch(r"[1-9][0-9]*", j) for j in js):
        sys.exit(f"auto.py: JS / JS_{profile.upper()} must list positive integers: {value!r}")
    return [int(j) for j in js]


def profile_urls(name, servers):
    """URL list and the hosts it reaches, of one swept profile."""
    if name in ("cap", "lat", "rate"):
        n = env_int(name.upper() + "_URLS", {"cap": 1000, "lat": 20000, "rate": 250}[name])
        return [servers.url(name, f"/{name}/{i}") for i in range(n)], [name]
    n_cap, n_lat = env_int("MIX_CAP_URLS", 1000), env_int("MIX_LAT_URLS", 2000)
    urls, c, l = [], 0, 0
    while c < n_cap or l < n_lat:
        if c < n_cap:
            urls.append(servers.url("cap", f"/mix/{c}"))
            c += 1
        for _ in range(2):
            if l < n_lat:
                urls.append(servers.url("lat", f"/mix/{l}"))
                l += 1
    return urls, ["cap", "lat"]


SWEEP_DEFAULTS = {
    "cap": "8 16 32 64 256",
    "lat": "256 512 1024",
    "rate": "4 16 64",
    "mix": "64 128 256 512",
}


def rotated(items, r):
    k = r % len(items)
    return items[k:] + items[:k]


def run_sweep(bench, name, auto, runs, deadline):
    urls, hosts = profile_urls(name, bench.servers)
    listing = bench.write_list(name, urls)
    variants = [(f"-j {j}", ["-j", str(j)]) for j in sweep_js(name, SWEEP_DEFAULTS[name])]
    if auto:
        variants.append(("-j auto", ["-j", "auto"]))
    per = {label: [] for label, _ in variants}
    log(f"profile {name}: {len(urls)} URLs, {', '.join(per)}; {runs} rounds")
    done_rounds = 0
    for r in range(runs):
        if r > 0 and time.monotonic() > deadline:
            log(f"  budget used: profile {name} stops after {r} rounds")
            break
        for label, args in rotated(variants, r):
            run = bench.fetch(args, listing, len(urls), bench.servers.by_port)
            run.update(profile=name, variant=label, round=r + 1)
            per[label].append(run)
            bench.raw.append(run)
            log(
                f"  {name} {label} round {r + 1}: {run['wall']:.2f}s "
                f"{len(urls) / run['wall']:.0f}/s failures {run['failures']} "
                + " ".join(f"p50[{h}] {fmt(run['p50'].get(h), 0)}ms" for h in hosts)
                + " in flight max "
                + " ".join(f"{h} {run['server']['hosts'][h]['max_inflight']}" for h in hosts)
                + (f" exit {run['rc']}" if run["rc"] not in (0, 1) else "")
            )
        done_rounds = r + 1
    return {"name": name, "count": len(urls), "hosts": hosts, "per": per, "rounds": done_rounds}


def point(runs, count, hosts):
    """Medians of one variant's runs."""
    walls = [r["wall"] for r in runs]
    wall = median(walls)
    out = {
        "wall": wall,
        "tput": count / wall if wall else None,
        "failures": max((r["failures"] for r in runs), default=None),
        "failed_runs": sum(1 for r in runs if r["failures"]),
        "timeouts": sum(1 for r in runs if r["rc"] == "timeout"),
        "p50": {h: median([r["p50"].get(h) for r in runs]) for h in hosts},
        "inflight_max": {
            h: median([r["server"]["hosts"][h]["max_inflight"] for r in runs]) for h in hosts
        },
        "served_rate": {h: median([served_rate(r, h) for r in runs]) for h in hosts},
        "refused": {
            h: median([r["server"]["hosts"][h]["statuses"].get("429", 0) for r in runs])
            for h in hosts
        },
        "lag_max": max(r["server"]["lag_max_ms"] for r in runs),
        "server_cpu": max(100 * r["server"]["cpu_s"] / r["wall"] for r in runs),
        "n": len(runs),
    }
    return out


def served_rate(run, host):
    """Answers per second the host gave while it was busy (first request to last answer)."""
    h = run["server"]["hosts"][host]
    if not h["first_at"] or not h["last_at"] or h["last_at"] <= h["first_at"]:
        return None
    return sum(h["statuses"].values()) / (h["last_at"] - h["first_at"])


def fmt(x, digits=1):
    if x is None:
        return "n/a"
    if isinstance(x, float) and digits == 0:
        return f"{x:,.0f}"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}"


# ------------------------------------------------------------------- fast host (nginx)


def find_nginx():
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def ensure_nginx():
    if find_nginx():
        return find_nginx()
    if os.environ.get("INSTALL", "1") != "1":
        return None
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if sudo and not shutil.which("sudo"):
        return None
    log("installing nginx (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", RUNLEVEL="1")
    # RUNLEVEL=1: invoke-rc.d does not start the distribution's nginx service.
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "nginx"]):
        if subprocess.run(sudo + cmd, env=env, stdout=sys.stderr).returncode != 0:
            return None
    return find_nginx()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(tmp):
    nginx = ensure_nginx()
    if not nginx:
        return None, None, "nginx is not installed (INSTALL=1 installs it with apt-get)"
    base = os.path.join(tmp, "nginx")
    for d in ("www", "logs", "tmp"):
        os.makedirs(os.path.join(base, d), exist_ok=True)
    os.chmod(tmp, 0o755)
    os.chmod(base, 0o755)
    with open(os.path.join(base, "www", "1k"), "wb") as f:
        f.write(b"x" * 1024)
    port = free_port()
    user = ""
    if os.geteuid() == 0:
        user = "user www-data;" if shutil.which("id") and subprocess.run(
            ["id", "www-data"], capture_output=True).returncode == 0 else "user nobody nogroup;"
    # One worker: the client gets the other core (as in benches/compare.sh).
    conf = f"""{user}
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid {base}/nginx.pid;
error_log {base}/logs/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    default_type text/plain;
    client_body_temp_path {base}/tmp/body;
    proxy_temp_path {base}/tmp/proxy;
    fastcgi_temp_path {base}/tmp/fastcgi;
    uwsgi_temp_path {base}/tmp/uwsgi;
    scgi_temp_path {base}/tmp/scgi;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    open_file_cache max=16 inactive=600s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {base}/www;
        location = /1k {{ }}
    }}
}}
"""
    conf_path = os.path.join(base, "nginx.conf")
    with open(conf_path, "w") as f:
        f.write(conf)
    errlog = open(os.path.join(base, "logs", "stderr.log"), "w")
    proc = subprocess.Popen(
        [nginx, "-c", conf_path, "-p", base + "/", "-e", os.path.join(base, "logs", "error.log")],
        stdout=errlog, stderr=errlog, stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/1k"
    for _ in range(100):
        if proc.poll() is not None:
            return None, None, f"nginx exited (see {base}/logs)"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return proc, url, None
        except OSError:
            time.sleep(0.1)
    stop_pid(proc)
    return None, None, "nginx did not answer within 10 s"


def paired(bench, variants, runs, deadline, title):
    """Variants (label, args, listing, count) in A B A B order; the runs of each."""
    per = {v[0]: [] for v in variants}
    for r in range(runs):
        if r > 0 and time.monotonic() > deadline:
            log(f"  budget used: {title} stops after {r} rounds")
            break
        for label, args, listing, count in rotated(variants, r):
            run = bench.fetch(args, listing, count, {}, sample=False)
            run.update(profile=title, variant=label, round=r + 1)
            per[label].append(run)
            bench.raw.append(run)
            log(f"  {title} {label} round {r + 1}: {run['wall']:.2f}s failures {run['failures']}"
                + (f" exit {run['rc']}" if run["rc"] not in (0, 1) else ""))
    return per


def run_fast(bench, auto, runs, deadline, tmp):
    proc, url, why = start_nginx(tmp)
    if proc is None:
        log(f"profile fast skipped: {why}")
        return {"skipped": why}
    try:
        n = env_int("FAST_URLS", 20000)
        listing = bench.write_list("fast", [f"{url}?i={i}" for i in range(n)])
        variants = [("default -j", [], listing, n)]
        if auto:
            variants.append(("-j auto", ["-j", "auto"], listing, n))
        fast_runs = env_int("FAST_RUNS", 2 * runs + 1)
        log(f"profile fast: {n} URLs of 1 KiB from nginx, {', '.join(v[0] for v in variants)}; "
            f"{fast_runs} rounds")
        per = paired(bench, variants, fast_runs, deadline, "fast")
    finally:
        stop_pid(proc)
    version = subprocess.run([find_nginx(), "-v"], capture_output=True, text=True).stderr
    return {"count": n, "per": per, "nginx": version.strip().split(": ")[-1]}


def run_pushback(bench, auto, runs, deadline):
    n = env_int("PUSHBACK_URLS", 200)
    j = str(env_int("PUSHBACK_J", 8))
    fast = [bench.servers.url("fast", f"/p/{i}") for i in range(n)]
    alone = bench.write_list("pushback-alone", fast)
    with_429 = bench.write_list("pushback-429", [bench.servers.url("fast", "/once429")] + fast)
    variants = []
    for jl in [j] + (["auto"] if auto else []):
        variants.append((f"-j {jl}: {n} alone", ["-j", jl], alone, n))
        variants.append((f"-j {jl}: {n} + one 429", ["-j", jl], with_429, n + 1))
    log(f"profile pushback: {n} fast URLs, alone and after one URL that answers 429 once")
    per = {}
    # The 429 URL answers 429 once per server reset: reset before every run.
    orig = bench.fetch

    def fetch_reset(args, listing, count, names, sample=False):
        bench.servers.ctl("reset")
        return orig(args, listing, count, names, sample=False)

    bench.fetch = fetch_reset
    try:
        per = paired(bench, variants, runs, deadline, "pushback")
    finally:
        bench.fetch = orig
    return {"count": n, "per": per, "j": j}


# ------------------------------------------------------------------- report


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} CPUs ({model}), {mem} RAM, Linux {platform.release()}"


def load_note():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def best_fixed(sweep):
    best = None
    for label, runs in sweep["per"].items():
        if label == "-j auto" or not runs:
            continue
        p = point(runs, sweep["count"], sweep["hosts"])
        if p["failures"] == 0 and (best is None or p["tput"] > best[1]["tput"]):
            best = (label, p)
    return best


def median_run(runs):
    if not runs:
        return None
    return sorted(runs, key=lambda r: r["wall"])[(len(runs) - 1) // 2]


def report(ctx, sweeps, fast, pushback):
    lines = []
    add = lines.append
    add("# `-j auto` against fixed `-j` (benches/auto.py)\n")
    add(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    add(f"- machine: {machine()}; load average at the start {ctx['load']}")
    add(f"- fetchpool: {ctx['version']} (`{ctx['binary']}`)")
    add(f"- command: `{ctx['command']}`, {ctx['elapsed']:.0f} s")
    add(f"- servers: Python {platform.python_version()} asyncio, one process, on 127.0.0.1; "
        f"cap {CAP_SLOTS} at once x {CAP_MS:g} ms (queues the rest), lat {LAT_MS:g} ms, "
        f"rate {RATE:g}/s token bucket (429 + Retry-After: 1 past it, {RATE_MS:g} ms per answer)")
    add(f"- every point: the median of {ctx['runs']} runs, in rotated order each round "
        "(A B C, B C A, ...); throughput = entries / wall time of the whole run")
    if not ctx["auto"]:
        add(f"- **`-j auto`: not available in this binary** ({ctx['auto_note']}): "
            "fixed `-j` only")
    for note in ctx["notes"]:
        add(f"- {note}")
    swept = [r for sw in sweeps for runs in sw["per"].values() for r in runs]
    if swept:
        cpu = max(100 * r["server"]["cpu_s"] / r["wall"] for r in swept)
        lag = statistics.median(r["server"]["lag_max_ms"] for r in swept)
        add(f"- the servers' own load: at most {cpu:.0f}% of one CPU in any run; the "
            f"event loop's worst lateness in a run: median {lag:.0f} ms, worst "
            f"{max(r['server']['lag_max_ms'] for r in swept):.0f} ms (the process waiting "
            "for a CPU on a busy machine, not work: a loaded server shows high CPU % too)")
    add("")
    targets = summary_table(add, sweeps, fast, ctx)
    if pushback and "per" in pushback:
        targets += pushback_section(add, pushback)
    if targets:
        add("\nTargets:\n")
        for text, met in targets:
            add(f"- {text}: {'met' if met else '**not met**'}")
    if sweeps:
        add("\n![in flight per host over time](auto.svg)\n")
        add("In flight per host over time (server side, the most in each 20 ms): the median "
            "run of `-j auto` (solid) and of the best fixed `-j` (dashed).\n")
    for sweep in sweeps:
        sweep_section(add, sweep)
    if fast and "per" in fast:
        add(f"\n## fast: {fast['nginx']} (one worker process), {fast['count']:,} URLs of 1 KiB\n")
        add("| variant | wall s | entries/s | failures (worst run) |")
        add("|---|---:|---:|---:|")
        for label, runs in fast["per"].items():
            w = median([r["wall"] for r in runs])
            add(f"| {label} | {fmt(w, 2)} | {fmt(fast['count'] / w, 0)} | "
                f"{max(r['failures'] for r in runs)} |")
    return "\n".join(lines) + "\n"


def summary_table(add, sweeps, fast, ctx):
    targets = []
    add("| profile | URLs | best fixed -j | its entries/s | -j auto entries/s | auto / best "
        "| failures (auto) | cap p50 ms (best fixed / auto) |")
    add("|---|---:|---|---:|---:|---:|---:|---|")
    for sweep in sweeps:
        best = best_fixed(sweep)
        auto_runs = sweep["per"].get("-j auto") or []
        a = point(auto_runs, sweep["count"], sweep["hosts"]) if auto_runs else None
        ratio = a["tput"] / best[1]["tput"] if a and best else None
        cap = "n/a"
        if "cap" in sweep["hosts"]:
            cap = (f"{fmt(best[1]['p50']['cap'], 0) if best else 'n/a'} / "
                   f"{fmt(a['p50']['cap'], 0) if a else 'n/a'}")
        add(f"| {sweep['name']} | {sweep['count']:,} | {best[0] if best else 'none ok'} | "
            f"{fmt(best[1]['tput'], 0) if best else 'n/a'} | "
            f"{fmt(a['tput'], 0) if a else 'n/a'} | {fmt(ratio, 2)} | "
            f"{a['failures'] if a else 'n/a'} | {cap} |")
        if a and best:
            targets.append((f"{sweep['name']}: auto >= 0.90 x best fixed ({ratio:.2f}) "
                            f"with 0 failures ({a['failures']})",
                            ratio >= 0.9 and a["failures"] == 0))
            if "cap" in sweep["hosts"]:
                p = a["p50"]["cap"]
                targets.append((f"{sweep['name']}: cap p50 <= {1.5 * CAP_MS:g} ms "
                                f"({fmt(p, 0)} ms)", p is not None and p <= 1.5 * CAP_MS))
    if fast and "per" in fast:
        d = fast["per"].get("default -j") or []
        a = fast["per"].get("-j auto") or []
        dw = median([r["wall"] for r in d])
        aw = median([r["wall"] for r in a])
        ratio = dw / aw if dw and aw else None
        add(f"| fast (nginx) | {fast['count']:,} | default ({ctx['default_j']}) | "
            f"{fmt(fast['count'] / dw, 0) if dw else 'n/a'} | "
            f"{fmt(fast['count'] / aw, 0) if aw else 'n/a'} | {fmt(ratio, 2)} | "
            f"{max((r['failures'] for r in a), default='n/a')} | n/a |")
        if ratio is not None:
            targets.append((f"fast: auto >= 0.95 x the default -j ({ratio:.2f})", ratio >= 0.95))
    elif fast:
        add(f"| fast (nginx) | skipped: {fast['skipped']} | | | | | | |")
    return targets


def pushback_section(add, pushback):
    targets = []
    n = pushback["count"]
    add(f"\n**One pushback**: {n} URLs of a fast host alone, and after one URL of the same "
        "host that answers 429 once (`Retry-After: 0`); target: within 2 x + 1 s.\n")
    add("| -j | alone s | + one 429 s | ratio | within 2 x + 1 s |")
    add("|---|---:|---:|---:|---|")
    labels = list(pushback["per"])
    for i in range(0, len(labels), 2):
        a_runs, b_runs = pushback["per"][labels[i]], pushback["per"][labels[i + 1]]
        a = median([r["wall"] for r in a_runs])
        b = median([r["wall"] for r in b_runs])
        j = labels[i].split(":")[0]
        met = a is not None and b is not None and b <= 2 * a + 1
        fails = max((r["failures"] for r in b_runs + a_runs), default=0)
        add(f"| {j} | {fmt(a, 2)} | {fmt(b, 2)} | {fmt(b / a if a else None, 1)} | "
            f"{'yes' if met else 'no'}{f' ({fails} failures)' if fails else ''} |")
        targets.append((f"one pushback, {j}: {fmt(b, 2)} s <= 2 x {fmt(a, 2)} + 1 s", met))
    return targets


IDEAL = {
    "cap": lambda n: (f"The host's capacity is {CAP_SLOTS} / {CAP_MS:g} ms = "
                      f"{CAP_SLOTS * 1000 / CAP_MS:g}/s: {n:,} URLs take at least "
                      f"{n * CAP_MS / 1000 / CAP_SLOTS:.2f} s, at {CAP_MS:g} ms each from "
                      f"`-j {CAP_SLOTS}` up; more in flight only queues."),
    "lat": lambda n: (f"Every answer takes {LAT_MS:g} ms: `-j N` gives at most "
                      f"N / {LAT_MS / 1000:g} s entries/s; more in flight is always faster."),
    "rate": lambda n: (f"The bucket allows {RATE:g} at once, then {RATE:g}/s: {n:,} URLs take at "
                       f"least {max(0.0, (n - RATE) / RATE):.2f} s whatever `-j`."),
    "mix": lambda n: (f"One cap URL, then two lat URLs: the cap host bounds the run at "
                      f"{CAP_SLOTS * 1000 / CAP_MS * 3:g} entries/s, which needs "
                      f"{CAP_SLOTS} in flight at cap and "
                      f"{CAP_SLOTS * 1000 / CAP_MS * 2 * LAT_MS / 1000:g} at lat; a fixed `-j` "
                      "large enough for lat queues the rest of its workers at cap."),
}


def sweep_section(add, sweep):
    hosts = sweep["hosts"]
    add(f"\n## {sweep['name']}: {sweep['count']:,} URLs ({sweep['rounds']} rounds)\n")
    add(IDEAL[sweep["name"]](sweep["count"]) + "\n")
    head = "| -j | wall s | entries/s | failures (worst run) | "
    head += " | ".join(f"p50 ms {h}" for h in hosts) + " | "
    head += " | ".join(f"max in flight {h}" for h in hosts) + " | "
    head += " | ".join(f"served/s {h}" for h in hosts) + " | "
    if "rate" in hosts:
        head += "429s sent | "
    head += "server CPU % | server lag max ms |"
    add(head)
    add("|---" + "|---:" * (5 + 3 * len(hosts) + ("rate" in hosts)) + "|")
    for label, runs in sweep["per"].items():
        if not runs:
            continue
        p = point(runs, sweep["count"], hosts)
        cells = [label.replace("-j ", ""), fmt(p["wall"], 2), fmt(p["tput"], 0),
                 str(p["failures"]) + (f" ({p['timeouts']} timed out)" if p["timeouts"] else "")]
        cells += [fmt(p["p50"][h], 0) for h in hosts]
        cells += [fmt(p["inflight_max"][h], 0) for h in hosts]
        cells += [fmt(p["served_rate"][h], 0) for h in hosts]
        if "rate" in hosts:
            cells.append(fmt(p["refused"]["rate"], 0))
        cells.append(fmt(p["server_cpu"], 0))
        cells.append(fmt(p["lag_max"], 0))
        add("| " + " | ".join(cells) + " |")
    auto = sweep["per"].get("-j auto") or []
    if any(r["conc"] for r in auto):
        parts = []
        for h in hosts:
            settled = median([r["conc"].get(h, (None, None))[0] for r in auto])
            most = median([r["conc"].get(h, (None, None))[1] for r in auto])
            parts.append(f"{h} settled at {fmt(settled, 0)} (most {fmt(most, 0)})")
        add(f"\n`-j auto` per host, from `--summary-json` (medians): {'; '.join(parts)}.")


# ------------------------------------------------------------------- the plot (plain SVG)


def nice_step(span, ticks=4):
    raw = span / ticks
    mag = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def series(run, host):
    """(seconds from the run's start, in flight) of one host in one run."""
    stats = run["server"]
    i = stats["names"].index(host)
    pts = [(t - run["start"], peak[i]) for t, _, peak in stats["samples"]]
    end = run["wall"]
    return [(t, v) for t, v in pts if -0.05 <= t <= end + 0.1]


def svg(sweeps):
    panels = []
    for sweep in sweeps:
        best = best_fixed(sweep)
        auto = median_run(sweep["per"].get("-j auto") or [])
        fixed = median_run(sweep["per"][best[0]]) if best else None
        for host in sweep["hosts"]:
            title = sweep["name"] if len(sweep["hosts"]) == 1 else f"{sweep['name']}: {host}"
            lines = []
            if auto:
                lines.append(("-j auto", series(auto, host), "#1f6feb", ""))
            if fixed:
                lines.append((best[0], series(fixed, host), "#cf222e", "5,3"))
            panels.append((title, host, lines))
    if not panels:
        return None
    w, ph, left, top, gap = 760, 150, 60, 30, 50
    h = top + len(panels) * (ph + gap)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="16" font-size="13">requests in flight per host '
           f'(server side, 20 ms samples) over time</text>']
    pw = w - left - 20
    for k, (title, host, lines) in enumerate(panels):
        y0 = top + k * (ph + gap) + 14
        # each panel its own scales: one slow run would squash the others
        tmax = max(0.5, max((t for _, pts, _, _ in lines for t, _ in pts), default=1))
        vmax = max((v for _, pts, _, _ in lines for _, v in pts), default=1)
        if host == "cap":
            vmax = max(vmax, CAP_SLOTS)
        step = nice_step(max(vmax, 1))
        vtop = step * -(-max(vmax, 1) // step)

        def X(t):
            return left + pw * t / tmax

        def Y(v):
            return y0 + ph - ph * v / vtop

        out.append(f'<text x="{left}" y="{y0 - 4}" font-weight="bold">{title}</text>')
        out.append(f'<rect x="{left}" y="{y0}" width="{pw}" height="{ph}" fill="none" '
                   'stroke="#999"/>')
        v = 0
        while v <= vtop:
            out.append(f'<line x1="{left}" x2="{left + pw}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" '
                       'stroke="#eee"/>')
            out.append(f'<text x="{left - 4}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
            v += step
        tstep = nice_step(tmax, 8)
        t = 0.0
        while t <= tmax + 1e-9:
            out.append(f'<text x="{X(t):.1f}" y="{y0 + ph + 13}" text-anchor="middle">'
                       f'{t:g}{" s" if t == 0 else ""}</text>')
            t += tstep
        if host == "cap":
            out.append(f'<line x1="{left}" x2="{left + pw}" y1="{Y(CAP_SLOTS):.1f}" '
                       f'y2="{Y(CAP_SLOTS):.1f}" stroke="#2da44e" stroke-dasharray="2,2"/>')
            out.append(f'<text x="{left + 4}" y="{Y(CAP_SLOTS) - 3:.1f}" '
                       f'fill="#2da44e">capacity {CAP_SLOTS}</text>')
        lx = left + pw
        for label, pts, color, dash in lines:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            if pts:
                path = " ".join(f"{X(t):.1f},{Y(v):.1f}" for t, v in pts)
                out.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                           f'stroke-width="1.3"{dash_attr}/>')
            # the legend, right-aligned above the panel
            out.append(f'<text x="{lx}" y="{y0 - 4}" text-anchor="end" fill="{color}">'
                       f'{label}</text>')
            lx -= 7 * len(label)
            out.append(f'<line x1="{lx - 24}" x2="{lx - 4}" y1="{y0 - 8}" y2="{y0 - 8}" '
                       f'stroke="{color}" stroke-width="1.3"{dash_attr}/>')
            lx -= 40
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------- main


def write_raw(path, raw):
    cols = ["profile", "variant", "round", "rc", "wall", "count", "results", "failures"]
    with open(path, "w") as f:
        f.write("\t".join(cols + ["p50_ms", "server_max_inflight", "server_lag_max_ms"]) + "\n")
        for r in raw:
            p50 = ",".join(f"{h}={fmt(v, 0)}" for h, v in sorted(r["p50"].items()))
            srv = r.get("server")
            mx = ",".join(f"{h}={v['max_inflight']}" for h, v in srv["hosts"].items()
                          if v["requests"]) if srv else ""
            lag = str(srv["lag_max_ms"]) if srv else ""
            vals = [str(r[c]) if not isinstance(r[c], float) else f"{r[c]:.3f}" for c in cols]
            f.write("\t".join(vals + [p50, mx, lag]) + "\n")


def default_j(fp):
    try:
        text = subprocess.run([fp, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(r"--workers[^\[]*\[default: ([^\]]+)\]", text)
    if not m:
        return "?"
    if m.group(1).startswith("min(32, CPUs + 4)"):
        return f"{m.group(1)} = {min(32, (os.cpu_count() or 1) + 4)} here"
    return m.group(1)


def main():
    raise_nofile()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runs = env_int("RUNS", 3)
    profiles = os.environ.get("PROFILES", "cap lat rate mix fast pushback").split()
    for p in profiles:
        if p not in ("cap", "lat", "rate", "mix", "fast", "pushback"):
            sys.exit(f"auto.py: unknown profile {p!r} (cap lat rate mix fast pushback)")
    budget = env_float("BUDGET", 720)
    out_dir = os.environ.get("OUT", os.path.join(HERE, "results"))
    fp = os.environ.get("FETCHPOOL", os.path.join(ROOT, "target", "release", "fetchpool"))
    if os.environ.get("BUILD", "1") == "1" and "FETCHPOOL" not in os.environ:
        log("building: cargo build --release --locked")
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    if not os.access(fp, os.X_OK):
        sys.exit(f"auto.py: no fetchpool binary at {fp}")
    version = subprocess.run([fp, "--version"], capture_output=True, text=True).stdout.strip()
    knobs = " ".join(f"{k}={os.environ[k]!r}" if " " in os.environ[k] else f"{k}={os.environ[k]}"
                     for k in sorted(os.environ)
                     if re.fullmatch(r"RUNS|PROFILES|JS(_[A-Z]+)?|[A-Z_]+_URLS|PUSHBACK_J|"
                                     r"BUDGET|CAP_SLOTS|CAP_MS|LAT_MS|RATE|RATE_MS", k))
    ctx = {"runs": runs, "binary": os.path.relpath(fp, ROOT), "version": version,
           "command": (knobs + " " if knobs else "") + "benches/auto.py",
           "load": load_note(), "notes": [], "default_j": default_j(fp)}
    start = time.monotonic()
    deadline = start + budget
    sweeps, fast, pushback = [], None, None
    with tempfile.TemporaryDirectory(prefix="fetchpool-auto.") as tmp:
        servers = Servers(tmp)
        try:
            bench = Bench(fp, tmp, servers)
            ctx["auto"], trial = bench.supports_auto()
            ctx["auto_note"] = (trial.get("stderr") or f"exit {trial['rc']}").strip()
            ctx["auto_note"] = ctx["auto_note"].splitlines()[0] if ctx["auto_note"] else ""
            log(f"{version}: -j auto {'accepted' if ctx['auto'] else 'NOT accepted: ' + ctx['auto_note']}")
            for name in profiles:
                if name in SWEEP_DEFAULTS:
                    sweeps.append(run_sweep(bench, name, ctx["auto"], runs, deadline))
                elif name == "fast":
                    fast = run_fast(bench, ctx["auto"], runs, deadline, tmp)
                elif name == "pushback":
                    pushback = run_pushback(bench, ctx["auto"], runs, deadline)
        finally:
            servers.stop()
    ctx["elapsed"] = time.monotonic() - start
    if ctx["elapsed"] > budget:
        ctx["notes"].append(f"the budget of {budget:g} s was used up: some points have fewer "
                            "runs (see the rounds of each profile)")
    os.makedirs(out_dir, exist_ok=True)
    text = report(ctx, sweeps, fast, pushback)
    with open(os.path.join(out_dir, "auto.md"), "w") as f:
        f.write(text)
    picture = svg(sweeps)
    if picture:
        with open(os.path.join(out_dir, "auto.svg"), "w") as f:
            f.write(picture)
    write_raw(os.path.join(out_dir, "auto-raw.tsv"), bench.raw)
    print(text)
    log(f"report written to {os.path.join(out_dir, 'auto.md')}; {ctx['elapsed']:.0f} s")


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve_main()
    else:
        try:
            main()
        except KeyboardInterrupt:
            sys.exit(130)
