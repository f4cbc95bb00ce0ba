#!/usr/bin/env python3
"""Turns the raw timings of benches/compare.sh into the markdown report.

usage: report.py META.tsv SCEN.tsv CMDS.tsv RAW.tsv > latest.md
(compare.sh writes those files; this script only reads them.)
"""
import csv
import statistics
import sys

TOOL_ORDER = ["fetchpool", "curl", "xargs", "wget2", "python", "loadgen"]
SCEN_ORDER = ["a", "b", "c", "d", "e20k", "e200k", "g", "h"]
SCEN_HEAD = {
    "a": "(a)",
    "b": "(b)",
    "c": "(c)",
    "d": "(d)",
    "e20k": "(e)",
    "e200k": "(e)",
    "g": "(g)",
    "h": "(h)",
}


def read_tsv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def fmt(x, digits=2):
    if x is None:
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def ratio(x, ref):
    if x is None or ref is None or ref == 0:
        return "n/a"
    return f"{x / ref:.2f}x"


def main():
    meta_path, scen_path, cmds_path, raw_path = sys.argv[1:5]
    meta = {}
    with open(meta_path, encoding="utf-8") as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            meta[k] = v
    scens = {r["scen"]: r for r in read_tsv(scen_path)}
    cmds = {}
    with open(cmds_path, encoding="utf-8") as f:
        for line in f:
            s, tool, label, runs, cmd = line.rstrip("\n").split("\t", 4)
            cmds[(s, tool)] = {"label": label, "runs": int(runs), "cmd": cmd}
    raw = read_tsv(raw_path)
    loadgen_kind = meta.get("loadgen_kind", "wrk")

    # stats[(scen, tool)] -> dict of medians (None when no run succeeded)
    stats = {}
    for (s, tool), c in cmds.items():
        count = int(scens[s]["count"])
        rows = [r for r in raw if r["scen"] == s and r["tool"] == tool]
        ok = [r for r in rows if r["ok"] == "1"]
        notes = sorted({r["note"] for r in rows if r["note"]})
        st = {"ok": len(ok), "runs": c["runs"], "notes": notes, "label": c["label"]}
        if ok:
            walls = [num(r["wall"]) for r in ok]
            cpus = [num(r["user"]) + num(r["sys"]) for r in ok]
            rss = [num(r["rss_kib"]) / 1024 for r in ok]
            conns = [num(r["conns"]) for r in ok]
            if tool == "loadgen" and loadgen_kind == "wrk":
                rps = statistics.median(num(r["lg_rps"]) for r in ok)
                # wrk runs for a duration: scale its CPU to COUNT requests and give the
                # wall time COUNT requests take at its rate
                cpus = [c_ * count / num(r["lg_reqs"]) for c_, r in zip(cpus, ok)]
                st["wall"] = count / rps
                st["rps"] = rps
                st["derived"] = True
            else:
                st["wall"] = statistics.median(walls)
                st["rps"] = count / st["wall"]
                st["derived"] = False
            st["cpu"] = statistics.median(cpus)
            st["cpu_per_1k_ms"] = st["cpu"] / count * 1000 * 1000
            st["rss"] = statistics.median(rss)
            st["conns"] = statistics.median(conns)
            st["wall_min"] = min(walls)
            st["wall_max"] = max(walls)
        stats[(s, tool)] = st

    out = []
    w = out.append
    w("# fetchpool vs its peers: latest run of benches/compare.sh")
    w("")
    w(f"- date: {meta.get('date')}")
    w(f"- machine: {meta.get('machine')}")
    w(f"- command: `{meta.get('command')}` (took {meta.get('elapsed')})")
    w(f"- fetchpool: {meta.get('fetchpool')}; {meta.get('curl')}; {meta.get('wget2')}; "
      f"{meta.get('python')}; nginx {meta.get('nginx')}; load generator: {meta.get('loadgen')}")
    w(f"- server: nginx on 127.0.0.1, {meta.get('nginx_workers', '1')} worker process(es), `access_log off`, keep-alive "
      "(1,000,000 requests per connection); delays from the echo module's `echo_sleep`; "
      "TLS: HTTP/1.1, RSA-2048 self-signed certificate, trusted with `--cacert` (curl), "
      "`--ca-certificate` (wget2), an `ssl` context with `cafile` (Python).")
    w("")
    w("How to read: every figure is the **median** of the successful runs (runs alternate "
      "between tools, round-robin). *wall* is elapsed seconds; *CPU* is user+sys seconds "
      "of the tool and all its child processes; *peak RSS* is the largest resident set of "
      "a single process (for `xargs`, one `curl` process, not the sum of the concurrent "
      "ones); *req/s* is URLs / median wall; *conns* is the number of TCP connections "
      "nginx accepted during the run (over https: TLS handshakes), from its `stub_status` "
      "counters. Ratios are *tool / fetchpool*: above 1 means a longer wall, more CPU, "
      "more memory, or more req/s than fetchpool. A run counts as successful only if the "
      "tool exited 0 and nginx saw exactly one request per URL. Python and xargs, 3 to "
      "10 times slower than the others, get fewer runs (SLOW_RUNS, SLOW_BIG_RUNS); the "
      "*runs ok* column says how many.")
    if loadgen_kind == "wrk":
        w("")
        w("The load generator is wrk, which runs for a fixed duration rather than a fixed "
          "number of requests: its *wall* is (number of URLs) / (wrk's req/s), marked "
          "with `~`, and its CPU is scaled to the same number of requests. It hits one "
          "URL over and over; it is the ceiling, not a peer.")
    w("")

    for s in SCEN_ORDER:
        if s not in scens:
            continue
        sc = scens[s]
        count, conc = int(sc["count"]), int(sc["conc"])
        ideal = num(sc["ideal"])
        head = f"## {SCEN_HEAD[s]} {sc['title'][0].upper()}{sc['title'][1:]}"
        w(head)
        w("")
        if ideal:
            w(f"Ideal wall: {ideal:.2f} s ({count:,} URLs x delay / {conc} in flight).")
            w("")
        w("| tool | runs ok | wall s | x fp | CPU s | x fp | CPU ms / 1k req | peak RSS MiB "
          "| x fp | req/s | x fp | conns |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        ref = stats.get((s, "fetchpool"), {})
        for tool in TOOL_ORDER:
            st = stats.get((s, tool))
            if st is None:
                continue
            label = st["label"]
            if "wall" not in st:
                w(f"| {label} | 0/{st['runs']} | n/a | n/a | n/a | n/a | n/a | n/a | n/a "
                  f"| n/a | n/a | n/a |")
                continue
            wall = ("~" if st["derived"] else "") + fmt(st["wall"])
            w(f"| {label} | {st['ok']}/{st['runs']} | {wall} | {ratio(st['wall'], ref.get('wall'))} "
              f"| {fmt(st['cpu'])} | {ratio(st['cpu'], ref.get('cpu'))} "
              f"| {fmt(st['cpu_per_1k_ms'], 1)} "
              f"| {fmt(st['rss'], 1)} | {ratio(st['rss'], ref.get('rss'))} "
              f"| {fmt(st['rps'], 0)} | {ratio(st['rps'], ref.get('rps'))} "
              f"| {fmt(st['conns'], 0)} |")
        w("")
        notes = [(tool, n) for tool in TOOL_ORDER for n in stats.get((s, tool), {}).get("notes", [])]
        if notes:
            w("Failed runs: " + "; ".join(f"{t}: {n}" for t, n in notes) + ".")
            w("")
        w("<details><summary>commands</summary>")
        w("")
        for tool in TOOL_ORDER:
            c = cmds.get((s, tool))
            if c:
                w(f"- {tool}: `{c['cmd']}`")
        w("")
        w("</details>")
        w("")

    if "e20k" in scens and "e200k" in scens:
        w("## (e) Memory growth: 20,000 -> 200,000 URLs")
        w("")
        w("| tool | peak RSS MiB, 20k | peak RSS MiB, 200k | 200k / 20k | req/s, 200k |")
        w("|---|---:|---:|---:|---:|")
        for tool in TOOL_ORDER:
            a, b = stats.get(("e20k", tool)), stats.get(("e200k", tool))
            if not a or not b:
                continue
            ra, rb = a.get("rss"), b.get("rss")
            growth = f"{rb / ra:.2f}" if ra and rb else "n/a"
            w(f"| {tool} | {fmt(ra, 1)} | {fmt(rb, 1)} | {growth} | {fmt(b.get('rps'), 0)} |")
        w("")
        w(f"fetchpool's first result line before stdin is closed: {meta.get('first_line', 'n/a')}")
        w("")

    w("## Targets (fetchpool)")
    w("")
    for line in targets(stats, scens, meta):
        w(f"- {line}")
    w("")
    print("\n".join(out))


def targets(stats, scens, meta):
    def g(s, tool, key):
        return stats.get((s, tool), {}).get(key)

    def verdict(ok):
        return "n/a" if ok is None else ("met" if ok else "**NOT met**")

    peers = ["curl", "xargs", "wget2", "python"]
    lines = []
    if "a" in scens:
        fp, lg = g("a", "fetchpool", "wall"), g("a", "loadgen", "wall")
        pw = [g("a", p, "wall") for p in peers if g("a", p, "wall") is not None]
        ok = None if fp is None or lg is None else (fp <= lg and all(fp < x for x in pw))
        lines.append(f"(a) wall <= load generator ({fmt(lg)} s) and < every peer "
                     f"(best {fmt(min(pw) if pw else None)} s): fetchpool {fmt(fp)} s -> {verdict(ok)}")
    if "b" in scens:
        fp, rss = g("b", "fetchpool", "wall"), g("b", "fetchpool", "rss")
        ideal = num(scens["b"]["ideal"])
        ok = None if fp is None else fp <= 1.15 * ideal
        lines.append(f"(b) wall <= 1.15 x ideal ({1.15 * ideal:.2f} s): {fmt(fp)} s -> {verdict(ok)}")
        ok = None if rss is None else rss <= 64
        lines.append(f"(b) peak RSS <= 64 MiB with 1,000 workers: {fmt(rss, 1)} MiB -> {verdict(ok)}")
    for s in ("g", "h"):
        if s in scens:
            fp, wg = g(s, "fetchpool", "rss"), g(s, "wget2", "rss")
            ok = None if None in (fp, wg) else fp <= wg
            lines.append(f"({s}) peak RSS <= wget2's ({fmt(wg, 1)} MiB) at -j {scens[s]['conc']}: "
                         f"{fmt(fp, 1)} MiB -> {verdict(ok)}")
    if "c" in scens:
        fw, ww = g("c", "fetchpool", "wall"), g("c", "wget2", "wall")
        ok = None if None in (fw, ww) else fw <= 0.95 * ww
        lines.append(f"(c) wall <= 0.95 x wget2 ({fmt(None if ww is None else 0.95 * ww)} s): "
                     f"{fmt(fw)} s -> {verdict(ok)}")
        fc, wc = g("c", "fetchpool", "cpu"), g("c", "wget2", "cpu")
        ok = None if None in (fc, wc) else fc <= wc
        lines.append(f"(c) CPU (user + sys) <= wget2's ({fmt(wc)} s): {fmt(fc)} s -> {verdict(ok)}")
    if "c" in scens:
        fp, wg, lg = g("c", "fetchpool", "rps"), g("c", "wget2", "rps"), g("c", "loadgen", "rps")
        ok = None if None in (fp, wg) else fp >= 1.05 * wg
        lines.append(f"(c) req/s >= 1.05 x wget2 ({fmt(None if wg is None else 1.05 * wg, 0)}): "
                     f"{fmt(fp, 0)} -> {verdict(ok)}")
        ok = None if None in (fp, lg) else fp >= 0.9 * lg
        lines.append(f"(c) req/s >= 0.9 x load generator ({fmt(None if lg is None else 0.9 * lg, 0)}): "
                     f"{fmt(fp, 0)} -> {verdict(ok)}")
        fc, wc = g("c", "fetchpool", "cpu_per_1k_ms"), g("c", "wget2", "cpu_per_1k_ms")
        ok = None if None in (fc, wc) else fc <= wc
        lines.append(f"(c) CPU per 1,000 requests <= wget2's ({fmt(wc, 1)} ms): {fmt(fc, 1)} ms -> {verdict(ok)}")
        cn = g("c", "fetchpool", "conns")
        ok = None if cn is None else cn <= int(scens["c"]["conc"])
        lines.append(f"(c) connections opened <= workers ({scens['c']['conc']}): {fmt(cn, 0)} -> {verdict(ok)}")
    if "d" in scens:
        fp = g("d", "fetchpool", "wall")
        pw = {p: g("d", p, "wall") for p in peers if g("d", p, "wall") is not None}
        ok = None if fp is None else all(fp < x for x in pw.values())
        best = min(pw.values()) if pw else None
        lines.append(f"(d) faster than every peer over TLS (best {fmt(best)} s): {fmt(fp)} s -> {verdict(ok)}")
        cn = g("d", "fetchpool", "conns")
        ok = None if cn is None else cn <= int(scens["d"]["conc"])
        lines.append(f"(d) TLS handshakes <= workers ({scens['d']['conc']}): {fmt(cn, 0)} -> {verdict(ok)}")
    if "e200k" in scens and "e20k" in scens:
        big, small = g("e200k", "fetchpool", "rss"), g("e20k", "fetchpool", "rss")
        ok = None if big is None else big <= 10
        lines.append(f"(e) peak RSS <= 10 MiB at 200,000 URLs: {fmt(big, 1)} MiB -> {verdict(ok)}")
        ok = None if None in (big, small) else big <= 1.1 * small
        lines.append(f"(e) 200k RSS within 10% of 20k RSS ({fmt(small, 1)} MiB): {verdict(ok)}")
        fp, wg = g("e200k", "fetchpool", "rps"), g("e200k", "wget2", "rps")
        ok = None if None in (fp, wg) else fp >= wg
        lines.append(f"(e) req/s >= wget2's on the 200,000 list ({fmt(wg, 0)}): {fmt(fp, 0)} -> {verdict(ok)}")
        fr = g("e200k", "fetchpool", "rss")
        lines.append(f"(e) RSS flat at 200,000 URLs (<= 10 MiB): {fmt(fr, 1)} MiB")
        fl = meta.get("first_line", "n/a")
        ok = None if fl == "n/a" else fl.startswith("yes")
        lines.append(f"(e) first result line before stdin is closed -> {verdict(ok)}")
    lines.append("(f) >= 1,000,000 no-op jobs/s through the pool with 4 workers: see "
                 "`cargo bench --bench pool` (not part of this script)")
    return lines


if __name__ == "__main__":
    main()
