#!/usr/bin/env bash
# Builds fetchpool and runs it on a real example that needs no network:
# a local web server (Python's http.server, on 127.0.0.1 and a free port)
# serves this repository, and fetchpool fetches a list of its files, one
# missing page and one invalid entry. The server is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "building fetchpool (release; a few minutes the first time, then seconds)..."
cargo build --release --locked
echo

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory . >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null' EXIT
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.1
done

list=$(mktemp)
{
  echo "# files of this repository, served locally"
  for f in README.md LICENSE Cargo.toml src/*.rs; do echo "http://127.0.0.1:$port/$f"; done
  echo "http://127.0.0.1:$port/no-such-page"
  echo "example.com/without-a-scheme"
} >"$list"

echo "\$ fetchpool -i urls.txt   (${list})"
status=0
./target/release/fetchpool -i "$list" "$@" || status=$?
rm -f "$list"
echo "exit code: $status (1 = some URLs failed: the 404 and the invalid entry above)"
