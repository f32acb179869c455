#!/usr/bin/env bash
# Measures the approval page's first visit (e2e/bench/page.mjs) against a
# fresh sandbox Passgate: starts `passgate serve` on a free loopback port
# with a temporary SQLite file, asks for a passkey approval as the demo
# partner, takes the link from the sandbox's SMS outbox, runs page.mjs on it.
#
# --device: the phone app's approval screen instead. pair.mjs pairs a phone
# with the demo user (its device credential, the passgate_phone cookie),
# the partner asks without X-Qonto-2fa-Preference (so the paired phone),
# the approval's id comes from the phone's list (GET /device/api/approvals),
# and page.mjs opens /device/approvals/{id} with that cookie, its lines
# labelled "page": "device".
#
#   e2e/bench/run-page.sh [--runs N] [--accept-encoding gzip]
#   e2e/bench/run-page.sh --device [--runs N]
#   PASSGATE_BENCH_BIN=target/debug/passgate e2e/bench/run-page.sh
#   PASSGATE_BENCH_BIN=/tmp/other PASSGATE_STATIC_DIR=/tmp/other-dist e2e/bench/run-page.sh   (A/B)
set -euo pipefail

device=
args=()
for arg in "$@"; do
  if [ "$arg" = --device ]; then device=1; else args+=("$arg"); fi
done

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${PASSGATE_BENCH_BIN:-$root/target/release/passgate}
static_dir=${PASSGATE_STATIC_DIR:-$root/frontend/dist}
[ -x "$bin" ] || { echo "no passgate binary at $bin (cargo build --release --bin passgate)" >&2; exit 1; }
[ -f "$static_dir/index.html" ] || { echo "the page is not built in $static_dir: make frontend" >&2; exit 1; }
[ -z "$device" ] || [ -f "$static_dir/device/index.html" ] || { echo "the phone app is not built in $static_dir/device: make frontend" >&2; exit 1; }

dir=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
origin="http://localhost:$port"
export PASSGATE_BIND="127.0.0.1:$port" PASSGATE_ORIGIN="$origin" PASSGATE_MODE=sandbox \
  PASSGATE_STATIC_DIR="$static_dir" DATABASE_URL="sqlite://$dir/passgate.db" RUST_LOG=passgate=warn

"$bin" demo >"$dir/demo.json"
token=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["partner_token"])' <"$dir/demo.json")
"$bin" serve &
server=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "$origin/" && break
  kill -0 "$server" 2>/dev/null || { echo "passgate serve exited" >&2; exit 1; }
  sleep 0.1
done

# The partner's transfer, asking for a passkey by link or (no preference
# header: the default) the paired phone; `428` either way.
transfer() {
  local status
  status=$(curl -s -o "$dir/428.json" -w '%{http_code}' -X POST "$origin/v2/sepa/transfers" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@" \
    -d '{"amount":"1200.00","currency":"EUR","beneficiary":{"name":"ACME SAS","iban":"FR7630006000011234567890189"},"reference":"INV-42"}')
  [ "$status" = 428 ] || { echo "expected 428 from the transfer, got $status: $(cat "$dir/428.json")" >&2; exit 1; }
}

if [ -z "$device" ]; then
  transfer -H 'X-Qonto-2fa-Preference: passkey'
  link=$(curl -sf "$origin/dev/sms?limit=1" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["link"])')
  node "$root/e2e/bench/page.mjs" "$link" ${args[@]+"${args[@]}"}
else
  cookie=$(node "$root/e2e/bench/pair.mjs" "$origin" "$dir/demo.json")
  transfer
  id=$(curl -sf -H "Cookie: $cookie" "$origin/device/api/approvals" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
  node "$root/e2e/bench/page.mjs" "$origin/device/approvals/$id" --cookie "$cookie" --button '^Approve$' --label device ${args[@]+"${args[@]}"}
fi
