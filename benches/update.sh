#!/usr/bin/env bash
# benches/update.sh: `--update` downloads only what changed.
#
# Starts a Python stdlib HTTP/1.1 server on 127.0.0.1 serving FILES files, each with an
# ETag and a Last-Modified, answering If-None-Match / If-Modified-Since with 304. Then:
#
#   run 1  fetchpool --update -o DIR: every file downloaded (200), validators stored;
#   run 2  the same, nothing changed on the server: expect every answer 304, 0 body bytes
#          moved, and no file in DIR rewritten (inode, mtime and size of every file,
#          validators files included, compared before and after);
#   run 3  after CHANGED files changed on the server: expect exactly those fetched (200)
#          and rewritten, the rest 304.
#
#   benches/update.sh                        # builds target/release/fetchpool first
#   FETCHPOOL=path benches/update.sh
#   FILES=1000 CHANGED=5 SIZE=8192 WORKERS=32 benches/update.sh
#
# Bounded: each run is killed after RUN_TIMEOUT seconds (default 120). Every request
# goes to 127.0.0.1; the server is stopped by its PID on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
FILES=${FILES:-1000}
CHANGED=${CHANGED:-5}
SIZE=${SIZE:-8192}
WORKERS=${WORKERS:-32}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
if [[ -z ${FETCHPOOL:-} ]]; then
    (cd "$ROOT" && cargo build --release --locked >&2)
    FETCHPOOL=$ROOT/target/release/fetchpool
fi

TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

cat > "$TMP/server.py" <<'EOF'
import email.utils, http.server, json, sys, threading, urllib.parse
SIZE = int(sys.argv[2])
lock = threading.Lock()
versions = {}
stats = {"200": 0, "304": 0, "body_bytes": 0}
BASE = 1_700_000_000

def body(n, v):
    line = f"file {n} version {v}\n".encode()
    return (line * (SIZE // len(line) + 1))[:SIZE]

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/_stats":
            with lock:
                return self.reply(200, json.dumps(stats).encode(), {})
        if url.path == "/_bump":
            with lock:
                for n in urllib.parse.parse_qs(url.query)["ids"][0].split(","):
                    versions[int(n)] = versions.get(int(n), 0) + 1
            return self.reply(200, b"ok\n", {})
        n = int(url.path.rsplit("/", 1)[-1])
        with lock:
            v = versions.get(n, 0)
        etag = f'"{n}-{v}"'
        modified = BASE + v * 3600
        headers = {"ETag": etag, "Last-Modified": email.utils.formatdate(modified, usegmt=True)}
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        fresh = False
        if inm is not None:
            fresh = etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
        elif ims is not None:
            try:
                fresh = email.utils.parsedate_to_datetime(ims).timestamp() >= modified
            except (TypeError, ValueError):
                fresh = False
        if fresh:
            with lock:
                stats["304"] += 1
            return self.reply(304, b"", headers)
        data = body(n, v)
        with lock:
            stats["200"] += 1
            stats["body_bytes"] += len(data)
        self.reply(200, data, headers)
    def reply(self, status, data, headers):
        self.send_response(status)
        for k, val in headers.items():
            self.send_header(k, val)
        if status != 304:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True

srv = Server(("127.0.0.1", 0), Handler)
with open(sys.argv[1], "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
EOF

python3 "$TMP/server.py" "$TMP/port" "$SIZE" &
SERVER_PID=$!
for _ in $(seq 100); do [[ -s $TMP/port ]] && break; sleep 0.05; done
PORT=$(cat "$TMP/port")
BASE_URL=http://127.0.0.1:$PORT
get() { python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1"; }

seq 0 $((FILES - 1)) | sed "s#^#$BASE_URL/file/#" > "$TMP/urls.txt"
DIR=$TMP/mirror

# inode, mtime (ns), size and name of every file in DIR, hidden ones included.
snapshot() { find "$DIR" -maxdepth 1 -type f -printf '%i %T@ %s %f\n' | sort -k4; }

# run N: one fetchpool run; prints a line of figures.
run() {
    local n=$1 before after
    before=$(get "$BASE_URL/_stats")
    local start end
    start=$(date +%s.%N)
    timeout "$RUN_TIMEOUT" "$FETCHPOOL" --update -o "$DIR" -j "$WORKERS" --json \
        --summary-json "$TMP/summary$n.json" -i "$TMP/urls.txt" > "$TMP/out$n.ndjson" 2> "$TMP/err$n.txt" || true
    end=$(date +%s.%N)
    after=$(get "$BASE_URL/_stats")
    python3 - "$n" "$before" "$after" "$start" "$end" "$TMP/out$n.ndjson" "$TMP/summary$n.json" <<'EOF'
import json, sys
n, before, after, start, end, out, summary = sys.argv[1:]
b, a = json.loads(before), json.loads(after)
rows = [json.loads(l) for l in open(out)]
s = json.load(open(summary))
statuses = {}
for r in rows:
    statuses[r["status"]] = statuses.get(r["status"], 0) + 1
print(json.dumps({
    "run": int(n), "wall_s": round(float(end) - float(start), 2), "results": len(rows),
    "ok": sum(r["ok"] for r in rows), "statuses": statuses,
    "summary_unchanged": s.get("unchanged"), "summary_bytes": s["bytes"],
    "server_200": a["200"] - b["200"], "server_304": a["304"] - b["304"],
    "server_body_bytes": a["body_bytes"] - b["body_bytes"],
}))
EOF
}

echo "# --update: $FILES files of $SIZE bytes, -j $WORKERS, 127.0.0.1"
echo
echo "run 1 (empty DIR):"
run 1
snapshot > "$TMP/snap1"
echo "files in DIR: $(grep -vc ' \.fetchpool-meta-' "$TMP/snap1") saved, $(grep -c ' \.fetchpool-meta-' "$TMP/snap1") validators files"
echo
echo "run 2 (nothing changed):"
run 2
snapshot > "$TMP/snap2"
if cmp -s "$TMP/snap1" "$TMP/snap2"; then
    echo "DIR: identical before and after (inode, mtime, size of every file): no file rewritten"
else
    echo "DIR: CHANGED:"; diff "$TMP/snap1" "$TMP/snap2" | head -20
fi
echo
ids=$(seq 0 $((FILES - 1)) | shuf -n "$CHANGED" --random-source=<(yes) | sort -n | paste -sd,)
get "$BASE_URL/_bump?ids=$ids" > /dev/null
echo "run 3 (changed on the server: files $ids):"
run 3
snapshot > "$TMP/snap3"
changed=$(diff <(cut -d' ' -f1-4 "$TMP/snap2") <(cut -d' ' -f1-4 "$TMP/snap3") | grep -c '^>' || true)
refetched=$(python3 -c 'import json,sys; print(",".join(sorted((r["url"].rsplit("/",1)[1] for r in map(json.loads, open(sys.argv[1])) if r["status"] == 200), key=int)))' "$TMP/out3.ndjson")
echo "files rewritten in DIR: $changed (bodies and their validators files); fetched with 200: $refetched"
for id in ${ids//,/ }; do
    file=$(grep -F "/file/$id\"" "$TMP/out3.ndjson" | python3 -c 'import json,sys; print(json.load(sys.stdin)["saved_to"])')
    head -c 40 "$file" | head -1 | grep -q "version 1" || echo "file $id: NOT the new version"
done
echo
echo "summary of run 2 on stderr:"
sed -n '/^summary/,$p' "$TMP/err2.txt"
