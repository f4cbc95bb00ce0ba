#!/usr/bin/env python3
"""benches/politeness.py: a rate-limited host is held near the rate it allows.

Starts two HTTP/1.1 servers (Python stdlib, threads, keep-alive) on 127.0.0.1:

- the *limited* host: a token bucket of RATE requests/s with a burst of BURST;
  past it, 429 with `Retry-After: 1`;
- the *fast* host: always 200.

Then runs fetchpool once over SLOW URLs of the limited host interleaved with FAST
URLs of the fast host (two limited, one fast, ...), `-j 32`, default retries, and
reports what the issue's goal measures:

- failures (results with ok false);
- wall time, and its ratio to the ideal (BURST at once, then RATE/s: 19 s for
  200 URLs at 10/s with a burst of 10);
- 429s the limited host sent, in all;
- when the fast host's last result arrived on stdout, from the start.

    benches/politeness.py                      # builds target/release/fetchpool first
    FETCHPOOL=path BUILD=0 benches/politeness.py
    BASELINE=path/to/old/fetchpool benches/politeness.py   # also run an older build

Bounded: 300 URLs, each run killed after RUN_TIMEOUT seconds (default 120).
Every request goes to 127.0.0.1; the servers are threads of this process.
"""

import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = float(os.environ.get("RATE", "10"))
BURST = float(os.environ.get("BURST", "10"))
SLOW = int(os.environ.get("SLOW", "200"))
FAST = int(os.environ.get("FAST", "100"))
WORKERS = os.environ.get("WORKERS", "32")
RUN_TIMEOUT = float(os.environ.get("RUN_TIMEOUT", "120"))


class Bucket:
    """A token bucket: `rate` tokens per second, at most `burst` saved up."""

    def __init__(self, rate, burst):
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, time.monotonic()
        self.lock = threading.Lock()

    def take(self):
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


class Log:
    """What a server answered, and when."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answers = []  # (monotonic time, status)

    def add(self, status):
        with self.lock:
            self.answers.append((time.monotonic(), status))

    def count(self, status):
        with self.lock:
            return sum(1 for _, s in self.answers if s == status)


def server(bucket, log):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            ok = bucket is None or bucket.take()
            status = 200 if ok else 429
            body = b"ok\n" if ok else b"slow down\n"
            log.add(status)
            self.send_response(status)
            if not ok:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        # The default listen backlog of 5 drops SYNs when 32 workers connect
        # at once, and a dropped SYN is retried a second later.
        request_queue_size = 256

    srv = Server(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def run(binary, label):
    limited_log, fast_log = Log(), Log()
    limited = server(Bucket(RATE, BURST), limited_log)
    fast = server(None, fast_log)
    lport, fport = limited.server_address[1], fast.server_address[1]
    urls, s, f = [], 0, 0
    while s < SLOW or f < FAST:
        for _ in range(2):
            if s < SLOW:
                urls.append(f"http://127.0.0.1:{lport}/item/{s}")
                s += 1
        if f < FAST:
            urls.append(f"http://127.0.0.1:{fport}/page/{f}")
            f += 1
    with tempfile.TemporaryDirectory() as tmp:
        listing = os.path.join(tmp, "urls.txt")
        summary_path = os.path.join(tmp, "summary.json")
        with open(listing, "w") as out:
            out.write("\n".join(urls) + "\n")
        cmd = [binary, "--json", "-j", WORKERS, "--summary-json", summary_path, "-i", listing]
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        killer = threading.Timer(RUN_TIMEOUT, proc.kill)
        killer.start()
        results, fast_done = [], None
        for line in proc.stdout:
            r = json.loads(line)
            results.append(r)
            if f":{fport}/" in r["url"]:
                fast_done = time.monotonic() - start
        stderr = proc.stderr.read().decode(errors="replace")
        code = proc.wait()
        wall = time.monotonic() - start
        killer.cancel()
        summary = {}
        if os.path.exists(summary_path) and os.path.getsize(summary_path) > 0:
            with open(summary_path) as f_in:
                summary = json.load(f_in)
    limited.shutdown()
    fast.shutdown()
    ideal = (SLOW - BURST) / RATE
    failed = sum(1 for r in results if not r["ok"])
    fast_last_request = max((t for t, _ in fast_log.answers), default=start) - start
    report = {
        "label": label,
        "exit": code,
        "results": len(results),
        "failed": failed,
        "wall_s": round(wall, 2),
        "ideal_s": ideal,
        "wall_over_ideal": round(wall / ideal, 3),
        "limited_429": limited_log.count(429),
        "limited_200": limited_log.count(200),
        "fast_last_result_s": None if fast_done is None else round(fast_done, 2),
        "fast_last_request_s": round(fast_last_request, 2),
        "pushed_back": summary.get("pushed_back"),
        "max_attempts": max((r["attempts"] for r in results), default=0),
    }
    goals = {
        "0 failures": failed == 0 and len(results) == SLOW + FAST,
        f"wall <= 1.3 x ideal ({1.3 * ideal:.1f} s)": wall <= 1.3 * ideal,
        "at most 30 429s": report["limited_429"] <= 30,
        "fast host done within 5 s": fast_done is not None and fast_done <= 5.0,
    }
    return report, goals, stderr


def main():
    binary = os.environ.get("FETCHPOOL", os.path.join(ROOT, "target", "release", "fetchpool"))
    if os.environ.get("BUILD", "1") == "1" and "FETCHPOOL" not in os.environ:
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    runs = [(binary, "fetchpool")]
    if os.environ.get("BASELINE"):
        runs.append((os.environ["BASELINE"], "baseline"))
    print(
        f"# politeness: {SLOW} URLs to a host allowing {RATE:g}/s (burst {BURST:g}, then 429 "
        f"Retry-After: 1), interleaved with {FAST} to a fast host, -j {WORKERS}\n"
    )
    all_met = True
    for path, label in runs:
        report, goals, stderr = run(path, label)
        print(f"## {label} ({path})\n")
        print("```")
        print(json.dumps(report, indent=2))
        print("```")
        if label == "fetchpool":
            for goal, met in goals.items():
                print(f"- {goal}: {'met' if met else 'NOT met'}")
                all_met &= met
        tail = [l for l in stderr.splitlines() if l.startswith(("summary", "  "))]
        print("\nsummary on stderr:\n```\n" + "\n".join(tail) + "\n```\n")
    sys.exit(0 if all_met else 1)


if __name__ == "__main__":
    main()
