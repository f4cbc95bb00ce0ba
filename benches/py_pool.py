#!/usr/bin/env python3
"""The textbook Python baseline for benches/compare.sh.

A fixed pool of threads (concurrent.futures.ThreadPoolExecutor) and urllib, exactly as
the seed lecture does it (the `fetchPage` example): submit every URL, then print
(url, size, elapsed) per URL as futures complete (`as_completed`). Nothing is tuned on
purpose: urllib opens one connection per request (no keep-alive), every URL is
submitted up front (memory grows with the input), the whole body is read.

usage: py_pool.py N [FILE|-] [--cacert PEM]
  N       max_workers
  FILE    one URL per line; '-' or absent: stdin
  --cacert PEM   trust the certificates in PEM (ssl context with cafile=PEM)
Exit status: 0 if every URL gave a 2xx/3xx response, 1 otherwise.
"""
import argparse
import concurrent.futures
import ssl
import sys
import time
import urllib.request


def main():
    ap = argparse.ArgumentParser(description="ThreadPoolExecutor + urllib fetcher")
    ap.add_argument("workers", type=int)
    ap.add_argument("file", nargs="?", default="-")
    ap.add_argument("--cacert")
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_intermixed_args()

    ctx = ssl.create_default_context(cafile=args.cacert) if args.cacert else None

    def fetch_page(url):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=args.timeout, context=ctx) as resp:
            data = resp.read()
        return url, len(data), time.perf_counter() - start

    src = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
    with src:
        urls = [line.strip() for line in src]
    urls = [u for u in urls if u and not u.startswith("#")]

    failed = 0
    out = sys.stdout
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.workers) as executor:
        futures = {executor.submit(fetch_page, url): url for url in urls}
        for future in concurrent.futures.as_completed(futures):
            url = futures[future]
            try:
                _, size, elapsed = future.result()
                out.write(f"{url} {size} {elapsed:.3f}\n")
            except Exception as exc:  # noqa: BLE001 - report and go on, like the lecture
                failed += 1
                out.write(f"{url} ERR {exc}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
