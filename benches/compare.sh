#!/usr/bin/env bash
# benches/compare.sh: fetchpool side by side with its peers, in one run, on one machine.
#
# Starts nginx (with the echo module for delayed answers) on 127.0.0.1, generates the URL
# lists, then times fetchpool, `curl --parallel`, `xargs -P curl`, wget2, the textbook
# Python ThreadPoolExecutor (benches/py_pool.py) and a load generator (wrk, or oha when
# installed) round-robin, RUNS times each, with /usr/bin/time. Prints one markdown
# table per scenario and writes the whole report to benches/results/latest.md.
#
#   benches/compare.sh                       # everything, RUNS=5
#   RUNS=3 SCENARIOS="a c" benches/compare.sh
#
# Scenarios: a) 1,000 URLs x 50 ms, -j 100    b) 5,000 x 200 ms, -j 1000
#            c) 20,000 x 1 KiB, -j 32         d) c over https (--cacert)
#            e) memory: 200,000 vs 20,000 URLs of 1 KiB piped on stdin, -j 32
#            g) memory per worker: 3,000 x 1 s, -j 1000
#            h) memory per worker: 8,192 x 1 s, -j 4096
# Scenario f (the pool alone) is `cargo bench --bench pool`.
#
# Environment knobs:
#   RUNS=5             timed runs per tool and scenario (alternated between tools)
#   SCENARIOS="a b c d e g h"
#   TOOLS="fetchpool curl xargs wget2 python loadgen"   a subset, e.g. while tuning
#   FETCHPOOL=path     binary to test (default target/release/fetchpool, built here
#                      with `cargo build --release --locked` unless BUILD=0)
#   SLOW_RUNS=3        runs for the slow peers (python, xargs; 3-10x slower than the
#                      others) in every scenario, at most RUNS
#   SLOW_BIG_RUNS=1    runs for python and xargs at 200,000 URLs (e) and for python over
#                      TLS (d), where one run takes one to three minutes; at most RUNS
#   LOADGEN=wrk|oha    load generator (default: oha if installed, else wrk)
#   LOADGEN_SECS=3     duration of each wrk run
#   WRK_THREADS=1      wrk -t (one event loop drives 32..1,000 connections easily)
#   NGINX_WORKERS=1    nginx worker_processes (see the comment at the nginx config)
#   RUN_TIMEOUT=300    seconds before one timed run is killed (it then counts as failed)
#   INSTALL=1          install missing Debian packages (apt-get); 0: fail instead
#   KEEP_TMP=0         1 keeps the temp dir (nginx config, logs, URL lists)
#
# Every request goes to 127.0.0.1. Every process started here is stopped by its PID.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-5}
SCENARIOS=${SCENARIOS:-a b c d e g h}
SLOW_RUNS=${SLOW_RUNS:-3}
SLOW_BIG_RUNS=${SLOW_BIG_RUNS:-1}
LOADGEN_SECS=${LOADGEN_SECS:-3}
WRK_THREADS=${WRK_THREADS:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
NGINX_WORKERS=${NGINX_WORKERS:-1}
INSTALL=${INSTALL:-1}
BUILD=${BUILD:-1}
RESULTS=$HERE/results
REPORT=$RESULTS/latest.md
ECHO_MODULE=${ECHO_MODULE:-/usr/lib/nginx/modules/ngx_http_echo_module.so}

log() { printf '[compare %s] %s\n' "$(date +%T)" "$*" >&2; }
# (h) runs 4,096 connections per tool: every tool gets the hard open-files limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
die() { log "error: $*"; exit 1; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
[[ $SLOW_RUNS =~ ^[1-9][0-9]*$ ]] || die "SLOW_RUNS must be a positive integer"
[[ $SLOW_BIG_RUNS =~ ^[1-9][0-9]*$ ]] || die "SLOW_BIG_RUNS must be a positive integer"
for s in $SCENARIOS; do
    [[ $s =~ ^[abcdegh]$ ]] || die "unknown scenario '$s' (expected some of: a b c d e g h)"
done
TOOLS=${TOOLS:-fetchpool curl xargs wget2 python loadgen}
for t in $TOOLS; do
    [[ $t =~ ^(fetchpool|curl|xargs|wget2|python|loadgen)$ ]] || die "unknown tool '$t'"
done
[[ $NGINX_WORKERS =~ ^([1-9][0-9]?|auto)$ ]] || die "NGINX_WORKERS: a number or auto"

# --------------------------------------------------------------------------- packages
# Debian package names (checked with apt-cache on Debian 12): nginx, its echo module,
# wget2, curl, wrk, python3, time (GNU /usr/bin/time), openssl. oha is not packaged
# (crates.io only): it is used when already installed, else wrk is the load generator.
ensure_packages() {
    local missing=()
    command -v nginx >/dev/null || missing+=(nginx)
    [[ -e $ECHO_MODULE ]] || missing+=(libnginx-mod-http-echo)
    command -v wget2 >/dev/null || missing+=(wget2)
    command -v curl >/dev/null || missing+=(curl)
    command -v python3 >/dev/null || missing+=(python3)
    [[ -x /usr/bin/time ]] || missing+=(time)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v xargs >/dev/null || missing+=(findutils)
    command -v timeout >/dev/null || missing+=(coreutils)
    if [[ ${LOADGEN:-} != oha ]] && ! command -v oha >/dev/null; then
        command -v wrk >/dev/null || missing+=(wrk)
    fi
    ((${#missing[@]})) || return 0
    [[ $INSTALL == 1 ]] || die "missing packages: ${missing[*]} (INSTALL=0)"
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "missing packages: ${missing[*]}; run as root or install them"
        sudo=(sudo)
    fi
    log "installing: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    # RUNLEVEL=1: ask invoke-rc.d not to start the distribution's nginx service; this
    # script runs its own nginx on its own ports.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
        apt-get install -y -qq "${missing[@]}" >&2
}
ensure_packages
[[ -e $ECHO_MODULE ]] || die "nginx echo module not found at $ECHO_MODULE (set ECHO_MODULE)"

# The real interpreter, not a version-manager shim (pyenv's shim is a shell script that
# would add its own start-up to every Python run).
PY=$(python3 -c 'import sys; print(sys.executable)')

if [[ -z ${LOADGEN:-} ]]; then
    if command -v oha >/dev/null; then LOADGEN=oha; else LOADGEN=wrk; fi
fi
command -v "$LOADGEN" >/dev/null || die "load generator '$LOADGEN' not found"

# --------------------------------------------------------------------------- fetchpool
FP=${FETCHPOOL:-$ROOT/target/release/fetchpool}
if [[ -z ${FETCHPOOL:-} && $BUILD == 1 ]]; then
    log "building fetchpool: cargo build --release --locked"
    if ! (cd "$ROOT" && cargo build --release --locked) >&2; then
        # never time a stale binary left over from an earlier build
        log "warning: the build failed; fetchpool's rows will read n/a"
        FP_BUILD_FAILED=1
    fi
fi

# --------------------------------------------------------------------------- temp dir, cleanup
T=$(mktemp -d "${TMPDIR:-/tmp}/fetchpool-bench.XXXXXX")
chmod 755 "$T" # nginx's workers (www-data when we are root) read the static file here
mkdir -p "$T/www" "$T/logs" "$T/nginx-tmp" "$T/lists"
NGINX_PID=
BG_PIDS=()

stop_pid() { # stop_pid PID: TERM, wait up to 5 s, then KILL; always by PID
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    local pid
    for pid in "${BG_PIDS[@]}"; do stop_pid "$pid"; done
    if [[ -n $NGINX_PID ]]; then
        stop_pid "$NGINX_PID" # the master stops its own workers on TERM
        log "nginx (pid $NGINX_PID) stopped"
    fi
    if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $T"; else rm -rf "$T"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Client processes: 1,000 workers need more than 1,024 descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --------------------------------------------------------------------------- nginx
read -r PORT TLS_PORT < <("$PY" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
HTTP=http://127.0.0.1:$PORT
HTTPS=https://127.0.0.1:$TLS_PORT

head -c 1024 /dev/zero | tr '\0' 'x' >"$T/www/1k"
CA=$T/cert.pem
# Self-signed, for 127.0.0.1. basicConstraints CA:FALSE: the default (CA:TRUE) is
# refused by rustls (and so by ureq) when the same certificate is the server's own
# ("CaUsedAsEndEntity"); curl, wget2 and Python accept both forms.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
    -keyout "$T/key.pem" -out "$CA" 2>/dev/null

USER_LINE=
if ((EUID == 0)); then
    if id www-data >/dev/null 2>&1; then USER_LINE='user www-data;'; else USER_LINE='user nobody nogroup;'; fi
fi

# worker_processes 1: client and server share 2 cores. One nginx worker uses at most
# one of them, so every client gets the same, whole other core, and the comparison
# measures the clients. (With 2 workers nginx takes a slice of the client's core as
# well, and the results depend on how the scheduler splits it.) The delay locations are
# timers, not CPU, so one worker serves 1,000 waiting connections easily.
cat >"$T/nginx.conf" <<EOF
$USER_LINE
worker_processes $NGINX_WORKERS;
worker_rlimit_nofile 20000;
daemon off;
pid $T/nginx.pid;
error_log $T/logs/nginx-error.log warn;
load_module $ECHO_MODULE;
events {
    worker_connections 16384;
}
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path $T/nginx-tmp/body;
    proxy_temp_path $T/nginx-tmp/proxy;
    fastcgi_temp_path $T/nginx-tmp/fastcgi;
    uwsgi_temp_path $T/nginx-tmp/uwsgi;
    scgi_temp_path $T/nginx-tmp/scgi;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    open_file_cache max=16 inactive=600s;
    open_file_cache_valid 600s;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        root $T/www;
        location = /d50 { echo_sleep 0.05; echo ok; }
        location = /d200 { echo_sleep 0.2; echo ok; }
        location = /d1000 { echo_sleep 1; echo ok; }
        location = /1k { }
        location = /_status { stub_status; }
    }
    server {
        # HTTP/1.1 only (no http2): every client speaks the same protocol.
        listen 127.0.0.1:$TLS_PORT ssl backlog=4096;
        ssl_certificate $CA;
        ssl_certificate_key $T/key.pem;
        root $T/www;
        location = /d50 { echo_sleep 0.05; echo ok; }
        location = /1k { }
    }
}
EOF

nginx -t -q -c "$T/nginx.conf" -p "$T/" -e "$T/logs/nginx-error.log" >&2 ||
    die "nginx rejected the config: $(cat "$T/logs/nginx-error.log" 2>/dev/null)"
nginx -c "$T/nginx.conf" -p "$T/" -e "$T/logs/nginx-error.log" >&2 &
NGINX_PID=$!
for ((i = 0; ; i++)); do
    kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited: $(tail -5 "$T/logs/nginx-error.log")"
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$HTTP/_status" || true) == 200 ]] && break
    ((i < 100)) || die "nginx did not answer within 10 s"
    sleep 0.1
done
curl -sf --max-time 5 "$HTTP/1k" >/dev/null || die "GET /1k failed"
curl -sf --max-time 5 "$HTTP/d50" >/dev/null || die "GET /d50 failed (echo module?)"
curl -sf --max-time 5 --cacert "$CA" "$HTTPS/1k" >/dev/null || die "GET https /1k failed"
log "nginx pid $NGINX_PID on 127.0.0.1:$PORT (http) and :$TLS_PORT (https)"

# nginx's stub_status: "accepts" and "requests" counters. The deltas around a run are
# the TCP connections the client opened (for https: the TLS handshakes) and the requests
# it made, exactly, server-side. Each status query is one connection and one request of
# its own, so a delta is after - before - 1.
nginx_counters() {
    curl -s --max-time 5 "$HTTP/_status" | awk 'NR == 3 { print $1, $3 }'
}

# --------------------------------------------------------------------------- URL lists
declare -A COUNT CONC LIST CFG PATHQ IDEAL TITLE
gen_list() { # gen_list NAME BASEURL COUNT: one URL a line, each with its own ?i=N
    awk -v b="$2" -v n="$3" 'BEGIN { for (i = 0; i < n; i++) printf "%s?i=%d\n", b, i }' >"$T/lists/$1.txt"
    # curl -K config: a url and an output for each
    awk '{ printf "url = \"%s\"\noutput = \"/dev/null\"\n", $0 }' "$T/lists/$1.txt" >"$T/lists/$1.cfg"
}
setup_scenario() { # NAME COUNT CONC URL IDEAL TITLE
    COUNT[$1]=$2 CONC[$1]=$3 IDEAL[$1]=$5 TITLE[$1]=$6
    LIST[$1]=$T/lists/$1.txt CFG[$1]=$T/lists/$1.cfg PATHQ[$1]=$4
    gen_list "$1" "$4" "$2"
}
for s in $SCENARIOS; do
    case $s in
    a) setup_scenario a 1000 100 "$HTTP/d50" 0.50 "latency-bound: 1,000 URLs x 50 ms, -j 100" ;;
    b) setup_scenario b 5000 1000 "$HTTP/d200" 1.00 "thread scaling: 5,000 URLs x 200 ms, -j 1000" ;;
    c) setup_scenario c 20000 32 "$HTTP/1k" "" "throughput: 20,000 x 1 KiB, -j 32, keep-alive" ;;
    d) setup_scenario d 20000 32 "$HTTPS/1k" "" "HTTPS throughput: 20,000 x 1 KiB over TLS, -j 32, --cacert" ;;
    g) setup_scenario g 3000 1000 "$HTTP/d1000" 3.00 "memory per worker: 3,000 URLs x 1 s, -j 1000" ;;
    h) setup_scenario h 8192 4096 "$HTTP/d1000" 2.00 "memory per worker: 8,192 URLs x 1 s, -j 4096" ;;
    e)
        setup_scenario e200k 200000 32 "$HTTP/1k" "" "memory: 200,000 x 1 KiB piped on stdin, -j 32"
        setup_scenario e20k 20000 32 "$HTTP/1k" "" "memory: 20,000 x 1 KiB piped on stdin, -j 32"
        ;;
    esac
done

# --------------------------------------------------------------------------- fetchpool check
FP_OK=0
FP_VERSION=n/a
if [[ ${FP_BUILD_FAILED:-0} == 1 ]]; then
    FP_VERSION="build failed"
elif [[ -x $FP ]]; then
    FP_VERSION=$("$FP" --version 2>/dev/null | head -1 || true)
    if timeout 20 "$FP" -j 2 -q "$HTTP/1k?smoke=1" "$HTTPS/1k?smoke=2" --cacert "$CA" \
        </dev/null >"$T/logs/fp-smoke.out" 2>"$T/logs/fp-smoke.err"; then
        FP_OK=1
    else
        log "fetchpool smoke test failed (rows will read n/a): $(tail -3 "$T/logs/fp-smoke.err" | tr '\n' ' ')"
    fi
else
    log "no fetchpool binary at $FP: its rows will read n/a"
fi

# --------------------------------------------------------------------------- tools
# build_cmd TOOL SCEN: sets CMD (array), IN (stdin file), PIPE (1: feed IN through a
# pipe, as `producer | tool`), OUTF (where stdout goes), LABEL (short name for the table)
# xargs batch size: 50 URLs per curl process, or fewer when the list is short, so that at
# least N processes exist and N transfers are in flight (a: 10, b: 5, c/d/e: 50). With -n 1
# the run would time process start-up (one curl per URL, no connection reuse); with 50,
# each curl reuses its connection for its batch, as a user batching URLs would.
xargs_batch() {
    local per=$(((COUNT[$1] + CONC[$1] - 1) / CONC[$1]))
    ((per < 50)) && echo "$per" || echo 50
}
build_cmd() {
    local tool=$1 s=$2
    local n=${CONC[$s]} list=${LIST[$s]} cfg=${CFG[$s]} stdin_mode=0
    local tls=0
    [[ $s == d ]] && tls=1
    [[ $s == e* ]] && stdin_mode=1
    IN=/dev/null PIPE=0 OUTF=/dev/null
    if ((stdin_mode)); then IN=$list PIPE=1; fi
    case $tool in
    fetchpool)
        CMD=("$FP" -j "$n" -q)
        ((tls)) && CMD+=(--cacert "$CA")
        ((stdin_mode)) || CMD+=(-i "$list")
        LABEL="fetchpool -j $n"
        ;;
    curl)
        CMD=(curl --parallel --parallel-max "$n" --no-progress-meter)
        ((tls)) && CMD+=(--cacert "$CA")
        if ((stdin_mode)); then IN=$cfg CMD+=(-K -); else CMD+=(-K "$cfg"); fi
        LABEL="curl --parallel-max $n"
        if ((n > 300)); then LABEL+=" (curl 7.x caps it at 300)"; fi
        ;;
    xargs)
        local b
        b=$(xargs_batch "$s")
        # Bodies go to stdout, which is /dev/null (curl's -o names one URL only).
        CMD=(xargs -P "$n" -n "$b" curl -s)
        ((tls)) && CMD+=(--cacert "$CA")
        IN=$list
        LABEL="xargs -P $n -n $b curl"
        ;;
    wget2)
        # No config file, no cookies/HSTS/HPKP/OCSP/netrc look-ups, no compression
        # offered; keep-alive stays on (its default).
        CMD=(wget2 --no-config --max-threads "$n" -q -O /dev/null --no-robots --no-cookies
            --no-hsts --no-hpkp --no-ocsp --no-netrc --compression=identity --http-keep-alive)
        ((tls)) && CMD+=(--ca-certificate "$CA")
        # wget2 1.99 hangs on `-i -` with several threads; /dev/stdin works.
        if ((stdin_mode)); then CMD+=(-i /dev/stdin); else CMD+=(-i "$list"); fi
        LABEL="wget2 --max-threads $n"
        ;;
    python)
        CMD=("$PY" "$HERE/py_pool.py" "$n")
        if ((stdin_mode)); then CMD+=(-); else CMD+=("$list"); fi
        ((tls)) && CMD+=(--cacert "$CA")
        LABEL="python ThreadPoolExecutor($n)"
        ;;
    loadgen)
        local url="${PATHQ[$s]}?i=0"
        OUTF=$T/loadgen.out
        if [[ $LOADGEN == oha ]]; then
            # fixed count: the same number of requests as the others
            CMD=(oha --no-tui -n "${COUNT[$s]}" -c "$n")
            ((tls)) && CMD+=(--insecure)
            CMD+=("$url")
            LABEL="oha -c $n -n ${COUNT[$s]}"
        else
            # wrk runs for a duration, not a count: its wall is COUNT / (wrk req/s).
            CMD=(wrk -t "$WRK_THREADS" -c "$n" -d "${LOADGEN_SECS}s" --timeout 10s "$url")
            LABEL="wrk -t$WRK_THREADS -c $n (${LOADGEN_SECS} s)"
        fi
        ;;
    esac
}

tools_for() { # the tools of one scenario (those in TOOLS), in the order of the tables
    local t
    for t in fetchpool curl xargs wget2 python loadgen; do
        [[ " $TOOLS " == *" $t "* ]] || continue
        [[ $1 == e* && $t == loadgen ]] && continue # (e) is about memory: no load generator
        # (g, h) are about memory per worker against wget2, the peer with the same
        # thread-per-connection model; 4,096 curl processes or Python threads measure
        # process and interpreter overhead, not a fetcher.
        [[ $1 == [gh] && $t != fetchpool && $t != wget2 ]] && continue
        printf '%s ' "$t"
    done
    return 0
}

runs_for() { # runs_for TOOL SCEN: how many timed runs (keeps a full run near 15 min)
    local n=$RUNS
    if [[ $1 == python || $1 == xargs ]]; then
        n=$SLOW_RUNS
        if [[ $2 == e200k || ($2 == d && $1 == python) ]]; then n=$SLOW_BIG_RUNS; fi
    fi
    echo $((n < RUNS ? n : RUNS))
}

RAW=$T/raw.tsv
printf 'scen\ttool\trun\tok\trc\twall\tuser\tsys\trss_kib\tconns\treqs\tlg_reqs\tlg_rps\tnote\n' >"$RAW"
CMDS=$T/cmds.tsv
: >"$CMDS"

# run_one TOOL SCEN RUN: one timed run, one line in raw.tsv. `timeout --foreground`
# bounds it and leaves the tool in our process group, so Ctrl-C reaches it at once.
run_one() {
    local tool=$1 s=$2 r=$3
    local tf=$T/time.out err=$T/logs/$s-$tool-$r.err
    if [[ $tool == fetchpool && $FP_OK != 1 ]]; then
        printf '%s\t%s\t%s\t0\t\t\t\t\t\t\t\t\t\t%s\n' "$s" "$tool" "$r" "not available" >>"$RAW"
        return
    fi
    kill -0 "$NGINX_PID" 2>/dev/null || die "nginx is gone: $(tail -3 "$T/logs/nginx-error.log")"
    build_cmd "$tool" "$s"
    local before after rc=0
    before=$(nginx_counters)
    rm -f "$tf"
    set +e
    if ((PIPE)); then
        # a real pipe, as in `producer | tool`, not a file on stdin
        # shellcheck disable=SC2002
        cat "$IN" | /usr/bin/time -f '%e %U %S %M' -o "$tf" \
            timeout --foreground -k 5 "$RUN_TIMEOUT" "${CMD[@]}" >"$OUTF" 2>"$err"
        local ps=("${PIPESTATUS[@]}")
        rc=${ps[1]}
    else
        /usr/bin/time -f '%e %U %S %M' -o "$tf" \
            timeout --foreground -k 5 "$RUN_TIMEOUT" "${CMD[@]}" <"$IN" >"$OUTF" 2>"$err"
        rc=$?
    fi
    set -e
    after=$(nginx_counters)
    local wall='' user='' sys='' rss=''
    read -r wall user sys rss < <(tail -1 "$tf" 2>/dev/null) || true
    local ba bq aa aq
    read -r ba bq <<<"$before"
    read -r aa aq <<<"$after"
    local conns=$((aa - ba - 1)) reqs=$((aq - bq - 1))
    local ok=1 note='' lg_reqs='' lg_rps=''
    if ((rc != 0)); then
        ok=0
        note="exit $rc"
        ((rc == 124 || rc == 137)) && note="timed out after ${RUN_TIMEOUT}s"
    fi
    if [[ $tool == loadgen ]]; then
        if [[ $LOADGEN == wrk ]]; then
            lg_reqs=$(awk '/ requests in /{ print $1 }' "$OUTF")
            lg_rps=$(awk '/^Requests\/sec:/{ print $2 }' "$OUTF")
            local errs
            errs=$(awk '/Socket errors|Non-2xx/{ print }' "$OUTF" | tr '\n' ' ')
            [[ -n $errs ]] && note="${note:+$note; }$errs"
        else
            lg_reqs=${COUNT[$s]}
            lg_rps=$(awk '/Requests\/sec:/{ print $2 }' "$OUTF")
        fi
        [[ -n $lg_rps ]] || { ok=0; note="${note:+$note; }no req/s in output"; }
    elif ((ok && reqs != COUNT[$s])); then
        ok=0
        note="nginx saw $reqs requests, not ${COUNT[$s]}"
    fi
    if ((ok == 0)); then
        log "  $s $tool run $r FAILED: $note; $(tail -2 "$err" 2>/dev/null | tr '\n' ' ' | cut -c1-200)"
    else
        log "  $s $tool run $r: ${wall}s cpu $(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}')s rss ${rss}KiB conns $conns"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$s" "$tool" "$r" "$ok" "$rc" "$wall" "$user" "$sys" "$rss" "$conns" "$reqs" \
        "$lg_reqs" "$lg_rps" "$note" >>"$RAW"
}

# (e): the first result line must appear before stdin is closed. Feed fetchpool from a
# fifo: one URL, wait (10 s at most) for a line in its stdout file, then the rest.
FIRST_LINE=n/a
first_line_check() {
    [[ $FP_OK == 1 ]] || return 0
    local fifo=$T/e.fifo out=$T/logs/e-first.out i seen=no t0 t1
    mkfifo "$fifo"
    timeout -k 5 60 "$FP" -j 32 -q <"$fifo" >"$out" 2>"$T/logs/e-first.err" &
    local pid=$!
    BG_PIDS+=("$pid")
    exec 3>"$fifo"
    t0=$(date +%s.%N)
    (printf '%s\n' "$HTTP/1k?first=1" >&3) 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        if [[ -s $out ]]; then seen=yes; break; fi
        sleep 0.1
    done
    t1=$(date +%s.%N)
    (head -n 1000 "${LIST[e20k]}" >&3) 2>/dev/null || true
    exec 3>&-
    local rc=0
    wait "$pid" || rc=$?
    BG_PIDS=("${BG_PIDS[@]/$pid/}")
    local lines
    lines=$(wc -l <"$out")
    if [[ $seen == yes ]]; then
        FIRST_LINE="yes: the first line came $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s after the first URL, stdin still open (then $lines lines for 1,001 URLs, exit $rc)"
    else
        FIRST_LINE="NO: no line within 10 s of the first URL while stdin stayed open (then $lines lines for 1,001 URLs, exit $rc)"
    fi
    log "first-line check: $FIRST_LINE"
}

# --------------------------------------------------------------------------- run
START=$(date +%s)
for s in $SCENARIOS; do
    subs=$s
    [[ $s == e ]] && subs="e20k e200k"
    for sub in $subs; do
        read -ra tools <<<"$(tools_for "$sub")"
        for tool in "${tools[@]}"; do
            build_cmd "$tool" "$sub"
            shown=${CMD[*]//$T\//}
            if ((PIPE)); then
                shown="cat ${IN#"$T"/} | $shown"
            elif [[ $IN != /dev/null ]]; then
                shown="$shown < ${IN#"$T"/}"
            fi
            printf '%s\t%s\t%s\t%s\t%s\n' "$sub" "$tool" "$LABEL" "$(runs_for "$tool" "$sub")" \
                "$shown" >>"$CMDS"
        done
        log "scenario $sub: ${TITLE[$sub]} ($RUNS runs per tool, round-robin)"
        nt=${#tools[@]}
        for ((r = 1; r <= RUNS; r++)); do
            for ((k = 0; k < nt; k++)); do
                # rotate the order each round so no tool always runs right after another
                tool=${tools[$(((k + r - 1) % nt))]}
                (($(runs_for "$tool" "$sub") >= r)) || continue
                run_one "$tool" "$sub" "$r"
            done
        done
    done
    [[ $s == e ]] && first_line_check
done
ELAPSED=$(($(date +%s) - START))

# --------------------------------------------------------------------------- report
mkdir -p "$RESULTS"
{
    printf 'scen\tcount\tconc\tideal\ttitle\n'
    for s in "${!COUNT[@]}"; do
        printf '%s\t%s\t%s\t%s\t%s\n' "$s" "${COUNT[$s]}" "${CONC[$s]}" "${IDEAL[$s]}" "${TITLE[$s]}"
    done
} >"$T/scen.tsv"
cpu_model=$(awk -F': ' '/model name/{ print $2; exit }' /proc/cpuinfo)
{
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'machine\t%s CPUs (%s), %s RAM, Linux %s\n' "$(nproc)" "${cpu_model:-?}" \
        "$(free -h | awk '/^Mem:/{ print $2 }')" "$(uname -r)"
    printf 'command\tRUNS=%s SCENARIOS="%s" SLOW_RUNS=%s SLOW_BIG_RUNS=%s NGINX_WORKERS=%s%s benches/compare.sh\n' \
        "$RUNS" "$SCENARIOS" "$SLOW_RUNS" "$SLOW_BIG_RUNS" "$NGINX_WORKERS" \
        "$([[ $TOOLS == "fetchpool curl xargs wget2 python loadgen" ]] || printf ' TOOLS="%s"' "$TOOLS")"
    printf 'elapsed\t%s s\n' "$ELAPSED"
    printf 'fetchpool\t%s\n' "$FP_VERSION$( ((FP_OK)) || printf ' (not available: rows n/a)')"
    printf 'curl\t%s\n' "$(curl --version | head -1 | cut -d' ' -f1-2)"
    printf 'wget2\t%s\n' "$(wget2 --version 2>/dev/null | head -1 | sed 's/ - .*//')"
    printf 'python\t%s\n' "$("$PY" --version 2>&1)"
    printf 'nginx\t%s\n' "$(nginx -v 2>&1 | sed 's/.*: //')"
    if [[ $LOADGEN == wrk ]]; then
        printf 'loadgen\t%s\n' "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
    else
        printf 'loadgen\t%s\n' "$(oha --version 2>&1 | head -1)"
    fi
    printf 'first_line\t%s\n' "$FIRST_LINE"
    printf 'loadgen_kind\t%s\n' "$LOADGEN"
    printf 'nginx_workers\t%s\n' "$NGINX_WORKERS"
} >"$T/meta.tsv"
"$PY" "$HERE/report.py" "$T/meta.tsv" "$T/scen.tsv" "$CMDS" "$RAW" >"$REPORT.tmp"
mv "$REPORT.tmp" "$REPORT"
cp "$RAW" "$RESULTS/raw-latest.tsv"
cat "$REPORT"
log "report written to $REPORT (raw data: $RESULTS/raw-latest.tsv); ${ELAPSED}s"
